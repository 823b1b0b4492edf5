"""``resto-fast sync``/``verify`` and ``manage.py resto_sync``/``resto_verify``: options in,
a progress display while it runs, then a per-host table (or one JSON object) and the exit status."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from .._cli import CommandError, connection_config, host_list
from .._config import ReplicatorConfig
from .._progress import Display, Meter
from .options import SyncOptions
from .report import EXIT_INTERRUPTED, SyncReport, Tally
from .run import check_source, run_sync

__all__ = ["execute", "options_from_args", "run_command"]


def options_from_args(
    args: argparse.Namespace, *, config: ReplicatorConfig, source_dir: str | None
) -> SyncOptions:
    """The options a parsed command line asks for, on a given connection config."""
    if args.source_host and source_dir:
        raise CommandError("give SOURCE_DIR or --source-host, not both")
    if not args.source_host and not source_dir:
        raise CommandError("name the source: SOURCE_DIR (the master copy) or --source-host HOST")
    return SyncOptions(
        config=config,
        source_dir=source_dir if not args.source_host else None,
        source_host=args.source_host,
        prefix=args.prefix,
        delete=args.delete,
        checksum=args.checksum,
        dry_run=getattr(args, "dry_run", False),
        verify=args.command == "verify" if hasattr(args, "command") else False,
        processes=args.processes,
        concurrency=args.concurrency,
    )


def run_command(args: argparse.Namespace) -> int:
    config = connection_config(args)
    if not host_list(args.hosts):
        raise CommandError("no media host given: name them with --hosts H1,H2,...")
    options = options_from_args(args, config=config, source_dir=args.source_dir)
    return execute(options, json_output=args.json, quiet=args.quiet)


class _LogToDisplay(logging.Handler):
    """The package's log records, printed on stderr through the display (so bars stay whole)."""

    def __init__(self, display: Display, stream: TextIO) -> None:
        super().__init__()
        self._display = display
        self._stream = stream
        self.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._display.print(self.format(record), stream=self._stream)
        except Exception:
            self.handleError(record)


@contextmanager
def _logging_to(display: Display, stream: TextIO, level: int) -> Iterator[None]:
    package = logging.getLogger("resto_fast")
    handler = _LogToDisplay(display, stream)
    handler.setLevel(level)
    old_level, old_propagate = package.level, package.propagate
    package.addHandler(handler)
    package.setLevel(min(level, old_level or logging.WARNING))
    package.propagate = False
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(old_level)
        package.propagate = old_propagate


def execute(
    options: SyncOptions,
    *,
    json_output: bool = False,
    quiet: bool = False,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run it, show it, report it; returns the exit status (0, 1, or 130 when interrupted)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    listing = Meter("listing", unit="files compared")
    transfer = Meter("transfer", unit="files")
    checking = not options.changes
    meters = [listing] if checking else [listing, transfer]
    display = Display(meters, mode="off" if quiet else None, stream=err)

    def on_tally(tally: Tally) -> None:
        listing.done = tally.files
        listing.note = f"{tally.directories:,} directories"
        transfer.done, transfer.total = tally.sent, tally.to_send
        transfer.bytes_done, transfer.bytes_total = tally.bytes_sent, tally.bytes_to_send
        display.refresh()

    def say(line: str) -> None:
        if not quiet and not json_output:
            display.print(line, stream=out)

    def note(line: str) -> None:
        if not quiet:
            display.print(f"{options.command}: {line}", stream=err)

    check_source(options)  # a missing source, or --delete from an empty one: before anything
    if not quiet:
        err.write(f"{options.command}: {options.source} -> {', '.join(options.config.hosts)}\n")
    with display, _logging_to(display, err, logging.ERROR if quiet else logging.WARNING):
        report = run_sync(options, say=say, note=note, on_tally=on_tally, checked=True)
        on_tally(report.tally)
        for meter in meters:
            meter.finished = time.monotonic()
            meter.started = meter.finished - report.elapsed
    _print_report(report, out, err, json_output=json_output, quiet=quiet)
    return report.exit_code


def _print_report(
    report: SyncReport, out: TextIO, err: TextIO, *, json_output: bool, quiet: bool
) -> None:
    if json_output:
        out.write(json.dumps(report.to_json(), indent=2) + "\n")
    elif not quiet:
        out.write(report.table() + "\n")
    elif report.exit_code == EXIT_INTERRUPTED or not report.ok:
        err.write(report.verdict() + "\n")
    out.flush()
