"""Picks the hot path's implementation (the chunk window, the answer watch, the multi loop):
compiled when it can, pure Python otherwise.

``RESTO_FAST_NO_EXTENSIONS=1`` forces the pure-Python twin, as does any
interpreter other than CPython; a compiled module that fails to import (not
built, built for another Python) falls back to it too.  ``IMPLEMENTATION``
tells which one is in use: ``"cython"`` or ``"python"``.
"""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING

__all__ = [
    "IMPLEMENTATION",
    "AnswerWatch",
    "ChunkWindow",
    "Loop",
    "Reader",
    "StatusGate",
    "Transfer",
]

NO_EXTENSIONS = os.environ.get("RESTO_FAST_NO_EXTENSIONS", "") not in ("", "0")

if TYPE_CHECKING:
    from ._multi_py import AnswerWatch, ChunkWindow, Loop, Reader, StatusGate, Transfer

    IMPLEMENTATION: str
elif NO_EXTENSIONS or platform.python_implementation() != "CPython":
    from ._multi_py import AnswerWatch, ChunkWindow, Loop, Reader, StatusGate, Transfer

    IMPLEMENTATION = "python"
else:
    try:
        from ._multi import AnswerWatch, ChunkWindow, Loop, Reader, StatusGate, Transfer

        IMPLEMENTATION = "cython"
    except ImportError:
        from ._multi_py import AnswerWatch, ChunkWindow, Loop, Reader, StatusGate, Transfer

        IMPLEMENTATION = "python"
