"""The resto-fast command: the demo end to end, and its size parsing."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from resto_fast import BUFFER_IMPLEMENTATION, __version__
from resto_fast._cli import main, parse_size


def test_the_demo_replicates_and_verifies_every_copy(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--hosts", "2", "--files", "30", "--file-size", "8KiB", "--large", "3MiB"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{BUFFER_IMPLEMENTATION} chunk buffer" in out
    assert "OK: 31 files x 2 hosts, every copy verified" in out
    assert out.count("31/31") == 2  # the per-host table: every copy verified on each host


@pytest.mark.parametrize(
    ("text", "size"),
    [("512", 512), ("16KiB", 16384), ("16k", 16384), ("1.5MiB", 1572864), ("2MB", 2_000_000)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_bad_sizes() -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size("lots")


def test_version_names_the_buffer() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "resto_fast", "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == f"resto_fast {__version__} ({BUFFER_IMPLEMENTATION} buffer)"


def test_serve_refuses_zero_servers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--count", "0"])
