"""Every kind of request resto_fast sends, in one table: what each means, from its libcurl
options to the statuses it succeeds with.

A kind is a method and the way its body travels: ``PUT`` streams a file
through a window, ``PUT_BODY`` hands libcurl a ``bytes`` whole, ``PUT_SMALL``
one that leaves in the first flight of packets, ``DELETE``
removes a file (never a directory) and ``DELETE_TREE`` a directory with all
below it; ``HEAD``, ``GET``, ``PROPFIND`` read; ``MKCOL`` makes a directory.
The handle pool sets each kind's options on a handle once; the engine reads
how its answer counts (a verdict, or a body that is progress) and which
statuses mean what (the reading of django-resto; see ``_results``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import pycurl

from ._results import Outcome
from ._webdav import PROPFIND_BODY

__all__ = ["FIRST_FLIGHT", "KINDS", "Kind", "kind_of"]

#: Bytes of a PUT's body that, with its head, always leave in the first flight of packets
#: (TCP's initial window is 10 segments, RFC 6928: 12 KiB even at IPv6's smallest MTU), so
#: every byte is on the wire before any answer can come back, and the server's kernel
#: acknowledges them on arrival whether or not the server reads them.  The answer watch
#: (see ``_sockets``) can tell nothing about such a body, so it is not set up for one.
FIRST_FLIGHT = 8 * 1024

# GET bodies and listings arrive in bigger pieces than libcurl's 16 KiB default: fewer
# Python calls.
_DOWNLOAD_BUFFER_SIZE = 256 * 1024

_READ = {200: Outcome.FOUND, 404: Outcome.MISSING, 410: Outcome.MISSING}
_PUT = {201: Outcome.CREATED, 200: Outcome.REPLACED, 204: Outcome.REPLACED}
_DELETE = {
    200: Outcome.DELETED,
    204: Outcome.DELETED,
    404: Outcome.ALREADY_GONE,
    410: Outcome.ALREADY_GONE,
}
# No "Expect: 100-continue" (a round trip, or a second's wait when a server ignores it),
# and no "Accept: */*" (meaningless for an upload).  A body given whole goes through
# libcurl's POSTFIELDS, which would add a form Content-Type: none is sent either way.
_PUT_HEADERS = (b"Expect:", b"Accept:", b"Content-Type:")


@dataclasses.dataclass(frozen=True, eq=False)
class Kind:
    """One kind of request.

    ``body``: how the request's body travels (``stream``: a READFUNCTION
    over the operation's window; ``whole``: the operation's bytes; ``fixed``:
    the same bytes every time, set once).  ``answer``: ``verdict`` for a
    write, whose answer is bounded, discarded and no progress (a trickling
    one is a stall); ``read`` for a read, whose body is the progress and, at
    ``body_status``, the operation's result.  ``watch_answer``: a write whose
    answer may come before its body reached the server (see ``_sockets``).
    """

    name: str
    method: str
    outcomes: Mapping[int, Outcome]
    body: Literal["stream", "whole", "fixed"] | None = None
    answer: Literal["verdict", "read"] = "verdict"
    body_status: int | None = None
    headers: tuple[bytes, ...] = ()
    options: tuple[tuple[int, Any], ...] = ()
    watch_answer: bool = False


_PUT_BODY = Kind(
    "PUT_BODY",
    "PUT",
    _PUT,
    body="whole",
    headers=_PUT_HEADERS,
    options=((pycurl.CUSTOMREQUEST, "PUT"),),
    watch_answer=True,
)

KINDS: Mapping[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "PUT",
            "PUT",
            _PUT,
            body="stream",
            headers=_PUT_HEADERS,
            options=((pycurl.UPLOAD, 1),),
            watch_answer=True,
        ),
        _PUT_BODY,
        # A body that leaves with its head in the first flight of packets: no answer watch,
        # which could tell nothing here (see FIRST_FLIGHT) and costs a callback per header line.
        dataclasses.replace(_PUT_BODY, name="PUT_SMALL", watch_answer=False),
        # A file's DELETE: Depth 0, which servers refuse for a collection (RFC 4918 wants
        # infinity there), so a name that is in fact a directory is never removed with all
        # below it (lighttpd and WsgiDAV would, for a DELETE of "dir" without the slash).
        Kind(
            "DELETE",
            "DELETE",
            _DELETE,
            headers=(b"Depth: 0",),
            options=((pycurl.CUSTOMREQUEST, "DELETE"),),
        ),
        # A directory and everything in it (resync's --delete of an extra directory).
        Kind("DELETE_TREE", "DELETE", _DELETE, options=((pycurl.CUSTOMREQUEST, "DELETE"),)),
        # 405: the collection is there already; 501: the server has no collections to make.
        Kind(
            "MKCOL",
            "MKCOL",
            {201: Outcome.CREATED, 405: Outcome.FOUND, 501: Outcome.FOUND},
            options=((pycurl.CUSTOMREQUEST, "MKCOL"),),
        ),
        Kind(
            "HEAD",
            "HEAD",
            _READ,
            answer="read",
            options=((pycurl.NOBODY, 1), (pycurl.OPT_FILETIME, 1)),
        ),
        Kind(
            "GET",
            "GET",
            _READ,
            answer="read",
            body_status=200,
            options=((pycurl.OPT_FILETIME, 1), (pycurl.BUFFERSIZE, _DOWNLOAD_BUFFER_SIZE)),
        ),
        # A listing of one directory's members (Depth 1), not of the whole tree below it;
        # listings run to megabytes.
        Kind(
            "PROPFIND",
            "PROPFIND",
            {207: Outcome.FOUND, 404: Outcome.MISSING, 410: Outcome.MISSING},
            body="fixed",
            answer="read",
            body_status=207,
            headers=(b"Depth: 1", b"Content-Type: application/xml; charset=utf-8", b"Expect:"),
            options=(
                (pycurl.CUSTOMREQUEST, "PROPFIND"),
                (pycurl.POSTFIELDS, PROPFIND_BODY),
                (pycurl.BUFFERSIZE, _DOWNLOAD_BUFFER_SIZE),
            ),
        ),
    )
}


def kind_of(
    method: str, *, whole: bool = False, directory: bool = False, size: int | None = None
) -> Kind:
    """The kind of a request: a PUT whose body is given ``whole`` (of ``size`` bytes), or a
    DELETE of a ``directory``, have kinds of their own."""
    if method == "PUT" and whole:
        return KINDS["PUT_SMALL" if size is not None and size <= FIRST_FLIGHT else "PUT_BODY"]
    if method == "DELETE" and directory:
        return KINDS["DELETE_TREE"]
    try:
        return KINDS[method]
    except KeyError:
        raise ValueError(f"unsupported method {method!r}") from None
