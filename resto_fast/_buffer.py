"""Picks the hot path's implementation (the chunk window, the answer watch, the multi loop
and the operations it runs): compiled when it can, pure Python otherwise.

``RESTO_FAST_NO_EXTENSIONS=1`` forces the pure-Python twin, as does any
interpreter other than CPython; a compiled module that fails to import (not
built, built for another Python) falls back to it too.  ``IMPLEMENTATION``
tells which one is in use: ``"cython"`` or ``"python"``.
"""

from __future__ import annotations

import os
import platform
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = [
    "IMPLEMENTATION",
    "AnswerWatch",
    "ChunkWindow",
    "Loop",
    "Operation",
    "Reader",
    "StatusGate",
    "Transfer",
]

NO_EXTENSIONS = os.environ.get("RESTO_FAST_NO_EXTENSIONS", "") not in ("", "0")


def _implementation() -> tuple[ModuleType, str]:
    if not NO_EXTENSIONS and platform.python_implementation() == "CPython":
        try:
            from . import _multi
        except ImportError:
            pass
        else:
            return _multi, "cython"
    from . import _multi_py

    return _multi_py, "python"


if TYPE_CHECKING:
    from ._multi_py import (
        AnswerWatch,
        ChunkWindow,
        Loop,
        Operation,
        Reader,
        StatusGate,
        Transfer,
    )

    IMPLEMENTATION: str
else:
    _module, IMPLEMENTATION = _implementation()
    globals().update({name: getattr(_module, name) for name in __all__[1:]})
