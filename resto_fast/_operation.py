"""A job, what asks for an operation; and the operation: one method on one file, fanned out
to some hosts.

A :class:`Job` is what a caller hands :meth:`Replicator.run_jobs`: names,
hosts and a source, nothing opened yet.  The replicator turns each into an
:class:`Operation` when its turn comes (opening its source then); the engine
runs operations and fills in one :class:`HostResult` per host.  The
operation's class is the hot path's (``_multi``, or its twin), since the loop
reads and writes it for every host of every request; it is named here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from ._buffer import Operation
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
