"""Comparing a source directory with hosts' listings: the rules, without any server."""

from __future__ import annotations

import pytest

from resto_fast._sync.compare import compare_directory, compare_file
from resto_fast._sync.tree import Directory
from resto_fast._webdav import Listing

T = 1_700_000_000.0  # a source file's mtime


def listing(
    files: dict[str, tuple[int | None, float | None]], dirs: tuple[str, ...] = ()
) -> Listing:
    return Listing(tuple(sorted(dirs)), tuple(sorted(files)), True, files)


@pytest.mark.parametrize(
    ("found", "checksum", "expected"),
    [
        (None, False, "missing"),
        ((10, T + 5), False, None),  # same size, newer: the same file
        ((10, T + 0.5), False, None),  # within the source's second: HTTP dates have no fraction
        ((10, T - 1), False, "older"),
        ((11, T + 5), False, "size"),
        ((10, None), False, None),  # no date: judged by size alone
        ((None, T), False, "size"),
        ((10, T - 1), True, "same size"),  # with --checksum the content decides, not the date
        ((11, T), True, "size"),
    ],
)
def test_one_file(
    found: tuple[int | None, float | None] | None, checksum: bool, expected: str | None
) -> None:
    assert compare_file((10, T + 0.7, None), found, checksum=checksum) == expected


def test_two_empty_files_need_no_checksum() -> None:
    assert compare_file((0, T, None), (0, T - 100), checksum=True) is None


def test_a_directory() -> None:
    source = Directory(
        "photos",
        files={"a.jpg": (3, T, None), "b.jpg": (4, T, None), "c.jpg": (5, T, None)},
        subdirs=["2024"],
    )
    hosts = {
        "h1": listing({"a.jpg": (3, T), "b.jpg": (9, T), "stray.jpg": (1, T)}, ("2024", "old")),
        "h2": listing({"a.jpg": (3, T), "b.jpg": (4, T), "c.jpg": (5, T)}, ("2024",)),
        "h3": listing({"2024": (1, T), "back\\slash": (1, T)}, ("c.jpg",)),
    }
    comparison = compare_directory(source, hosts, checksum=False)
    assert comparison.files == {
        "a.jpg": {"h3": "missing"},
        "b.jpg": {"h1": "size", "h3": "missing"},
        "c.jpg": {"h1": "missing", "h3": "directory"},
    }
    assert comparison.extra_files == {"h1": ["stray.jpg"], "h3": ["2024"]}  # a file for a dir
    assert comparison.extra_directories == {"h1": ["old"]}
    assert comparison.refused == {"h3": ["photos/back\\slash"]}  # reported, never deleted
    assert comparison.checks == {}


def test_checksum_collects_the_same_size_copies() -> None:
    source = Directory("", files={"a": (3, T, None), "b": (4, T, None)})
    hosts = {"h1": listing({"a": (3, T), "b": (5, T)}), "h2": listing({"a": (3, T - 99)})}
    comparison = compare_directory(source, hosts, checksum=True)
    assert comparison.checks == {"a": ("h1", "h2")}
    assert comparison.files == {"b": {"h1": "size", "h2": "missing"}}
