"""What a resync counted, per host and in all, and how it is told: a table, JSON, an exit status.

Each process counts into a :class:`Tally`; the parent adds them up.  The
exit status is the command's contract: ``0`` every host holds every source
file identical (and, with ``--delete``, nothing more), ``1`` differences
remain (``verify``, a dry run: found; ``sync``: not repaired), ``2`` a usage
or configuration error (raised before any report exists), ``130`` when
interrupted.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .._progress import human_bytes
from .options import SyncOptions

__all__ = ["COLUMNS", "HostTally", "SyncReport", "Tally"]

#: The per-host table's columns, in order; each is a HostTally field.
COLUMNS = ("listed", "missing", "differing", "extra", "uploaded", "deleted", "failed")

EXIT_OK, EXIT_DIFFERENCES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclasses.dataclass
class HostTally:
    """One host's counts.  ``listed``: files its listings named (or HEADs found); ``missing``,
    ``differing``, ``extra``: what the comparison found; ``uploaded``, ``deleted``: repairs
    that succeeded; ``failed``: files that could not be checked or repaired there."""

    listed: int = 0
    missing: int = 0
    differing: int = 0
    extra: int = 0
    uploaded: int = 0
    deleted: int = 0
    failed: int = 0
    uploaded_bytes: int = 0
    refused: int = 0  # names on the host the name rules refuse: reported, left alone
    cannot_list: bool = False  # answered PROPFIND 405/501: checked with HEAD, extras unseen
    down: str = ""  # why it was given up for the rest of the run, if it was

    def add(self, other: HostTally) -> None:
        for field in dataclasses.fields(self):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            if isinstance(mine, bool):
                setattr(self, field.name, mine or theirs)
            elif isinstance(mine, int):
                setattr(self, field.name, mine + theirs)
            elif theirs and not mine:
                setattr(self, field.name, theirs)


@dataclasses.dataclass
class Tally:
    """What one process counted (and, added up, the whole run)."""

    hosts: dict[str, HostTally] = dataclasses.field(default_factory=dict)
    directories: int = 0  # source directories compared
    files: int = 0  # source files compared
    bytes: int = 0  # their size
    refused: int = 0  # source names the name rules refuse: reported, skipped
    unreadable: int = 0  # source directories that could not be read: nothing judged there
    vanished: int = 0  # source files gone between listing and sending
    to_send: int = 0  # uploads planned (one per file, whatever its hosts)
    bytes_to_send: int = 0  # their bytes, times the hosts each goes to
    sent: int = 0  # uploads finished
    bytes_sent: int = 0  # bytes delivered so far, summed over hosts

    def host(self, name: str) -> HostTally:
        tally = self.hosts.get(name)
        if tally is None:
            tally = self.hosts[name] = HostTally()
        return tally

    def add(self, other: Tally) -> None:
        for name, tally in other.hosts.items():
            self.host(name).add(tally)
        for field in dataclasses.fields(self):
            if field.name != "hosts":
                setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


@dataclasses.dataclass
class SyncReport:
    """The outcome of one run, for the table, the JSON summary and the exit status."""

    options: SyncOptions
    tally: Tally
    elapsed: float
    interrupted: bool = False
    incomplete: str = ""  # a worker process that died, say

    def remaining(self, host: HostTally) -> int:
        """Differences still there on one host after this run."""
        extra = host.extra if self.options.delete else 0
        if not self.options.changes:
            return host.missing + host.differing + extra + host.failed
        return host.failed  # every difference found was repaired, or counted here

    @property
    def ok(self) -> bool:
        return (
            not self.interrupted
            and not self.incomplete
            and not self.tally.unreadable
            and all(self.remaining(host) == 0 for host in self.tally.hosts.values())
        )

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_OK if self.ok else EXIT_DIFFERENCES

    def verdict(self) -> str:
        options = self.options
        hosts = len(self.tally.hosts)
        if self.interrupted:
            return "INTERRUPTED: run it again to carry on; every decision is made afresh"
        if self.incomplete:
            return f"INCOMPLETE: {self.incomplete}"
        if self.tally.unreadable:
            return (
                f"INCOMPLETE: {self.tally.unreadable} source directories could not be read; "
                "nothing was judged (or deleted) there"
            )
        differing = [name for name, host in self.tally.hosts.items() if self.remaining(host)]
        if not differing:
            extra = " and nothing more" if options.delete else ""
            return f"OK: {hosts} hosts hold every source file{extra}"
        verb = "differ" if not options.changes else "still differ"
        if options.dry_run:
            verb = "would be changed"
        return f"DIFFERENT: {len(differing)} of {hosts} hosts {verb}: {', '.join(differing)}"

    def table(self) -> str:
        tally = self.tally
        width = max([len("host"), *(len(name) for name in tally.hosts)]) + 2
        lines = ["host".ljust(width) + "".join(f"{column:>11}" for column in COLUMNS)]
        for name, host in tally.hosts.items():
            cells = "".join(f"{getattr(host, column):>11,}" for column in COLUMNS)
            notes = []
            if host.cannot_list:
                notes.append("cannot list: checked with HEAD, extras not seen")
            if host.down:
                notes.append(f"given up: {host.down}")
            if host.refused:
                notes.append(f"{host.refused} names refused, left alone")
            lines.append(name.ljust(width) + cells + ("   " + "; ".join(notes) if notes else ""))
        prefix = f" under {self.options.prefix}/" if self.options.prefix else ""
        summary = (
            f"{tally.files:,} source files ({human_bytes(tally.bytes)}) in "
            f"{tally.directories:,} directories{prefix}, {len(tally.hosts)} hosts, "
            f"{self.elapsed:.2f} s"
        )
        if tally.refused:
            summary += f"; {tally.refused} source names refused (skipped)"
        if tally.vanished:
            summary += f"; {tally.vanished} source files vanished during the run (left)"
        if self.options.dry_run:
            summary += "; dry run: nothing was changed"
        return "\n".join([*lines, summary, self.verdict()])

    def to_json(self) -> dict[str, Any]:
        options = self.options
        tally = self.tally
        return {
            "command": options.command,
            "source": options.source,
            "base_url": options.config.base_url,
            "prefix": options.prefix,
            "delete": options.delete,
            "checksum": options.checksum,
            "dry_run": options.dry_run,
            "ok": self.ok,
            "exit_status": self.exit_code,
            "verdict": self.verdict(),
            "interrupted": self.interrupted,
            "incomplete": self.incomplete or None,
            "elapsed": round(self.elapsed, 3),
            "directories": tally.directories,
            "files": tally.files,
            "bytes": tally.bytes,
            "refused": tally.refused,
            "unreadable": tally.unreadable,
            "vanished": tally.vanished,
            "uploads": tally.sent,
            "bytes_sent": tally.bytes_sent,
            "hosts": {
                name: {
                    **{column: getattr(host, column) for column in COLUMNS},
                    "uploaded_bytes": host.uploaded_bytes,
                    "refused": host.refused,
                    "remaining": self.remaining(host),
                    "listing": "head" if host.cannot_list else "propfind",
                    "down": host.down or None,
                }
                for name, host in tally.hosts.items()
            },
        }
