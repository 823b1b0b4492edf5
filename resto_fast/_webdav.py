"""WebDAV directory listings: the PROPFIND request body, and its multistatus answer read.

A ``PROPFIND`` with ``Depth: 1`` on a collection URL (one ending in ``/``)
is answered ``207 Multi-Status`` with one ``<D:response>`` for the collection
itself and one for each member directly inside it.  Each names its resource
by ``<D:href>`` (an absolute path or a full URL, percent-encoded), says
whether it is a collection in ``<D:resourcetype>``, and gives a file's size
and date (``getcontentlength``, ``getlastmodified``), which is what a resync
compares.  Only those three are asked for: an ``allprop`` answer (what an
empty body means) adds creation dates, ETags and lock details for every
entry.

Parsing is ElementTree's, on an answer from a configured media server: it
resolves no external entity, and expat refuses the entity-expansion bombs.
"""

from __future__ import annotations

import calendar
import dataclasses
import email.utils
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from urllib.parse import unquote, urljoin, urlsplit

from ._exceptions import InvalidResponseError

__all__ = ["PROPFIND_BODY", "FileFacts", "Listing", "http_date", "parse_listing"]

PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<D:propfind xmlns:D="DAV:"><D:prop>'
    b"<D:resourcetype/><D:getcontentlength/><D:getlastmodified/>"
    b"</D:prop></D:propfind>\n"
)

_MULTISTATUS = "{DAV:}multistatus"
_RESPONSE = "{DAV:}response"
_HREF = "{DAV:}href"
_COLLECTION = "{DAV:}collection"  # inside resourcetype, in any propstat
_LENGTH = "{DAV:}getcontentlength"
_MODIFIED = "{DAV:}getlastmodified"
_MONTHS = {
    month: number
    for number, month in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}

# Dates already read: files saved in the same second share one (bounded; cleared when full).
_DATES: dict[str, float] = {}
_DATES_KEPT = 4096

#: What a listing says of a file: its size and modification time, each None when not given.
FileFacts = tuple["int | None", "float | None"]


@dataclasses.dataclass(frozen=True, slots=True)
class Listing:
    """The members directly inside a collection, by name (decoded).

    ``directories`` and ``files`` are sorted names; ``facts`` gives each
    file's size (``getcontentlength``) and modification time
    (``getlastmodified``, seconds since the epoch), None where the server
    said nothing.  ``is_collection`` is what the entry for the listed URL
    itself said: a server asked to list a file answers with the file alone,
    not a collection.  (True when the server left that entry out.)
    """

    directories: tuple[str, ...]
    files: tuple[str, ...]
    is_collection: bool = True
    facts: Mapping[str, FileFacts] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )


def parse_listing(body: bytes, url: str, *, host: str) -> Listing:
    """Read a ``PROPFIND`` ``Depth: 1`` answer to a request for ``url`` (which ends in ``/``).

    Hrefs are resolved against ``url`` and compared as decoded paths, so a
    server that encodes other characters than we do (``+``, ``(``) still lists
    the names we stored.  Raises :class:`InvalidResponseError`, naming ``host``
    and ``url``, for a body that is not a multistatus document, an entry
    without an href, one whose path is not UTF-8 once decoded, or one that
    does not lie directly inside the collection: a listing that cannot be
    trusted whole is not returned in part.  Sizes and dates that cannot be
    read are left None: they only make a file look different.
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
    itself = collection.rstrip("/")
    directories: set[str] = set()
    files: dict[str, FileFacts] = {}
    is_collection = True
    for response in root.iter(_RESPONSE):
        href = length = modified = None
        is_directory = False
        for element in response.iter():  # one pass, whatever the propstats and their order
            tag = element.tag
            if tag == _HREF:
                href = element.text
            elif tag == _COLLECTION:
                is_directory = True
            elif tag == _LENGTH:
                length = element.text
            elif tag == _MODIFIED:
                modified = element.text
        href = (href or "").strip()
        if not href:
            raise invalid("an entry has no href")
        path = _decoded_path(url, href, invalid)
        if path.rstrip("/") == itself:
            is_collection = is_directory
            continue
        name = path[len(collection) :].removesuffix("/") if path.startswith(collection) else ""
        if name in ("", ".", "..") or "/" in name:
            raise invalid(f"{href!r} is not directly inside {collection!r}")
        if is_directory:
            directories.add(name)
        else:
            files[name] = (_size(length), http_date(modified))
    return Listing(tuple(sorted(directories)), tuple(sorted(files)), is_collection, files)


def _decoded_path(url: str, href: str, invalid: Callable[[str], InvalidResponseError]) -> str:
    """The percent-decoded path ``href`` stands for, resolved against ``url``."""
    try:
        if href.startswith("/") and not href.startswith("//"):  # nginx, Apache: an absolute path
            path = href
        else:
            path = urlsplit(urljoin(url, href)).path
        return unquote(path, errors="strict") if "%" in path else path
    except ValueError as exc:  # UnicodeDecodeError, or a malformed URL
        raise invalid(f"cannot decode the path of {href!r} ({exc})") from exc


def _size(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        size = int(text)
    except ValueError:
        return None
    return size if size >= 0 else None


def http_date(text: str | None) -> float | None:
    """An HTTP date (``Sun, 06 Nov 1994 08:49:37 GMT``) as seconds since the epoch, or None.

    The fixed layout every server sends is read by position (a listing has
    one per file); anything else goes through the email parser, which also
    reads the obsolete forms.
    """
    if text is None:
        return None
    known = _DATES.get(text)
    if known is not None:
        return known
    when = _read_http_date(text.strip())
    if when is not None:
        if len(_DATES) >= _DATES_KEPT:
            _DATES.clear()
        _DATES[text] = when
    return when


def _read_http_date(text: str) -> float | None:
    try:
        if len(text) == 29 and text.endswith(" GMT") and text[3:5] == ", ":
            return float(
                calendar.timegm(
                    (
                        int(text[12:16]),
                        _MONTHS[text[8:11]],
                        int(text[5:7]),
                        int(text[17:19]),
                        int(text[20:22]),
                        int(text[23:25]),
                    )
                )
            )
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (ValueError, KeyError, TypeError, IndexError):
        return None
