"""The package as built: the compiled buffer where it should be, and no Django in the core."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import resto_fast


def test_the_compiled_buffer_is_in_use_unless_disabled() -> None:
    disabled = os.environ.get("RESTO_FAST_NO_EXTENSIONS", "") not in ("", "0")
    if disabled or platform.python_implementation() != "CPython":
        assert resto_fast.BUFFER_IMPLEMENTATION == "python"
    else:  # a silent fallback would hide a broken build
        assert resto_fast.BUFFER_IMPLEMENTATION == "cython"


def test_the_core_does_not_import_django() -> None:
    code = "import sys, resto_fast, resto_fast.http_server; sys.exit('django' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_selector_honours_the_environment() -> None:
    code = "import resto_fast; print(resto_fast.BUFFER_IMPLEMENTATION)"
    env = {**os.environ, "RESTO_FAST_NO_EXTENSIONS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "python"
