"""State-based replication: make some hosts hold a file as its source holds it *now*.

A queued "PUT this" can overtake a later "DELETE this", and replaying failed
operations breaks their order: django-resto dropped django_dust's retry queue
for that.  Here nothing is replayed.  :func:`converge` looks at the source
when it runs: the file is there, so every host gets it (one read, streamed to
all); it is gone, so every host loses it (404 counts as done).  After the
transfer it looks again (inode, size, mtime): if the source changed meanwhile,
what went out may be stale or half-old, so it does it all again.  Duplicates,
retries and any order of runs therefore end in the same state: the source's.

The source is a master copy on disk (HybridStorage, AsyncStorage) or, for a
site without one (DistributedStorage), the hosts that hold the file.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Sequence

from ._exceptions import NotFoundError, RestoError
from ._replicator import Replicator, log_extra
from ._results import OperationResult
from ._sources import file_stamp

__all__ = ["Convergence", "converge_from_file", "converge_from_hosts"]

logger = logging.getLogger("resto_fast")

#: Times a source that changes during the transfer is sent again before giving up for now.
ROUNDS = 4
_SPOOL_IN_MEMORY = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Convergence:
    """What one run did: ``action`` ``"PUT"`` or ``"DELETE"`` (or ``""`` when it could not
    tell), the hosts now in step, and the hosts that failed with why (JSON-able text)."""

    name: str
    action: str
    succeeded: tuple[str, ...]
    failed: dict[str, str]
    rounds: int = 1

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, object]:
        """For a task queue's result store: JSON types only."""
        return {
            "name": self.name,
            "action": self.action,
            "succeeded": list(self.succeeded),
            "failed": dict(self.failed),
            "rounds": self.rounds,
        }


def _convergence(name: str, result: OperationResult, rounds: int) -> Convergence:
    failed = {host: str(error) for host, error in result.failures.items()}
    if result.source_error is not None:  # nobody got it: every host failed for the same reason
        failed = {host.host: str(result.source_error) for host in result.hosts} or failed
    succeeded = tuple(h.host for h in result.hosts if h.ok and h.host not in failed)
    return Convergence(name, result.method, succeeded, failed, rounds)


def converge_from_file(
    replicator: Replicator, name: str, path: str, hosts: Sequence[str] | None = None
) -> Convergence:
    """Make ``hosts`` (default: every host) hold ``name`` as the file at ``path`` is now:
    present, sent; absent, deleted.  Looks again after each transfer, and starts over
    (up to :data:`ROUNDS` times) when the file changed meanwhile."""
    targets = None if hosts is None else list(hosts)
    for rounds in range(1, ROUNDS + 1):
        before = file_stamp(path)
        if before is None:
            result = replicator.delete(name, hosts=targets)
        else:
            result = replicator.put(name, path, hosts=targets)
            if result.source_error is not None and not result.hosts:
                continue  # gone, or replaced, between the look and the open: look again
        if file_stamp(path) == before:
            return _convergence(name, result, rounds)
    logger.warning(
        "%r kept changing while it was replicated (%d rounds); left for the next run",
        name,
        ROUNDS,
        extra=log_extra(None, name, None),
    )
    everyone = targets if targets is not None else list(replicator.hosts)
    why = "the source kept changing while it was sent"
    return Convergence(name, "", (), dict.fromkeys(everyone, why), ROUNDS)


def converge_from_hosts(
    replicator: Replicator, name: str, hosts: Sequence[str], sources: Sequence[str]
) -> Convergence:
    """Make ``hosts`` hold ``name`` as the ``sources`` hold it: a site with no master copy.

    The first source that has the file is read into a spool (memory up to
    1 MiB, then a temporary file) and sent from there; when every source
    answers that it is missing, it was deleted, and so it is on ``hosts``.
    When no source can answer, nothing is decided: every host fails.
    """
    why = "no host holding the file could be read"
    answered_missing = 0
    for source in sources:
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            try:
                replicator.get_into(name, spool.write, host=source)
            except NotFoundError:
                answered_missing += 1
                continue
            except RestoError as exc:  # it could not answer (a ReplicationError, say)
                why = f"reading it from {source} failed: {exc}"
                continue
            spool.seek(0)
            return _convergence(name, replicator.put(name, spool, hosts=list(hosts)), 1)
    if sources and answered_missing == len(sources):
        return _convergence(name, replicator.delete(name, hosts=list(hosts)), 1)
    return Convergence(name, "", (), dict.fromkeys(hosts, why))
