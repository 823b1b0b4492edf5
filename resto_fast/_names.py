"""File names: which ones may reach a media server, and the URL each one gets.

A name is a relative POSIX path under the media root (``photos/2024/a b.jpg``).
It is percent-encoded as UTF-8, every byte outside the unreserved set, so the
server stores the file under exactly the decoded name: ``?``, ``#``, ``%``
and ``+`` are data, never syntax.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from ._exceptions import InvalidNameError

__all__ = ["encode_directory", "encode_name", "host_url"]

# C0 controls, DEL and C1 controls, and the backslash (a path separator on Windows servers).
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")
# The common case, checked in one match: unreserved characters only, in segments that are
# neither empty nor dot-only.  Such a name needs no encoding at all.
_PLAIN = re.compile(r"(?!\.\.?(?:/|$))[A-Za-z0-9_.~-]+(?:/(?!\.\.?(?:/|$))[A-Za-z0-9_.~-]+)*")


def encode_name(name: str) -> str:
    """Check a file name and return its percent-encoded URL path (no leading slash).

    Refused with :class:`InvalidNameError` (a ``ValueError``): a non-string or
    empty name, an absolute one, a ``..``, ``.`` or empty segment, a trailing
    slash, a NUL or other control character, a backslash, and text that is not
    valid Unicode.  Each of these would either escape the media root or reach
    a file other than the one named.
    """
    if not isinstance(name, str):
        raise InvalidNameError(
            f"a file name must be a string, not {type(name).__name__}", name=repr(name)
        )
    if _PLAIN.fullmatch(name):
        return name
    if not name:
        raise InvalidNameError("empty file name", name=name)
    bad = _FORBIDDEN.search(name)
    if bad is not None:
        raise InvalidNameError(
            f"file name {name!r} contains a forbidden character {bad.group()!r}", name=name
        )
    if name.startswith("/"):
        raise InvalidNameError(f"file name {name!r} is absolute", name=name)
    for segment in name.split("/"):
        if segment in ("", ".", ".."):
            what = f"a {segment!r}" if segment else "an empty"
            raise InvalidNameError(f"file name {name!r} has {what} segment", name=name)
    try:
        return quote(name, safe="/", encoding="utf-8", errors="strict")
    except UnicodeEncodeError:
        raise InvalidNameError(f"file name {name!r} is not valid Unicode", name=name) from None


def encode_directory(path: str) -> str:
    """Check a directory path and return its encoded URL path: ``""`` for the root, else
    the path as :func:`encode_name` encodes it, with a slash after it.

    One trailing slash is allowed (``"photos/"`` is ``"photos"``), as callers often
    write directories so; the slash always ends the URL, since a collection's URL
    ends with one, and some servers (Apache) redirect a request without it.
    """
    if path == "":
        return ""
    trimmed = path[:-1] if path[-1:] == "/" and path != "/" else path
    return encode_name(trimmed) + "/"


def host_url(scheme: str, host: str, base_path: str, encoded_name: str) -> str:
    """The URL of an encoded name on one host: the base URL with the host swapped in."""
    return f"{scheme}://{host}{base_path}{encoded_name}"
