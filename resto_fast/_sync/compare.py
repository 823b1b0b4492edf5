"""Comparing one source directory with what each host listed: pure logic, no I/O.

The rules, per file and host:

- not on the host: ``"missing"``; a directory there instead: ``"directory"``;
- another size: ``"size"``;
- the same size: with ``--checksum``, the content decides (the caller reads
  both and compares SHA-256: ``"content"``); otherwise a host copy whose
  ``Last-Modified`` is older than the source's modification time (to the
  second, HTTP's resolution) is ``"older"``, and anything else is identical.
  A host that gives no date is judged by size alone.

What a host has and the source has not is extra: files, and directories as
a whole (a directory the source lacks counts once, whatever it holds).  Names
the name rules refuse are never extra: they are reported and left alone.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from .._exceptions import InvalidNameError
from .._names import encode_name
from .._webdav import FileFacts, Listing
from .tree import Directory, SourceFacts, join

__all__ = ["Comparison", "Difference", "compare_directory", "compare_file"]

Difference = Literal["missing", "directory", "size", "older", "content"]


@dataclasses.dataclass(slots=True)
class Comparison:
    """One directory against every host that listed it.

    ``files``: per source file with a difference, per host, which one.
    ``checks``: per source file, the hosts whose copy has its size and must
    be read to compare content (``--checksum``).  ``extra_files`` and
    ``extra_directories``: per host, names the source lacks.  ``refused``:
    per host, names no media server may have.
    """

    files: dict[str, dict[str, Difference]] = dataclasses.field(default_factory=dict)
    checks: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    extra_files: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    extra_directories: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    refused: dict[str, list[str]] = dataclasses.field(default_factory=dict)


def compare_file(
    source: SourceFacts, found: FileFacts | None, *, checksum: bool
) -> Difference | Literal["same size"] | None:
    """How one host's copy (``found``: size and date, None when missing) differs, if it does.

    ``"same size"`` with ``checksum``: only the content can tell.
    """
    if found is None:
        return "missing"
    size, modified = found
    if size != source[0]:
        return "size"
    if checksum:
        return "same size" if size else None  # two empty files are the same file
    if modified is not None and modified < int(source[1]):
        return "older"
    return None


def compare_directory(
    directory: Directory, listings: dict[str, Listing], *, checksum: bool
) -> Comparison:
    comparison = Comparison()
    checks: dict[str, list[str]] = {}
    for host, listing in listings.items():
        facts = listing.facts
        directories = set(listing.directories)
        for name, source in directory.files.items():
            found = facts.get(name)
            if found is None and name in directories:
                comparison.files.setdefault(name, {})[host] = "directory"
                continue
            difference = compare_file(source, found, checksum=checksum)
            if difference == "same size":
                checks.setdefault(name, []).append(host)
            elif difference is not None:
                comparison.files.setdefault(name, {})[host] = difference
        sources = directory.files
        subdirs = set(directory.subdirs)
        for name in facts:
            if name not in sources:
                _extra(comparison, comparison.extra_files, host, directory.path, name)
        for name in listing.directories:
            if name not in subdirs and name not in sources:
                _extra(comparison, comparison.extra_directories, host, directory.path, name)
    comparison.checks = {name: tuple(hosts) for name, hosts in checks.items()}
    return comparison


def _extra(
    comparison: Comparison, into: dict[str, list[str]], host: str, path: str, name: str
) -> None:
    try:
        encode_name(join(path, name))
    except InvalidNameError:
        comparison.refused.setdefault(host, []).append(join(path, name))
        return
    into.setdefault(host, []).append(name)
