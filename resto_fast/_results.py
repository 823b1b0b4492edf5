"""What an operation did on each host, and how status codes are read.

The reading of status codes is django-resto's, with one deliberate
addition: ``PUT`` answered ``200`` means *replaced*, like ``204``, since
RFC 9110 allows either for a successful overwrite.

=========  ======================  ======================  ==========================
method     success                 success, with warning   anything else
=========  ======================  ======================  ==========================
PUT        201 created             200/204 replaced        failure
DELETE     200/204 deleted         404/410 already gone    failure
HEAD, GET  200 found               404/410 missing (no     failure
                                   warning: an answer)
PROPFIND   207 found (a listing)   404/410 missing         failure (405/501: the server
                                                           does not list directories)
=========  ======================  ======================  ==========================

``202 Accepted``, every ``3xx`` (redirects are not followed), other ``4xx``
and ``5xx`` are failures: each breaks the promise that the copy exists (or
is gone) when the call returns.  The table the engine reads is each kind's
``outcomes`` in ``_kinds``.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator, Mapping
from typing import Self

from ._exceptions import HostError, ReplicationError, SourceError

__all__ = ["HostResult", "OperationResult", "Outcome", "RemoteStat"]


class Outcome(enum.Enum):
    """What one request did on one host."""

    CREATED = "created"
    REPLACED = "replaced"
    DELETED = "deleted"
    ALREADY_GONE = "already gone"
    FOUND = "found"
    MISSING = "missing"
    FAILED = "failed"
    SKIPPED = "skipped"  # not sent: the host is down (see _breaker), a failure of its own


@dataclasses.dataclass(slots=True)
class HostResult:
    """One request to one host: its outcome, status, bytes moved, time taken, error.

    A record to read, not to change.  (Not a frozen dataclass: a frozen
    ``__init__`` costs a third more, on every host of every file.)
    """

    host: str
    url: str
    method: str
    outcome: Outcome
    status: int | None
    transferred: int
    elapsed: float
    error: HostError | None = None
    new_connections: int = 0
    size: int | None = None
    modified: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is not Outcome.FAILED and self.outcome is not Outcome.SKIPPED


@dataclasses.dataclass(slots=True)
class OperationResult:
    """One operation (a file put or deleted) across every host it was sent to.

    A record to read, not to change, made once per file: not frozen, as
    :class:`HostResult` is not (a frozen ``__init__`` costs four times as much).
    """

    method: str
    name: str
    hosts: tuple[HostResult, ...]
    source_error: SourceError | None = None

    @property
    def ok(self) -> bool:
        """True when every host succeeded (warnings included) and the source was read."""
        if self.source_error is not None:
            return False
        for result in self.hosts:  # noqa: SIM110  (all() and its generator: twice the cost)
            if not result.ok:
                return False
        return True

    @property
    def failures(self) -> dict[str, HostError]:
        return {r.host: r.error for r in self.hosts if r.error is not None}

    @property
    def succeeded(self) -> tuple[str, ...]:
        return tuple(r.host for r in self.hosts if r.ok)

    def __iter__(self) -> Iterator[HostResult]:
        return iter(self.hosts)

    def __getitem__(self, host: str) -> HostResult:
        for result in self.hosts:
            if result.host == host:
                return result
        raise KeyError(host)

    def raise_for_failures(self) -> Self:
        """Raise when anything failed; return the result otherwise, for chaining.

        The source's own error comes first (``SourceError``): then no host has a
        copy.  Else one :class:`ReplicationError` names every failed host.
        """
        if self.source_error is not None:
            raise self.source_error
        if self.ok:  # every save of a storage asks: the common answer without a dict
            return self
        failures = self.failures
        if failures:
            raise ReplicationError(
                describe_failures(self.method, self.name, failures, len(self.hosts)),
                name=self.name,
                method=self.method,
                failures=failures,
                succeeded=self.succeeded,
            )
        return self


def describe_failures(method: str, name: str, failures: Mapping[str, Exception], total: int) -> str:
    """``PUT 'a.jpg' failed on 2 of 3 hosts: m1:80 (refused: ...); m2:80 (HTTP 500)``."""
    details = "; ".join(f"{host} ({error})" for host, error in failures.items())
    return f"{method} {name!r} failed on {len(failures)} of {total} hosts: {details}"


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteStat:
    """What a HEAD told about a file on one host."""

    host: str
    size: int | None
    modified: float | None
