"""Curl easy handles: configured once per kind of request, reused across operations.

Everything that does not change between two requests of the same kind to
the same host (the configuration's, and the kind's in ``_kinds``) is set
when the handle is made, so starting a transfer costs a URL and, for
uploads, the size and read callbacks.  The engine's loop keeps the idle
handles by host and kind and reuses them (``Loop`` in ``_multi_py``);
this module makes them and closes them all at the end.  Connections are
not held here: they live in the engine's ``CurlMulti`` connection cache,
shared by all its handles, so a PUT then a HEAD to one host share one
kept-alive socket.
"""

from __future__ import annotations

import pycurl

from . import __about__
from ._buffer import AnswerWatch
from ._config import ReplicatorConfig
from ._kinds import Kind
from ._sockets import SocketIndex

__all__ = ["Handles"]

#: Bytes of a write's answer at most: a verdict, and an error page at most.
ANSWER_LIMIT = 1024 * 1024


def _discard(data: bytes) -> None:
    """The answers of writes (an error page at most) are not kept."""


class Handles:
    """Every handle of one engine: made here, one kind at a time; closed here, all at once."""

    def __init__(self, config: ReplicatorConfig, sockets: SocketIndex) -> None:
        self._config = config
        self._sockets = sockets
        self._made: list[pycurl.Curl] = []

    def new(self, kind: Kind) -> tuple[pycurl.Curl, AnswerWatch | None]:
        """A handle for ``kind``, with its answer watch when the kind has one."""
        handle, watch = self._new(kind)
        self._made.append(handle)
        return handle, watch

    def close(self) -> None:
        for handle in self._made:
            handle.close()
        self._made.clear()

    def _new(self, kind: Kind) -> tuple[pycurl.Curl, AnswerWatch | None]:
        """A handle for one kind of request (see ``_kinds``): what never changes between
        two requests of that kind to one host is set here, once."""
        config = self._config
        handle = pycurl.Curl()
        handle.setopt(pycurl.NOSIGNAL, 1)  # threads: no SIGALRM for DNS timeouts
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, round(config.timeout * 1000)))
        handle.setopt(pycurl.USERAGENT, f"resto_fast/{__about__.__version__}")
        # Names are validated before any request; let no dot-segment squashing change them.
        handle.setopt(pycurl.PATH_AS_IS, 1)
        handle.setopt(pycurl.TCP_KEEPALIVE, 1)
        # Media servers are reached directly: an http_proxy meant for the outside world must
        # not catch replication traffic (and libcurl skips reading the environment per request).
        handle.setopt(pycurl.PROXY, "")
        # Whichever handle opens a connection, the index hears of its socket.
        handle.setopt(pycurl.SOCKOPTFUNCTION, self._sockets.opened)
        if config.total_timeout is not None:
            handle.setopt(pycurl.TIMEOUT_MS, max(1, round(config.total_timeout * 1000)))
        if not config.verify_tls:
            handle.setopt(pycurl.SSL_VERIFYPEER, 0)
            handle.setopt(pycurl.SSL_VERIFYHOST, 0)
        if config.ca_file is not None:
            handle.setopt(pycurl.CAINFO, config.ca_file)
        if config.client_cert is not None:
            handle.setopt(pycurl.SSLCERT, config.client_cert)
            if config.client_key is not None:
                handle.setopt(pycurl.SSLKEY, config.client_key)
        if config.auth is not None:
            # Basic, sent with the first request: no round trip to learn the scheme.  UTF-8,
            # as RFC 7617 lets servers announce (pycurl takes only ASCII as str).
            handle.setopt(pycurl.HTTPAUTH, pycurl.HTTPAUTH_BASIC)
            handle.setopt(pycurl.USERNAME, config.auth[0].encode())
            handle.setopt(pycurl.PASSWORD, config.auth[1].encode())
        for option, value in kind.options:
            handle.setopt(option, value)
        if kind.body == "stream":
            handle.setopt(pycurl.UPLOAD_BUFFERSIZE, config.upload_buffer_size)
        headers = [*kind.headers, *(f"{name}: {value}".encode() for name, value in config.headers)]
        if headers:
            handle.setopt(pycurl.HTTPHEADER, headers)
        if kind.answer == "verdict":
            # A write's answer is a verdict and an error page at most: bound it (a server
            # that streams one without end fails, reason "answer"), and drop it.
            handle.setopt(pycurl.MAXFILESIZE_LARGE, ANSWER_LIMIT)
            handle.setopt(pycurl.WRITEFUNCTION, _discard)
        watch = None
        if kind.watch_answer:  # what the answer came before (see _sockets)
            watch = AnswerWatch(self._sockets.pairs)
            handle.setopt(pycurl.PREREQFUNCTION, watch.prereq)
            handle.setopt(pycurl.HEADERFUNCTION, watch.header)
        return handle, watch
