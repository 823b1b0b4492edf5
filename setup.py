"""Build resto_fast: the Cython chunk buffer when it can, the pure-Python twin otherwise.

Metadata lives in pyproject.toml; this file only decides whether to compile
``resto_fast/_multi.pyx``.  ``RESTO_FAST_NO_EXTENSIONS=1`` (or a non-CPython
interpreter) gives a pure-Python install, and a failed compile falls back to
it too: the package runs the same either way, ``resto_fast.BUFFER_IMPLEMENTATION``
tells which one it got.
"""

from __future__ import annotations

import os
import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _wants_extension() -> bool:
    if os.environ.get("RESTO_FAST_NO_EXTENSIONS", "") not in ("", "0"):
        print("resto_fast: RESTO_FAST_NO_EXTENSIONS is set, installing the pure-Python buffer")
        return False
    if platform.python_implementation() != "CPython":
        print("resto_fast: not CPython, installing the pure-Python buffer")
        return False
    return True


class _OptionalBuildExt(build_ext):
    """Turn a failed compile into a warning: the pure-Python twin takes over."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # a missing compiler shows up as several error types
            print(f"resto_fast: could not build the Cython buffer ({exc}); using pure Python")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"resto_fast: could not build {ext.name} ({exc}); using pure Python")


def _extensions() -> list[Extension]:
    if not _wants_extension():
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("resto_fast: Cython is not installed, installing the pure-Python buffer")
        return []
    extension = Extension("resto_fast._multi", ["resto_fast/_multi.pyx"], optional=True)
    return list(
        cythonize(
            [extension],
            compiler_directives={"language_level": "3", "embedsignature": True},
            quiet=True,
        )
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": _OptionalBuildExt})
sys.stdout.flush()
