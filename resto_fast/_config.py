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
import re
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

from ._exceptions import ConfigurationError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_HOST_COOLDOWN",
    "DEFAULT_TIMEOUT",
    "DEFAULT_UPLOAD_BUFFER_SIZE",
    "DEFAULT_WINDOW_SIZE",
    "ReplicatorConfig",
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


def parse_host(host: str) -> str:
    """Validate one media host as written in ``RESTO_MEDIA_HOSTS``; return it normalized.

    ``host[:port]``, with an IPv6 address in brackets: ``media-1``,
    ``10.0.0.5:8080``, ``[::1]:8080``.
    """
    if not isinstance(host, str):
        raise ConfigurationError(f"a media host must be a string, not {type(host).__name__}")
    text = host.strip()
    match = _HOST_RE.fullmatch(text)
    if match is None:
        hint = " (write an IPv6 address in brackets: [::1]:8080)" if text.count(":") > 1 else ""
        raise ConfigurationError(f"invalid media host {host!r}: expected 'host[:port]'{hint}")
    if match["ipv6"] is not None:
        try:
            ipaddress.IPv6Address(match["ipv6"])
        except ValueError:
            raise ConfigurationError(f"invalid IPv6 address in media host {host!r}") from None
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        raise ConfigurationError(f"invalid port in media host {host!r}: {port}")
    return text


def _parse_base_url(base_url: str) -> tuple[str, str]:
    """Split a base URL into (scheme, path); the host part is replaced per media host."""
    if not isinstance(base_url, str):
        raise ConfigurationError(f"base_url must be a string, not {type(base_url).__name__}")
    parts = urlsplit(base_url)
    if parts.query or parts.fragment or base_url.endswith(("?", "#")):
        raise ConfigurationError(f"base_url may not contain a query or fragment: {base_url!r}")
    scheme = (parts.scheme or "http").lower()
    if scheme not in ("http", "https"):
        raise ConfigurationError(f"base_url must use http or https, not {scheme!r}")
    path = parts.path or "/"
    if not path.startswith("/") or not path.endswith("/"):
        raise ConfigurationError(f"base_url's path must start and end with '/': {base_url!r}")
    return scheme, quote(path, safe=_PATH_SAFE)


def _positive(name: str, value: float, *, integer: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be a number, not {type(value).__name__}")
    if integer and not isinstance(value, int):
        raise ConfigurationError(f"{name} must be a whole number, not {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ConfigurationError(f"{name} must be positive, not {value!r}")


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
    (``0``: never skip).
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
    scheme: str = dataclasses.field(init=False, repr=False, compare=False)
    base_path: str = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hosts: object = self.hosts  # typed as a tuple, but settings hand over anything
        if isinstance(hosts, str) or not isinstance(hosts, Iterable):
            raise ConfigurationError(f"hosts must be a list of 'host[:port]', not {hosts!r}")
        normalized = tuple(parse_host(host) for host in hosts)
        duplicates = sorted({host for host in normalized if normalized.count(host) > 1})
        if duplicates:
            raise ConfigurationError(f"media hosts listed twice: {', '.join(duplicates)}")
        object.__setattr__(self, "hosts", normalized)
        scheme, base_path = _parse_base_url(self.base_url)
        object.__setattr__(self, "scheme", scheme)
        object.__setattr__(self, "base_path", base_path)
        _positive("timeout", self.timeout)
        if self.total_timeout is not None:
            _positive("total_timeout", self.total_timeout)
        cooldown: object = self.host_cooldown
        if isinstance(cooldown, bool) or not isinstance(cooldown, int | float):
            raise ConfigurationError(f"host_cooldown must be a number, not {cooldown!r}")
        if not (0 <= cooldown <= _MAX_COOLDOWN):
            raise ConfigurationError(
                f"host_cooldown must be 0 (never skip a host) to {_MAX_COOLDOWN} seconds, "
                f"not {cooldown!r}"
            )
        for name in ("concurrency", "chunk_size", "window_size", "upload_buffer_size"):
            _positive(name, getattr(self, name), integer=True)
        if self.window_size < self.chunk_size:
            raise ConfigurationError(
                f"window_size ({self.window_size}) must hold at least one chunk ({self.chunk_size})"
            )
        if not _CURL_MIN_UPLOAD_BUFFER <= self.upload_buffer_size <= _CURL_MAX_UPLOAD_BUFFER:
            raise ConfigurationError(
                f"upload_buffer_size must be between {_CURL_MIN_UPLOAD_BUFFER} and "
                f"{_CURL_MAX_UPLOAD_BUFFER} bytes (libcurl's limits), not {self.upload_buffer_size}"
            )

    @property
    def window_chunks(self) -> int:
        """How many chunks the sliding window holds."""
        return self.window_size // self.chunk_size
