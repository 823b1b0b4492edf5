"""The one typed, frozen configuration the Django-free core runs on.

Django settings and ``STORAGES`` options are turned into a
:class:`ReplicatorConfig` by the storage module; programs build one directly
or through :class:`~resto_fast.Replicator`'s keyword arguments.  Copies are
made with :func:`dataclasses.replace`, which validates again.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

from ._exceptions import ConfigurationError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_HOST_COOLDOWN",
    "DEFAULT_TIMEOUT",
    "DEFAULT_UPLOAD_BUFFER_SIZE",
    "DEFAULT_WINDOW_SIZE",
    "ReplicatorConfig",
    "normalize_host",
    "parse_host",
]

MiB = 1024 * 1024

#: Seconds to connect, and seconds without progress before a transfer is given up
#: (django-resto's ``RESTO_TIMEOUT`` default).
DEFAULT_TIMEOUT = 2.0
#: Files in flight at once in ``put_many``; each has one transfer per host.
DEFAULT_CONCURRENCY = 8
#: Bytes read from the source at a time; also the step by which the window slides.
DEFAULT_CHUNK_SIZE = 1 * MiB
#: Bytes of a file held in memory at most, shared by all hosts of one upload.
DEFAULT_WINDOW_SIZE = 8 * MiB
#: libcurl's per-handle upload buffer (CURLOPT_UPLOAD_BUFFERSIZE, at most 2 MiB).
DEFAULT_UPLOAD_BUFFER_SIZE = 1 * MiB
#: Seconds a host that could not be reached is skipped by every request of the process.
DEFAULT_HOST_COOLDOWN = 5.0

_CURL_MAX_UPLOAD_BUFFER = 2 * MiB
_MAX_COOLDOWN = 3600.0
# Whole-number options and their largest values: beyond, a typo rather than a choice.
_SIZES = {
    "concurrency": 4096,
    "chunk_size": 256 * MiB,
    "window_size": 4096 * MiB,
    "upload_buffer_size": _CURL_MAX_UPLOAD_BUFFER,
}
_CURL_MIN_UPLOAD_BUFFER = 16 * 1024
_HOST_RE = re.compile(
    r"""
    (?: \[ (?P<ipv6> [^\]]+ ) \]          # [IPv6], brackets required
      | (?P<name> [A-Za-z0-9._-]+ ) )     # host name or IPv4 address
    (?: : (?P<port> [0-9]{1,5} ) )?
    """,
    re.VERBOSE,
)
# Characters kept as they are in the base path: unreserved, sub-delims, ':', '@', '/', '%'.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
#: Longest timeout, cool-down or delay accepted, in seconds: a day.
MAX_SECONDS = 86400.0


def parse_host(host: str) -> str:
    """Validate one media host as written in ``RESTO_MEDIA_HOSTS``; return it normalized.

    ``host[:port]``, with an IPv6 address in brackets: ``media-1``,
    ``10.0.0.5:8080``, ``[::1]:8080``.  A name must be a DNS name (labels of
    letters, digits and hyphens), and is lowercased; an IP address is written
    the canonical way (``[0:0::1]`` is ``[::1]``); a port loses its leading
    zeros.  So one server spelled two ways is one host.
    """
    if not isinstance(host, str):
        raise ConfigurationError(f"a media host must be a string, not {type(host).__name__}")
    text = host.strip()
    match = _HOST_RE.fullmatch(text)
    if match is None:
        raise ConfigurationError(
            f"invalid media host {host!r}: expected 'host[:port]'{_hint(text)}"
        )
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        raise ConfigurationError(f"invalid port in media host {host!r}: {port}")
    suffix = f":{int(port)}" if port is not None else ""
    if match["ipv6"] is not None:
        if "%" in match["ipv6"]:
            raise ConfigurationError(
                f"invalid media host {host!r}: an IPv6 zone index (%...) cannot be used here; "
                "give a global or loopback address"
            )
        try:
            address = ipaddress.IPv6Address(match["ipv6"])
        except ValueError:
            raise ConfigurationError(f"invalid IPv6 address in media host {host!r}") from None
        return f"[{address.compressed}]{suffix}"
    name = match["name"]
    if re.fullmatch(r"[0-9.]*[0-9][0-9.]*", name):  # digits and dots: an IPv4 address, or nothing
        try:
            return f"{ipaddress.IPv4Address(name)}{suffix}"
        except ValueError:
            raise ConfigurationError(f"invalid IPv4 address in media host {host!r}") from None
    labels = name.rstrip(".").split(".")
    if len(name) > 253 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise ConfigurationError(
            f"invalid media host {host!r}: {name!r} is no DNS name (labels of letters, digits "
            "and inner hyphens, separated by dots)"
        )
    return f"{name.rstrip('.').lower()}{suffix}"


def _hint(text: str) -> str:
    if "://" in text:
        return " (write the host alone, without a scheme or path: the scheme comes from base_url)"
    if text.count(":") > 1:
        return " (write an IPv6 address in brackets: [::1]:8080)"
    return ""


def normalize_host(host: str, scheme: str) -> str:
    """:func:`parse_host`, and without the scheme's default port (``a:80`` is ``a`` on http)."""
    parsed = parse_host(host)
    default = _DEFAULT_PORTS.get(scheme)
    if default is not None and parsed.endswith(f":{default}"):
        return parsed[: -len(default) - 1]
    return parsed


def _parse_base_url(base_url: str) -> tuple[str, str]:
    """Split a base URL into (scheme, path); the host part is replaced per media host.

    Refused, each with its reason: a query or fragment, a scheme other than
    http and https, credentials, a path that does not start and end with
    ``/``, a ``.`` or ``..`` segment (also encoded), an encoded ``/``, a
    malformed percent-escape, control characters and backslashes.  Each would
    make files land elsewhere than their names say, or every request fail.
    """
    if not isinstance(base_url, str):
        raise ConfigurationError(f"base_url must be a string, not {type(base_url).__name__}")
    bad = re.search(r"[\x00-\x1f\x7f\\]", base_url)
    if bad is not None:
        raise ConfigurationError(
            f"base_url may not contain {bad.group()!r} (a control character or backslash): "
            f"{base_url!r}"
        )
    parts = urlsplit(base_url)
    if parts.query or parts.fragment or base_url.endswith(("?", "#")):
        raise ConfigurationError(f"base_url may not contain a query or fragment: {base_url!r}")
    scheme = (parts.scheme or "http").lower()
    if scheme not in ("http", "https"):
        raise ConfigurationError(f"base_url must use http or https, not {scheme!r}")
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            "base_url may not carry credentials (they would be dropped): take them out of "
            f"{parts.scheme}://...@ and let the media servers trust this client's address"
        )
    path = parts.path or "/"
    if not path.startswith("/") or not path.endswith("/"):
        raise ConfigurationError(f"base_url's path must start and end with '/': {base_url!r}")
    if re.search(r"%(?![0-9A-Fa-f]{2})", path):
        raise ConfigurationError(f"base_url has a malformed percent-escape: {base_url!r}")
    if re.search(r"%2[Ff]", path):
        raise ConfigurationError(f"base_url may not contain an encoded '/' (%2F): {base_url!r}")
    for segment in unquote(path).split("/")[1:-1]:
        if segment in ("", ".", ".."):
            what = "an empty" if not segment else f"a {segment!r}"
            raise ConfigurationError(f"base_url's path has {what} segment: {base_url!r}")
    return scheme, quote(path, safe=_PATH_SAFE)


def _positive(name: str, value: float, *, integer: bool = False, most: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be a number, not {type(value).__name__}")
    if integer and not isinstance(value, int):
        raise ConfigurationError(f"{name} must be a whole number, not {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ConfigurationError(f"{name} must be positive, not {value!r}")
    if value > most:
        raise ConfigurationError(f"{name} must be at most {most:g}, not {value!r}")


def _readable_file(name: str, value: object) -> str:
    """A file option: a path to a file this process can read."""
    if not isinstance(value, str | os.PathLike):
        raise ConfigurationError(f"{name} must be a path, not {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str) or not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise ConfigurationError(f"{name} {path!r} is not a file this process can read")
    return path


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReplicatorConfig:
    """Everything the replicator and its engine need to know, validated once.

    ``timeout`` bounds connecting and any stretch without progress (a
    refused, silent or stalled host is detected within it; a large transfer
    that keeps moving is never cut by it).  ``total_timeout``, when set, caps
    one operation on one host from start to end, however fast it moves.
    ``make_directories`` sends WebDAV MKCOL for the directories above a file
    before its PUT, for servers that do not make them (Apache, lighttpd).
    ``host_cooldown``: after a host could not be reached, every request of the
    process skips it for that many seconds, then one request probes it
    (``0``: never skip).  ``logger`` names the logger failures and surprises
    go to (the storages': ``resto_fast.storage``, which ``resto_fast`` hears).
    """

    hosts: tuple[str, ...] = ()
    base_url: str = "/"
    timeout: float = DEFAULT_TIMEOUT
    total_timeout: float | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    chunk_size: int = DEFAULT_CHUNK_SIZE
    window_size: int = DEFAULT_WINDOW_SIZE
    upload_buffer_size: int = DEFAULT_UPLOAD_BUFFER_SIZE
    verify_tls: bool = True
    ca_file: str | None = None
    log_tracebacks: bool = False
    make_directories: bool = False
    host_cooldown: float = DEFAULT_HOST_COOLDOWN
    logger: str = "resto_fast"
    scheme: str = dataclasses.field(init=False, repr=False, compare=False)
    base_path: str = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        scheme, base_path = _parse_base_url(self.base_url)
        object.__setattr__(self, "scheme", scheme)
        object.__setattr__(self, "base_path", base_path)
        hosts: object = self.hosts  # typed as a tuple, but settings hand over anything
        if isinstance(hosts, str) or not isinstance(hosts, Iterable):
            raise ConfigurationError(f"hosts must be a list of 'host[:port]', not {hosts!r}")
        normalized = tuple(normalize_host(host, scheme) for host in hosts)
        duplicates = sorted({host for host in normalized if normalized.count(host) > 1})
        if duplicates:
            raise ConfigurationError(
                f"media hosts listed twice (once written differently, perhaps): "
                f"{', '.join(duplicates)}"
            )
        object.__setattr__(self, "hosts", normalized)
        _positive("timeout", self.timeout, most=MAX_SECONDS)
        if self.total_timeout is not None:
            _positive("total_timeout", self.total_timeout, most=MAX_SECONDS)
        cooldown: object = self.host_cooldown
        if isinstance(cooldown, bool) or not isinstance(cooldown, int | float):
            raise ConfigurationError(f"host_cooldown must be a number, not {cooldown!r}")
        if not (0 <= cooldown <= _MAX_COOLDOWN):
            raise ConfigurationError(
                f"host_cooldown must be 0 (never skip a host) to {_MAX_COOLDOWN} seconds, "
                f"not {cooldown!r}"
            )
        for name, most in _SIZES.items():
            _positive(name, getattr(self, name), integer=True, most=most)
        if self.window_size < self.chunk_size:
            raise ConfigurationError(
                f"window_size ({self.window_size}) must hold at least one chunk ({self.chunk_size})"
            )
        if not _CURL_MIN_UPLOAD_BUFFER <= self.upload_buffer_size <= _CURL_MAX_UPLOAD_BUFFER:
            raise ConfigurationError(
                f"upload_buffer_size must be between {_CURL_MIN_UPLOAD_BUFFER} and "
                f"{_CURL_MAX_UPLOAD_BUFFER} bytes (libcurl's limits), not {self.upload_buffer_size}"
            )
        for name in ("verify_tls", "log_tracebacks", "make_directories"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(
                    f"{name} must be True or False, not {getattr(self, name)!r}"
                )
        if self.ca_file is not None:
            object.__setattr__(self, "ca_file", _readable_file("ca_file", self.ca_file))

    @property
    def window_chunks(self) -> int:
        """How many chunks the sliding window holds."""
        return self.window_size // self.chunk_size
