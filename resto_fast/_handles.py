"""Curl easy handles: configured once per (host, method), reused across operations.

Everything that does not change between two requests of the same method to
the same host is set when the handle is made, so starting a transfer costs a
URL and, for uploads, the size and read callbacks.  Connections are not held
here: they live in the engine's ``CurlMulti`` connection cache, shared by all
its handles, so a PUT then a HEAD to one host share one kept-alive socket.
"""

from __future__ import annotations

from collections import defaultdict

import pycurl

from . import __about__
from ._config import ReplicatorConfig
from ._sockets import AnswerWatch, SocketIndex
from ._webdav import PROPFIND_BODY

__all__ = ["HandlePool"]

#: Bytes of a write's answer at most: a verdict, and an error page at most.
ANSWER_LIMIT = 1024 * 1024
# GET bodies and listings arrive in bigger pieces than libcurl's 16 KiB default: fewer
# Python calls.
_DOWNLOAD_BUFFER_SIZE = 256 * 1024


# No "Expect: 100-continue" (a round trip, or a second's wait when a server ignores it),
# and no "Accept: */*" (meaningless for an upload).  A body given whole goes through
# libcurl's POSTFIELDS, which would add a form Content-Type: none is sent either way.
_PUT_HEADERS = [b"Expect:", b"Accept:", b"Content-Type:"]
# A file's DELETE: Depth 0, which servers refuse for a collection (RFC 4918 wants infinity
# there), so a name that turned out to be a directory is never removed with all below it
# (lighttpd and wsgidav would, for a DELETE of "dir" without the slash).
_DELETE_HEADERS = [b"Depth: 0"]
# A listing of one directory's members, not of the whole tree below it.
_PROPFIND_HEADERS = [b"Depth: 1", b"Content-Type: application/xml; charset=utf-8", b"Expect:"]


def _discard(data: bytes) -> None:
    """Response bodies of PUT and DELETE (an error page at most) are not kept."""


class HandlePool:
    """Idle handles of one engine, by host and method."""

    def __init__(self, config: ReplicatorConfig, sockets: SocketIndex) -> None:
        self._config = config
        self._sockets = sockets
        self._idle: defaultdict[tuple[str, str], list[pycurl.Curl]] = defaultdict(list)
        self._watches: dict[pycurl.Curl, AnswerWatch] = {}  # a PUT handle's, set up once

    def watch(self, handle: pycurl.Curl) -> AnswerWatch:
        """The answer watch of a PUT handle, reset for its next request."""
        watch = self._watches[handle]
        watch.reset()
        return watch

    def take(self, host: str, kind: str) -> pycurl.Curl:
        idle = self._idle[host, kind]
        return idle.pop() if idle else self._new(kind)

    def give_back(self, host: str, kind: str, handle: pycurl.Curl) -> None:
        self._idle[host, kind].append(handle)

    def close(self) -> None:
        for handles in self._idle.values():
            for handle in handles:
                handle.close()
        self._idle.clear()
        self._watches.clear()

    def _new(self, kind: str) -> pycurl.Curl:
        """A handle for one kind of request: a method, and for PUT how the body travels
        ("PUT" streams it through a READFUNCTION, "PUT_BODY" hands libcurl a ``bytes``).
        A PROPFIND's request body never changes, so it is set here, once."""
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
        extra = [f"{name}: {value}".encode() for name, value in config.headers]
        if kind in ("PUT", "PUT_BODY", "DELETE", "DELETE_TREE", "MKCOL"):
            # A write's answer is a verdict and an error page at most: bound it (a server
            # that streams one without end fails, reason "answer").
            handle.setopt(pycurl.MAXFILESIZE_LARGE, ANSWER_LIMIT)
        if kind in ("PUT", "PUT_BODY"):  # what the answer came before (see _sockets)
            watch = self._watches[handle] = AnswerWatch(self._sockets)
            handle.setopt(pycurl.PREREQFUNCTION, watch.prereq)
            handle.setopt(pycurl.HEADERFUNCTION, watch.header)
        if kind == "PUT":
            handle.setopt(pycurl.UPLOAD, 1)
            handle.setopt(pycurl.UPLOAD_BUFFERSIZE, config.upload_buffer_size)
            handle.setopt(pycurl.HTTPHEADER, _PUT_HEADERS + extra)
            handle.setopt(pycurl.WRITEFUNCTION, _discard)
        elif kind == "PUT_BODY":
            handle.setopt(pycurl.CUSTOMREQUEST, "PUT")
            handle.setopt(pycurl.HTTPHEADER, _PUT_HEADERS + extra)
            handle.setopt(pycurl.WRITEFUNCTION, _discard)
        elif kind == "DELETE":
            handle.setopt(pycurl.CUSTOMREQUEST, "DELETE")
            handle.setopt(pycurl.HTTPHEADER, _DELETE_HEADERS + extra)
            handle.setopt(pycurl.WRITEFUNCTION, _discard)
        elif kind == "DELETE_TREE":  # a directory, and everything in it (resync's --delete)
            handle.setopt(pycurl.CUSTOMREQUEST, "DELETE")
            handle.setopt(pycurl.WRITEFUNCTION, _discard)
        elif kind == "HEAD":
            handle.setopt(pycurl.NOBODY, 1)
            handle.setopt(pycurl.OPT_FILETIME, 1)
        elif kind == "GET":
            handle.setopt(pycurl.OPT_FILETIME, 1)
            handle.setopt(pycurl.BUFFERSIZE, _DOWNLOAD_BUFFER_SIZE)
        elif kind == "MKCOL":
            handle.setopt(pycurl.CUSTOMREQUEST, "MKCOL")
            handle.setopt(pycurl.WRITEFUNCTION, _discard)
        elif kind == "PROPFIND":
            handle.setopt(pycurl.CUSTOMREQUEST, "PROPFIND")
            handle.setopt(pycurl.HTTPHEADER, _PROPFIND_HEADERS + extra)
            handle.setopt(pycurl.POSTFIELDS, PROPFIND_BODY)
            handle.setopt(pycurl.BUFFERSIZE, _DOWNLOAD_BUFFER_SIZE)  # listings run to megabytes
        else:
            raise ValueError(f"unsupported handle kind {kind!r}")
        if extra and kind not in ("PUT", "PUT_BODY", "PROPFIND", "DELETE"):
            handle.setopt(pycurl.HTTPHEADER, extra)
        return handle
