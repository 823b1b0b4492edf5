"""What the resync tests share: source trees, the trees nginx hosts hold, running the command."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from resto_fast._cli import main
from testbed import Nginx

#: Names with every character class that needs care on the way: space, %, #, +, accents, emoji.
ODD_NAMES = ["a b.txt", "100%.txt", "hash#tag.txt", "c++.txt", "été/ß.txt", "😀/🎉.png"]


def make_tree(root: Path, files: dict[str, bytes], *, mtime: float | None = None) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        if mtime is not None:
            os.utime(path, (mtime, mtime))


def standard_files(dirs: int = 3, per_dir: int = 10) -> dict[str, bytes]:
    """A small tree of varied sizes, with odd names, the same in every test."""
    files = {
        f"d{d}/f{f:02}.bin": bytes([d, f]) * (1 + (d * 37 + f * 101) % 3000)
        for d in range(dirs)
        for f in range(per_dir)
    }
    files["top.txt"] = b"top"
    files["empty.bin"] = b""
    files.update({name: name.encode() * 3 for name in ODD_NAMES})
    return files


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root``, by its path relative to it."""
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def host_tree(media: Nginx, index: int) -> dict[str, bytes]:
    return tree(media.root(index) / "media")


def directories(root: Path) -> set[str]:
    return {
        (Path(directory) / name).relative_to(root).as_posix()
        for directory, names, _ in os.walk(root)
        for name in names
    }


def age(path: Path, seconds: float) -> None:
    """Make a file look ``seconds`` older than now."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``resto-fast ARGV``: its exit status, stdout and stderr."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def sync_args(command: str, source: Path | str | None, hosts: list[str], *more: str) -> list[str]:
    base = [command] + ([str(source)] if source is not None else [])
    return [*base, "--hosts", ",".join(hosts), "--base-url", "/media/", "--processes", "1", *more]
