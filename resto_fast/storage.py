"""Django storage backends that put every saved file on all the media servers at once.

- :class:`HybridStorage`: the master copy under ``MEDIA_ROOT`` first (Django's
  ``FileSystemStorage``), then every media server in parallel, streamed from
  the master copy.  Reads are local.
- :class:`AsyncStorage`: the same, with the replication queued to a
  background worker, or to a task queue by overriding :meth:`~AsyncStorage.execute_one`.
- :class:`DistributedStorage`: no local copy; reads ask one media server.

A drop-in for django-resto 1.x: the same classes, settings, constructor
arguments and extension points (``execute``, ``execute_one``,
:class:`DefaultTransport`).  Options resolve once, when a storage is built
(see :mod:`resto_fast.settings`), into the config the Django-free
:class:`~resto_fast.Replicator` runs on.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage
from django.utils.deconstruct import deconstructible
from django.utils.encoding import filepath_to_uri

from . import checks  # noqa: F401  - registers the system checks
from ._background import BackgroundWorker
from ._dispatch import FailurePolicy, is_save, run_action, say_gone
from ._durable import Durable
from ._exceptions import (
    HostError,
    ReplicationError,
    RestoError,
    UnexpectedStatusCode,
)
from ._names import encode_name
from ._replicator import Replicator, log_extra
from ._transport import DefaultTransport, MasterCopy, fan_out_method, rewound
from .settings import StorageConfig, resolve

__all__ = [
    "AsyncStorage",
    "DefaultTransport",
    "DistributedStorage",
    "HybridStorage",
    "MasterCopy",
    "UnexpectedStatusCode",
]

logger = logging.getLogger("resto_fast.storage")

#: What FileSystemStorage itself accepts (``allow_overwrite`` exists from Django 5.1).
_LOCAL_OPTIONS = frozenset(inspect.signature(FileSystemStorage.__init__).parameters) - {"self"}

#: A file DistributedStorage.open() fetches stays in memory up to this size, then spills to disk.
_OPEN_IN_MEMORY = 1024 * 1024


class _Replicated(Durable):
    """What the three storages share: resolved options, the transport, ``execute``, and
    (from :class:`Durable`) the queue's side: the replication task, retries, repairs."""

    transport_class: type[DefaultTransport] = DefaultTransport
    resto_config: StorageConfig
    transport: DefaultTransport

    def _setup_replication(
        self, options: dict[str, Any], base_url: str | None, known: frozenset[str]
    ) -> None:
        self.resto_config = resolve(options, base_url=base_url, known=known)
        self.transport = self.transport_class(config=self.resto_config.replicator)

    @property
    def hosts(self) -> tuple[str, ...]:
        """The media servers, ``host:port``."""
        return self.resto_config.replicator.hosts

    @property
    def fatal_exceptions(self) -> bool:
        return self.resto_config.fatal_exceptions

    @property
    def replicator(self) -> Replicator:
        return self.transport.replicator

    def execute(self, func: Callable[..., Any], name: str, *args: Any) -> dict[str, Any]:
        """Run ``func(host, name, *args)`` on every media server in parallel.

        Returns what it returned on each host that succeeded.  Failures are
        logged at ERROR, one line per host; with ``fatal_exceptions`` one
        :class:`ReplicationError` naming every failed host is raised after all
        hosts have finished.  The default transport's ``create`` and
        ``delete`` run as one fan-out of the engine (the file is read once);
        any other callable runs on a thread per host.
        """
        if not self.hosts:
            if self._only_copy and is_save(getattr(func, "__name__", "")):
                raise ReplicationError(
                    f"cannot save {name!r}: no media host is configured",
                    name=name,
                    method="PUT",
                    failures={},
                    succeeded=(),
                )
            return {}
        return self._run_on(self.hosts, func, name, args)

    def _run_on(
        self, hosts: tuple[str, ...], func: Callable[..., Any], name: str, args: tuple[Any, ...]
    ) -> dict[str, Any]:
        """``func`` on ``hosts``, by the dispatch rule (see :mod:`._dispatch`)."""
        return run_action(self._failure_policy, hosts, func, name, args)

    @functools.cached_property
    def _failure_policy(self) -> FailurePolicy:
        return FailurePolicy(
            fatal=self.fatal_exceptions,
            only_copy=self._only_copy,
            deletes_follow=self._deletes_follow,
            write_quorum=self.resto_config.write_quorum,
            log_tracebacks=self.resto_config.replicator.log_tracebacks,
            repair=self.repair,
        )

    def _undo_save(self, name: str, failed: RestoError, master: str | None) -> None:
        """A save that raises leaves nothing behind: its master copy (``master``) is removed
        and so are the copies that did land, best effort, so the same name can be saved
        again as it is (not renamed for a file that failed).  Said at WARNING."""
        undone = []
        if master is not None:
            try:
                os.remove(master)
                undone.append("the master copy")
            except OSError as exc:
                logger.warning(
                    "after the failed save of %r, its master copy could not be removed: %s",
                    name,
                    exc,
                    extra=log_extra(None, name, None),
                )
        landed = list(getattr(failed, "succeeded", ()))
        if landed:
            result = self.replicator.delete(name, hosts=landed)  # its failures are logged
            undone += [f"the copy on {host}" for host in result.succeeded]
        if undone:
            logger.warning(
                "the save of %r failed, so it was undone: %s removed",
                name,
                ", ".join(undone),
                extra=log_extra(None, name, None),
            )

    #: True where the media servers hold the only copy (DistributedStorage).
    _only_copy = False
    # Replication runs after the request (AsyncStorage): a master copy deleted meanwhile is
    # no failure, its DELETE is queued next.
    _deletes_follow = False

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_worker", None)  # AsyncStorage's thread
        state.pop("_failure_policy", None)  # made again from the rest on first use
        return state


def _binary(content: File) -> Any:  # type: ignore[type-arg]
    """Text content (``ContentFile("...")``, as FileSystemStorage accepts it) as UTF-8 bytes."""
    rewound(content)
    if isinstance(content.read(0), str):
        return ContentFile(content.read().encode())
    return content


def _given(options: dict[str, Any], **arguments: Any) -> dict[str, Any]:
    """The options, with the constructor arguments that were given (not None)."""
    return {**options, **{key: value for key, value in arguments.items() if value is not None}}


def _local_storage_options(options: dict[str, Any]) -> dict[str, Any]:
    return {key: options.pop(key) for key in list(options) if key in _LOCAL_OPTIONS}


@deconstructible
class HybridStorage(_Replicated, FileSystemStorage):
    """The master copy under ``MEDIA_ROOT`` (or ``location``), then every media server.

    Saving writes the local file first, then streams it to every host at
    once; a save that raises (fatal exceptions) removes what it wrote.  Reads,
    ``exists``, ``listdir``, ``size``, times and ``path`` are local.
    Deleting deletes locally, then on every host.
    """

    def __init__(
        self,
        hosts: Any = None,
        base_url: str | None = None,
        location: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        # django-resto's argument order; FileSystemStorage's options go by keyword.
        local = _local_storage_options(options)
        super().__init__(location=location, base_url=base_url, **local)
        self._setup_replication(_given(options, hosts=hosts), base_url, _LOCAL_OPTIONS)

    def _open(self, name: str, mode: str = "rb") -> File:  # type: ignore[type-arg]
        _readonly(mode)
        file: File = super()._open(name, mode)  # type: ignore[misc,type-arg]  # not in the stubs
        return file

    def _save(self, name: str, content: File) -> str:  # type: ignore[type-arg]
        encode_name(name)  # a name no media server may have is refused before the master copy
        name = super()._save(name, content)  # type: ignore[misc]  # not in django-stubs
        try:
            self.execute(self.transport.create, name, MasterCopy(self.path(name)))
        except RestoError as failed:  # fatal: the save fails, and leaves nothing behind
            self._undo_save(name, failed, self.path(name))
            raise
        return name

    def delete(self, name: str) -> None:
        super().delete(name)
        self.execute(self.transport.delete, name)


@deconstructible
class AsyncStorage(HybridStorage):
    """HybridStorage with the replication done in the background.

    Errors are logged, never raised (``fatal_exceptions`` does not apply).
    :meth:`flush` waits for what is queued; :attr:`pending` counts it.  To
    use a task queue, override :meth:`execute_one` (see the docs' rq example).
    """

    _deletes_follow = True

    def execute(self, func: Callable[..., Any], name: str, *args: Any) -> None:  # type: ignore[override]
        """Hand ``func(host, name, *args)`` for each host to :meth:`execute_one`; return at once.

        With a durable ``queue`` (tasks, rq, celery), the default transport's
        ``create`` and ``delete`` become one state-based task for every host
        instead (see :mod:`resto_fast.tasks`).
        """
        queued = self.resto_config.queue.queue != "thread"
        if queued and type(self).execute_one is AsyncStorage.execute_one and fan_out_method(func):
            self.queue_replication(name)
            return
        if type(self).execute_one is AsyncStorage.execute_one:
            # All hosts' jobs in one go, so the worker runs them as one fan-out.
            self._background.submit_all([(func, (host, name, *args), {}) for host in self.hosts])
            return
        for host in self.hosts:
            self.execute_one(func, host, name, *args)

    def execute_one(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one action on one host, ``func(host, name, *args)``, later.

        By default it joins this storage's background queue, where neighbouring
        jobs for the same file run as one fan-out.  Override it to hand the job
        to a task queue: ``func`` and its arguments pickle.
        """
        self._background.submit((func, args, kwargs))

    @property
    def pending(self) -> int:
        """Operations (one per host) queued or running in the background."""
        worker = self.__dict__.get("_worker")
        return 0 if worker is None else worker.pending

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until what was queued so far has been replicated; False if ``timeout`` passed."""
        worker = self.__dict__.get("_worker")
        return True if worker is None else worker.flush(timeout)

    @property
    def _background(
        self,
    ) -> BackgroundWorker[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]:
        worker = self.__dict__.get("_worker")
        if worker is None:
            with _worker_lock:
                worker = self.__dict__.get("_worker")
                if worker is None:
                    worker = self.__dict__["_worker"] = BackgroundWorker(
                        self._run_queued, name="resto-async"
                    )
        return worker

    def _run_queued(
        self, jobs: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]
    ) -> None:
        """Run queued jobs in order; one action on one file for several hosts runs as one."""
        start = 0
        while start < len(jobs):
            func, (_, name, *rest), kwargs = jobs[start]
            end = start + 1
            while end < len(jobs) and _same_action(jobs[end], func, name, rest, kwargs):
                end += 1
            hosts = tuple(job[1][0] for job in jobs[start:end])
            action = functools.partial(func, **kwargs) if kwargs else func
            try:
                self._run_now(action, name, tuple(rest), hosts)
            except Exception as exc:  # raised before any request: a refused name, say
                logger.error(
                    "%s %r on %s not replicated: %s",
                    getattr(func, "__name__", "action"),
                    name,
                    ", ".join(hosts),
                    exc,
                    exc_info=exc if self.resto_config.replicator.log_tracebacks else None,
                    extra=log_extra(None, name, None),
                )
            start = end

    def _run_now(
        self, func: Callable[..., Any], name: str, args: tuple[Any, ...], hosts: tuple[str, ...]
    ) -> None:
        if args and isinstance(args[0], MasterCopy) and not os.path.exists(args[0]):
            say_gone(name)  # deleted since it was saved: its DELETE is queued next
            return
        self._run_on(hosts, func, name, args)

    @property
    def fatal_exceptions(self) -> bool:
        return False  # documented: background errors are logged, never raised


_worker_lock = threading.Lock()


def _same_action(
    job: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]],
    func: Callable[..., Any],
    name: str,
    rest: list[Any],
    kwargs: dict[str, Any],
) -> bool:
    other_func, (_, other_name, *other_rest), other_kwargs = job
    return (
        other_func == func and other_name == name and other_rest == rest and other_kwargs == kwargs
    )


@deconstructible
class DistributedStorage(_Replicated, Storage):
    """Files on the media servers only, with no local copy.

    Saves stream the incoming file to every host at once.  ``exists``,
    ``size``, ``open``, ``listdir`` and ``get_modified_time`` ask one host,
    chosen at random, and fail over to the next on a transport error or a
    5xx.  Even without ``fatal_exceptions`` a save that reached no host
    raises: the file would be lost.
    """

    _only_copy = True

    def __init__(self, hosts: Any = None, base_url: str | None = None, **options: Any) -> None:
        self._setup_replication(_given(options, hosts=hosts), base_url, frozenset())
        if self.loses_silently:
            message = (
                "DistributedStorage without fatal exceptions: a save that fails on some "
                "media servers only logs, and those servers miss the file for good"
            )
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            logger.warning(message)

    @property
    def loses_silently(self) -> bool:
        """Fatal exceptions off, with no write quorum and no repair: a save that reached
        some hosts leaves the others without the file, for good, and raises nothing."""
        config = self.resto_config
        return not (self.fatal_exceptions or config.write_quorum or config.queue.repairs)

    @property
    def base_url(self) -> str:
        return self.resto_config.base_url

    def _open(self, name: str, mode: str = "rb") -> File:  # type: ignore[type-arg]
        _readonly(mode)
        spool = tempfile.SpooledTemporaryFile(max_size=_OPEN_IN_MEMORY)  # noqa: SIM115
        try:
            with _as_host_error():
                self.replicator.get_into(name, spool.write)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return File(spool, name)

    def _save(self, name: str, content: File) -> str:  # type: ignore[type-arg]
        try:
            self.execute(self.transport.create, name, _binary(content))
        except RestoError as failed:  # the save fails, and leaves nothing behind
            self._undo_save(name, failed, None)
            raise
        return name

    def delete(self, name: str) -> None:
        self.execute(self.transport.delete, name)

    def exists(self, name: str) -> bool:
        with _as_host_error():
            return self.replicator.exists(name)

    def size(self, name: str) -> int:
        with _as_host_error():
            return self.replicator.size(name)

    def url(self, name: str | None) -> str:
        url = filepath_to_uri(name or "")
        if url:
            url = url.lstrip("/")
        return urljoin(self.base_url, url)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        """Directories and files in ``path``, from one host's WebDAV PROPFIND.

        ``NotImplementedError`` when the media servers do not list directories
        (405 or 501: nginx needs its dav-ext module for this).
        """
        try:
            return self.replicator.listdir(path)
        except ReplicationError as exc:
            if exc.failures and all(_unsupported(error) for error in exc.failures.values()):
                raise NotImplementedError(
                    f"the media servers do not list directories (WebDAV PROPFIND): {exc}"
                ) from exc
            with _as_host_error():
                raise

    def get_modified_time(self, name: str) -> datetime:
        with _as_host_error():
            stat = self.replicator.stat(name)
        if stat is None:
            raise FileNotFoundError(f"{name!r} is not on the media servers")
        if stat.modified is None:
            raise NotImplementedError(f"{stat.host} sent no Last-Modified for {name!r}")
        moment = datetime.fromtimestamp(stat.modified, UTC)
        return moment if settings.USE_TZ else moment.astimezone().replace(tzinfo=None)


@contextlib.contextmanager
def _as_host_error() -> Iterator[None]:
    """A read no host answered raises the last host's own error, as django-resto's did, so
    ``except UnexpectedStatusCode`` (``.code``) or ``TransportError`` still catches it; it
    is a RestoError too, and carries every host's failure in ``failures``."""
    try:
        yield
    except ReplicationError as exc:
        last = list(exc.failures.values())[-1] if exc.failures else None
        if not isinstance(last, HostError):
            raise
        last.failures = dict(exc.failures)  # type: ignore[attr-defined]
        raise last from exc


def _readonly(mode: str) -> None:
    """Files open for reading only, as in django-resto: a write would reach no media server."""
    if mode != "rb":
        raise OSError(f"unsupported mode {mode!r}: replicated files open in 'rb' only")


def _unsupported(error: Exception) -> bool:
    return isinstance(error, UnexpectedStatusCode) and error.code in (405, 501)
