"""The transport: one action on one file on one host, django-resto's stable extension point.

:class:`DefaultTransport` keeps django-resto's ``content``, ``exists``,
``size``, ``create`` and ``delete`` methods and their return values, on top
of the engine.  :class:`MasterCopy` is what the local storages hand to
``create``: a picklable reference to the master copy.  Django-free, except
that a transport built the django-resto way (without a config) reads the
``RESTO_*`` settings.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import IO, Any

from ._config import ReplicatorConfig
from ._exceptions import NotFoundError, ReplicationError
from ._replicator import Replicator
from ._results import OperationResult, Outcome
from ._sources import Source

__all__ = ["DefaultTransport", "MasterCopy", "fan_out_method", "rewound"]


class MasterCopy(os.PathLike[str]):
    """The local master copy of a saved file, by path: the ``content`` HybridStorage replicates.

    A path rather than an open file, so it pickles (a task queue may carry it
    to another process) and is read when the upload runs.  For transports
    written against django-resto it also reads like a binary file.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"MasterCopy({self.path!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_file": None}

    @property
    def size(self) -> int:
        return os.path.getsize(self.path)

    def open(self) -> IO[bytes]:
        """A new binary file object on the master copy."""
        return open(self.path, "rb")

    def read(self, size: int = -1) -> bytes:
        if self._file is None:
            self._file = self.open()
        return self._file.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if self._file is None:
            self._file = self.open()
        return self._file.seek(offset, whence)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class DefaultTransport:
    """PUT, DELETE, HEAD and GET of one file on one host (django-resto's stable API).

    Methods take the host first and raise the host's error
    (:class:`UnexpectedStatusCode`, :class:`~resto_fast.TransportError`) when
    it fails.  A transport pickles as its configuration; its connections are
    made again where it lands.  The storages run the unmodified ``create`` and
    ``delete`` on all hosts as one fan-out of the engine; a subclass that
    overrides them is called once per host instead.
    """

    def __init__(self, base_url: str | None = None, *, config: ReplicatorConfig | None = None):
        if config is None:
            from .settings import resolve  # the django-resto way: from Django's settings

            config = resolve({}, base_url=base_url, known=()).replicator
        self.config = config
        self._replicator: Replicator | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(config=state["config"])  # type: ignore[misc]

    @property
    def replicator(self) -> Replicator:
        """The replicator behind this transport, made on first use (and after unpickling)."""
        replicator = self._replicator
        if replicator is None:
            with self._lock:
                if self._replicator is None:
                    self._replicator = Replicator.from_config(self.config)
                replicator = self._replicator
        return replicator

    def content(self, host: str, name: str) -> bytes | None:
        """The content of a file on ``host``; None when it is not there."""
        try:
            content: bytes = _on_host(host, self.replicator.get, name)
            return content
        except NotFoundError:
            return None

    def exists(self, host: str, name: str) -> bool:
        """Whether a file is on ``host``."""
        return _on_host(host, self.replicator.stat, name) is not None

    def size(self, host: str, name: str) -> int | None:
        """The size of a file on ``host``; None when it is not there."""
        stat = _on_host(host, self.replicator.stat, name)
        return None if stat is None else stat.size

    def create(self, host: str, name: str, content: Source) -> bool:
        """Create or replace a file on ``host``; True when it existed before."""
        result = self.replicator.put(name, rewound(content), hosts=[host])
        return _single(result).outcome is Outcome.REPLACED

    def delete(self, host: str, name: str) -> bool:
        """Delete a file on ``host``; True when it existed before."""
        result = self.replicator.delete(name, hosts=[host])
        return _single(result).outcome is Outcome.DELETED


def _on_host(host: str, read: Callable[[str, str], Any], name: str) -> Any:
    """A read on one given host, raising that host's own error rather than a ReplicationError."""
    try:
        return read(name, host)
    except ReplicationError as exc:
        if len(exc.failures) == 1:
            raise next(iter(exc.failures.values())) from None
        raise


def _single(result: OperationResult) -> Any:
    (host_result,) = result.hosts
    if result.source_error is not None:
        raise result.source_error
    if host_result.error is not None:
        raise host_result.error
    return host_result


def rewound(content: Source) -> Source:
    """A file object is sent from its start, as Django's own storages write it."""
    seek = getattr(content, "seek", None)
    seekable = getattr(content, "seekable", None)
    if (
        not isinstance(content, str | os.PathLike)
        and seek is not None
        and (seekable is None or seekable())
    ):
        seek(0)
    return content


#: Transport methods the engine runs as one fan-out, and the HTTP method each is.
_FAN_OUTS: Mapping[Callable[..., Any], str] = {
    DefaultTransport.create: "PUT",
    DefaultTransport.delete: "DELETE",
}


def fan_out_method(func: Callable[..., Any]) -> tuple[DefaultTransport, str] | None:
    """For ``create``/``delete`` of a DefaultTransport (not overridden): it and the HTTP method."""
    method = _FAN_OUTS.get(getattr(func, "__func__", None))  # type: ignore[arg-type]
    owner = getattr(func, "__self__", None)
    if method is None or not isinstance(owner, DefaultTransport):
        return None
    return owner, method
