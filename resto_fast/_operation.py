"""An operation: one method on one file, fanned out to some hosts; and a job, what asks for one.

A :class:`Job` is what a caller hands :meth:`Replicator.run_jobs`: names,
hosts and a source, nothing opened yet.  The replicator turns each into an
:class:`Operation` when its turn comes (opening its source then); the engine
runs operations and fills in one :class:`HostResult` per host.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from ._buffer import ChunkWindow
from ._exceptions import RestoError
from ._kinds import kind_of
from ._results import HostResult
from ._sources import Source

__all__ = ["Job", "Operation", "Sink"]

#: Where a GET's body goes, piece by piece (a file's ``write``, a hash's ``update``).
Sink = Callable[[bytes], object]


@dataclasses.dataclass(slots=True, eq=False)
class Job:
    """One method on one file, or on one directory, for some hosts: a unit of
    :meth:`Replicator.run_jobs`.

    ``hosts`` None means every configured host.  A ``PUT`` has a ``source``;
    a ``GET`` or ``PROPFIND`` has ``sinks``, one per host in the order of
    ``hosts``, where the body goes.  ``directory`` makes the URL a
    collection's (a ``PROPFIND`` listing, a ``DELETE`` of a whole directory).
    ``warn=False`` keeps surprises that are expected (a ``PUT`` that replaces
    a file known to differ) out of the WARNING log; failures are always logged.
    Compared by identity, so a job can key a dict.
    """

    method: str
    name: str
    hosts: Sequence[str] | None = None
    source: Source | None = None
    sinks: Sequence[Sink] | None = None
    directory: bool = False
    warn: bool = True


class Operation:
    """One method on one file, fanned out to some hosts; the engine fills ``results``."""

    __slots__ = (
        "body",
        "kind",
        "method",
        "name",
        "pending",
        "results",
        "sinks",
        "targets",
        "transfers",
        "window",
    )

    def __init__(
        self,
        method: str,
        name: str,
        targets: Sequence[tuple[str, str]],
        *,
        window: ChunkWindow | None = None,
        body: bytes | None = None,
        sinks: Sequence[Sink] | None = None,
        directory: bool = False,
    ) -> None:
        """A PUT carries its content as a ``window`` (streamed) or a ``body`` (given whole);
        a DELETE of a ``directory`` removes all below it (see ``_kinds``)."""
        self.method = method
        self.name = name
        self.targets = targets  # (host, url) pairs
        self.window = window
        self.body = body
        self.kind = kind_of(
            method,
            whole=body is not None,
            directory=directory,
            size=None if body is None else len(body),
        )
        self.sinks = sinks
        self.results: list[HostResult | None] = [None] * len(targets)
        self.transfers: list[Any] = [None] * len(targets)  # the engine's, while running
        self.pending = len(targets)

    def host_results(self) -> tuple[HostResult, ...]:
        if self.pending:
            raise RestoError(f"{self.method} {self.name!r} has not finished on every host")
        return tuple(self.results)  # type: ignore[arg-type]  # none is None once pending is 0
