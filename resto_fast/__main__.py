"""``python -m resto_fast`` is the ``resto-fast`` command."""

import sys

from ._cli import main

sys.exit(main())
