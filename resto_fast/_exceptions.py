"""Every error resto_fast raises, in one tree.

::

    RestoError
     ├── ConfigurationError   (also ValueError)         bad hosts, base URL or option
     ├── InvalidNameError     (also ValueError)         a file name refused before any request
     ├── SourceError          (also OSError)            the local file could not be read
     ├── NotFoundError        (also FileNotFoundError)  a host answered 404/410 for a read
     ├── ClosedError          (also RuntimeError)       the replicator was closed: no request made
     ├── HostError                                      one request to one host failed
     │    ├── UnexpectedStatusCode                      .code: the host answered, wrongly
     │    ├── InvalidResponseError                      a success status, but an unreadable body
     │    └── TransportError                            .reason, .curl_code: no usable answer
     └── ReplicationError                               .failures: {host: error}, .succeeded

``HostError`` and its subclasses carry ``host``, ``url`` and ``method``; they
describe one host's part of an operation and are collected in results rather
than raised one by one.  ``ReplicationError`` is what ``raise_for_failures()``
raises: one exception naming every host that failed.

Errors from pycurl are translated into this tree in one place, the engine's
completion step; nothing else raises ``pycurl.error`` at callers.

Every exception pickles with its attributes (task queues move them between
processes); the cause chain does not travel, as with any pickled exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ClosedError",
    "ConfigurationError",
    "HostError",
    "InvalidNameError",
    "InvalidResponseError",
    "NotFoundError",
    "ReplicationError",
    "RestoError",
    "SourceError",
    "TransportError",
    "UnexpectedStatusCode",
]


def _rebuild(cls: type[RestoError], args: tuple[Any, ...], state: dict[str, Any]) -> RestoError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class RestoError(Exception):
    """Base class of every error resto_fast raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        # The default reduce calls cls(*args), which keyword-only attributes break.
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class ConfigurationError(RestoError, ValueError):
    """A host, base URL or option value is not usable."""


class InvalidNameError(RestoError, ValueError):
    """A file name that must not reach a media server (absolute, ``..``, control characters)."""

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message)
        self.name = name


class SourceError(RestoError, OSError):
    """The local source of an upload could not be read to the end.

    Raised instead of a per-host failure: the media servers did nothing wrong,
    and every upload of that file was aborted before completing, so no host
    keeps a truncated copy.
    """

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message)
        self.name = name


class NotFoundError(RestoError, FileNotFoundError):
    """A host answered 404 or 410 to a read (``size``, ``get``, ``listdir``), or the
    directory ``listdir`` was asked for is a file there."""

    def __init__(self, message: str, *, name: str, host: str) -> None:
        super().__init__(message)
        self.name = name
        self.host = host


class ClosedError(RestoError, RuntimeError):
    """An operation asked of a replicator after :meth:`~resto_fast.Replicator.close`."""


class HostError(RestoError):
    """One request to one host failed."""

    def __init__(self, message: str, *, host: str, url: str, method: str) -> None:
        super().__init__(message)
        self.host = host
        self.url = url
        self.method = method


class UnexpectedStatusCode(HostError):
    """The host answered with a status code that does not mean success for this method.

    ``202 Accepted`` is one: it breaks the promise that the copy exists when the
    call returns.  Redirects are never followed, so a ``3xx`` lands here too,
    with where it pointed in ``location`` (None for other codes).
    """

    def __init__(
        self,
        message: str,
        *,
        host: str,
        url: str,
        method: str,
        code: int,
        location: str | None = None,
    ) -> None:
        super().__init__(message, host=host, url=url, method=method)
        self.code = code
        self.location = location


class InvalidResponseError(HostError):
    """The host answered with a success status, but its body cannot be read.

    A ``PROPFIND`` answered ``207`` with something other than a WebDAV
    multistatus document: not XML, another root element, an entry without an
    href, or one that lies outside the directory listed.
    """


class TransportError(HostError):
    """No usable answer: refused, timed out, stalled, reset, TLS or name resolution failure,
    or a success answered before the whole body went out.

    ``reason`` is a short stable word for programs and logs (``"refused"``,
    ``"timeout"``, ``"stalled"``, ``"reset"``, ``"dns"``, ``"tls"``,
    ``"aborted"``, ``"rewind"``, ``"incomplete"``, ``"answer"``,
    ``"protocol"``, ``"skipped"``, ``"other"``); ``curl_code`` is libcurl's
    error number when libcurl reported it, else ``None``.  ``"incomplete"``:
    the host answered a PUT with a 2xx before it could have read the whole
    body; it may hold a partial copy.  ``"stalled"`` also covers a write's
    answer that trickles past the timeout.  ``"answer"``: a write's answer too
    large to be a verdict (over 1 MiB).  ``"protocol"``: the answer is not
    HTTP.  ``"skipped"``: not asked, the host is down (see ``host_cooldown``).
    """

    def __init__(
        self,
        message: str,
        *,
        host: str,
        url: str,
        method: str,
        reason: str,
        curl_code: int | None = None,
    ) -> None:
        super().__init__(message, host=host, url=url, method=method)
        self.reason = reason
        self.curl_code = curl_code


class ReplicationError(RestoError):
    """An operation failed on at least one host; ``failures`` names every one.

    A failure is a :class:`HostError`, or whatever a custom action raised when
    a storage runs a transport method of a subclass on each host.
    """

    def __init__(
        self,
        message: str,
        *,
        name: str,
        method: str,
        failures: Mapping[str, Exception],
        succeeded: Sequence[str],
    ) -> None:
        super().__init__(message)
        self.name = name
        self.method = method
        self.failures = dict(failures)
        self.succeeded = tuple(succeeded)
