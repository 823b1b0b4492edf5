"""An operation: one method on one file, fanned out to some hosts.

The replicator builds operations; the engine runs them and fills in one
:class:`HostResult` per host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._buffer import ChunkWindow
from ._results import HostResult

__all__ = ["Operation", "Sink"]

#: Where a GET's body goes, piece by piece (a file's ``write``, a hash's ``update``).
Sink = Callable[[bytes], object]


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
    ) -> None:
        """A PUT carries its content as a ``window`` (streamed) or a ``body`` (given whole)."""
        self.method = method
        self.name = name
        self.targets = targets  # (host, url) pairs
        self.window = window
        self.body = body
        self.kind = "PUT_BODY" if body is not None else method
        self.sinks = sinks
        self.results: list[HostResult | None] = [None] * len(targets)
        self.transfers: list[Any] = [None] * len(targets)  # the engine's, while running
        self.pending = len(targets)

    def host_results(self) -> tuple[HostResult, ...]:
        if self.pending:
            raise RuntimeError(f"{self.method} {self.name!r} has not finished on every host")
        return tuple(self.results)  # type: ignore[arg-type]  # none is None once pending is 0
