"""The options of ``sync`` and ``verify``, shared by ``resto-fast`` and the management commands."""

from __future__ import annotations

import argparse

from .._argtypes import at_least_one
from .options import DEFAULT_CONCURRENCY, MAX_PROCESSES, default_processes

__all__ = ["add_sync_arguments"]


def add_sync_arguments(
    parser: argparse.ArgumentParser, *, mode: str, source_dir: bool = True
) -> None:
    """Add the source and the comparison options; ``source_dir`` adds the SOURCE_DIR argument."""
    if source_dir:
        parser.add_argument(
            "source_dir",
            nargs="?",
            metavar="SOURCE_DIR",
            help="the master copy (for a Django site: MEDIA_ROOT); or give --source-host",
        )
    parser.add_argument(
        "--source-host",
        metavar="HOST",
        help="take another media server as the source (a site with no master copy, or "
        "bootstrapping a new media server from a full one)",
    )
    parser.add_argument(
        "--prefix", default="", metavar="PATH", help="only the files under this directory"
    )
    parser.add_argument(
        "--delete",
        action="store_true",
        help="remove what a host has and the source has not"
        if mode == "sync"
        else "also count what a host has and the source has not as a difference",
    )
    parser.add_argument(
        "--checksum",
        action="store_true",
        help="compare the content (SHA-256) of files of the same size, not their size and date",
    )
    if mode == "sync":
        parser.add_argument(
            "--dry-run", action="store_true", help="say what would be done; change nothing"
        )
    parser.add_argument(
        "--processes",
        type=at_least_one,
        default=default_processes(),
        metavar="N",
        help=f"worker processes (default: the CPU count, at most {MAX_PROCESSES}; here "
        f"{default_processes()})",
    )
    parser.add_argument(
        "--concurrency",
        type=at_least_one,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"operations in flight per process (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON summary on stdout instead of a table"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress, no table: errors only, and the status"
    )
