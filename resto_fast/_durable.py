"""The storages' side of durable replication: their alias, the task's work, retries, repairs.

A task names its storage by its ``STORAGES`` alias (a storage does not
travel), so a storage that queues work finds its own alias: the entry of
``STORAGES`` whose instance it is.  The task's work is :meth:`replicate_now`:
converge the hosts on the source as it is now (:mod:`._converge`), then put
the hosts that failed back on the queue, later, until ``retries`` attempts,
after which an ERROR record names the file and the hosts for ``resto_sync``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ._converge import Convergence, converge_from_file, converge_from_hosts
from ._queues import backoff, enqueue
from ._replicator import Replicator, log_extra
from .settings import StorageConfig

__all__ = ["Durable", "replicated"]

logger = logging.getLogger("resto_fast.storage")


class Durable:
    """Mixed into the replicated storages; needs their config, replicator and hosts."""

    resto_config: StorageConfig
    _only_copy: bool
    if TYPE_CHECKING:  # what the storages provide (defined here, they would shadow theirs)

        @property
        def replicator(self) -> Replicator: ...

        @property
        def hosts(self) -> tuple[str, ...]: ...

        def path(self, name: str) -> str: ...

    @property
    def alias(self) -> str:
        """This storage's alias in ``STORAGES``, which every task it queues carries."""
        known: str | None = self.__dict__.get("_alias")
        if known is not None:
            return known
        from django.core.files.storage import storages

        alias: str
        for alias, entry in settings.STORAGES.items():
            backend = entry.get("BACKEND", "")
            try:
                built: object = storages[alias] if import_string(backend) is type(self) else None
            except ImportError:
                continue
            if built is self:
                self.__dict__["_alias"] = alias
                return alias
        raise ImproperlyConfigured(
            f"{type(self).__name__} queues its replication by its STORAGES alias, and this one "
            "is not in STORAGES: define it there and get it from django.core.files.storage."
            "storages, or keep queue='thread'"
        )

    def converge(self, name: str, hosts: Sequence[str] | None = None) -> Convergence:
        """Make ``hosts`` (default: all) hold ``name`` as the source holds it now."""
        if self._only_copy:
            targets = list(hosts if hosts is not None else self.hosts)
            sources = [host for host in self.hosts if host not in targets]
            return converge_from_hosts(self.replicator, name, targets, sources)
        return converge_from_file(self.replicator, name, self.path(name), hosts)

    def replicate_now(
        self, name: str, hosts: Sequence[str] | None = None, attempt: int = 1
    ) -> Convergence:
        """The replication task's work: converge, and queue the hosts that failed again."""
        done = self.converge(name, hosts)
        if done.failed:
            self.queue_again(name, sorted(done.failed), attempt=attempt + 1)
        return done

    def queue_replication(self, name: str) -> None:
        """Hand the replication of ``name`` on every host to the queue, now."""
        enqueue(self.resto_config.queue, self.alias, name, None)

    def queue_again(self, name: str, hosts: Iterable[str], *, attempt: int) -> None:
        """Queue attempt ``attempt`` for ``hosts`` after its backoff, or give up, loudly."""
        config = self.resto_config.queue
        hosts = list(hosts)
        if attempt > config.retries + 1:
            logger.error(
                "%r is still not in step on %s after %d attempts: left for "
                "`manage.py resto_sync` (or resto-fast sync)",
                name,
                ", ".join(hosts),
                attempt - 1,
                extra=log_extra(None, name, ", ".join(hosts)),
            )
            return
        delay = backoff(config, attempt - 1)
        logger.info(
            "%r: attempt %d for %s in %.1f s",
            name,
            attempt,
            ", ".join(hosts),
            delay,
            extra=log_extra(None, name, ", ".join(hosts)),
        )
        enqueue(config, self.alias, name, hosts, attempt=attempt, delay=delay)

    def repair(self, name: str, failures: Iterable[str]) -> None:
        """After a save or delete that failed on some hosts: queue their repair, if asked."""
        if self.resto_config.queue.repairs:
            self.queue_again(name, failures, attempt=2)


def replicated(storage: Any, alias: str) -> Durable:
    """``storage`` (``STORAGES[alias]``) as a replicated storage that knows its alias."""
    if not isinstance(storage, Durable):
        raise ImproperlyConfigured(
            f"STORAGES[{alias!r}] is a {type(storage).__name__}, not a resto_fast storage"
        )
    storage.__dict__["_alias"] = alias
    return storage
