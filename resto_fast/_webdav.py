"""WebDAV directory listings: the PROPFIND request body, and its multistatus answer read.

A ``PROPFIND`` with ``Depth: 1`` on a collection URL (one ending in ``/``)
is answered ``207 Multi-Status`` with one ``<D:response>`` for the collection
itself and one for each member directly inside it.  Each names its resource
by ``<D:href>`` (an absolute path or a full URL, percent-encoded) and says
whether it is a collection in ``<D:resourcetype>``.  Only ``resourcetype`` is
asked for: an ``allprop`` answer (what an empty body means) carries dates,
sizes and lock details for every entry, several times the bytes.

Parsing is ElementTree's, on an answer from a configured media server: it
resolves no external entity, and expat refuses the entity-expansion bombs.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Callable
from urllib.parse import unquote, urljoin, urlsplit

from ._exceptions import InvalidResponseError

__all__ = ["PROPFIND_BODY", "Listing", "parse_listing"]

PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/></D:prop></D:propfind>\n'
)

_MULTISTATUS = "{DAV:}multistatus"
_RESPONSE = "{DAV:}response"
_HREF = "{DAV:}href"
# In any propstat: a server may split its answer into one propstat per status.
_COLLECTION = "{DAV:}propstat/{DAV:}prop/{DAV:}resourcetype/{DAV:}collection"


@dataclasses.dataclass(frozen=True, slots=True)
class Listing:
    """The members directly inside a collection, by name (decoded), each list sorted.

    ``is_collection`` is what the entry for the listed URL itself said: a
    server asked to list a file answers with the file alone, not a collection.
    (True when the server left that entry out.)
    """

    directories: tuple[str, ...]
    files: tuple[str, ...]
    is_collection: bool = True


def parse_listing(body: bytes, url: str, *, host: str) -> Listing:
    """Read a ``PROPFIND`` ``Depth: 1`` answer to a request for ``url`` (which ends in ``/``).

    Hrefs are resolved against ``url`` and compared as decoded paths, so a
    server that encodes other characters than we do (``+``, ``(``) still lists
    the names we stored.  Raises :class:`InvalidResponseError`, naming ``host``
    and ``url``, for a body that is not a multistatus document, an entry
    without an href, one whose path is not UTF-8 once decoded, or one that
    does not lie directly inside the collection: a listing that cannot be
    trusted whole is not returned in part.
    """

    def invalid(reason: str) -> InvalidResponseError:
        return InvalidResponseError(
            f"unreadable PROPFIND answer: {reason}", host=host, url=url, method="PROPFIND"
        )

    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise invalid(f"not well-formed XML ({exc})") from exc
    if root.tag != _MULTISTATUS:
        raise invalid(f"the root element is {root.tag!r}, not DAV: multistatus")
    collection = _decoded_path(url, url, invalid)
    directories: set[str] = set()
    files: set[str] = set()
    is_collection = True
    for response in root.iter(_RESPONSE):
        href = (response.findtext(_HREF) or "").strip()
        if not href:
            raise invalid("an entry has no href")
        path = _decoded_path(url, href, invalid)
        is_directory = response.find(_COLLECTION) is not None
        if path.rstrip("/") == collection.rstrip("/"):
            is_collection = is_directory
            continue
        name = path[len(collection) :].removesuffix("/") if path.startswith(collection) else ""
        if name in ("", ".", "..") or "/" in name:
            raise invalid(f"{href!r} is not directly inside {collection!r}")
        (directories if is_directory else files).add(name)
    return Listing(tuple(sorted(directories)), tuple(sorted(files)), is_collection)


def _decoded_path(url: str, href: str, invalid: Callable[[str], InvalidResponseError]) -> str:
    """The percent-decoded path ``href`` stands for, resolved against ``url``."""
    try:
        return unquote(urlsplit(urljoin(url, href)).path, errors="strict")
    except ValueError as exc:  # UnicodeDecodeError, or a malformed URL
        raise invalid(f"cannot decode the path of {href!r} ({exc})") from exc
