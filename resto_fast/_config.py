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
from collections.abc import Iterable, Mapping
from typing import Literal
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
    "is_loopback",
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


def normalize_host(host: str, scheme: str, port: int | None = None) -> str:
    """:func:`parse_host`, with the port the URLs use made plain: without ``port``, the
    scheme's default port is dropped (``a:80`` is ``a`` on http); with it (``upload_url``'s),
    a host written without a port gets that one (``a`` is ``a:8080``)."""
    parsed = parse_host(host)
    has_port = re.search(r":[0-9]+$", parsed) is not None
    if port is not None:
        return parsed if has_port else f"{parsed}:{port}"
    default = _DEFAULT_PORTS.get(scheme)
    if default is not None and parsed.endswith(f":{default}"):
        return parsed[: -len(default) - 1]
    return parsed


def is_loopback(host: str) -> bool:
    """Whether a (parsed) media host is this machine: ``localhost``, 127.0.0.0/8, ``[::1]``."""
    name = re.sub(r":[0-9]+$", "", host).strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


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
            "base_url may not carry credentials (a URL ends up in logs): take them out of "
            f"{parts.scheme}://...@ and give them as auth=(user, password) (RESTO_AUTH)"
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


def _parse_upload_url(upload_url: str) -> tuple[str, str, int | None]:
    """Split ``upload_url`` into (scheme, path, port): as a base URL, and its host part may
    only be ``*`` (each media host) or empty, with a port for the hosts written without one."""
    scheme, path = _parse_base_url(upload_url)
    parts = urlsplit(upload_url)
    host = parts.netloc.rpartition(":")[0] if ":" in parts.netloc else parts.netloc
    if host not in ("", "*"):
        raise ConfigurationError(
            f"upload_url may not name a host (the media hosts are the hosts option, "
            f"RESTO_MEDIA_HOSTS): write '{scheme}://*:8080{path}', not {upload_url!r}"
        )
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"upload_url has an invalid port: {upload_url!r}") from None
    if port == 0:
        raise ConfigurationError(f"upload_url has an invalid port: {upload_url!r}")
    return scheme, path, port


# A header's name: an HTTP token.  Names resto_fast sets itself, or that would change what a
# request means, are refused.
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_MANAGED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "expect", "depth"}
    | {"content-type", "range", "destination", "overwrite", "if", "te", "upgrade"}
)


def _parse_headers(headers: object, auth: object) -> tuple[tuple[str, str], ...]:
    """``headers`` as (name, value) pairs, each checked; the values are secrets."""
    if not isinstance(headers, Mapping):
        raise ConfigurationError(
            f"headers must be a mapping of header names to values, not {type(headers).__name__}"
        )
    pairs = []
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN_RE.fullmatch(name):
            raise ConfigurationError(f"headers: {name!r} is no HTTP header name")
        if name.lower() in _MANAGED_HEADERS:
            raise ConfigurationError(
                f"headers may not set {name}: resto_fast sets it per request, as the method needs"
            )
        if name.lower() == "authorization" and auth is not None:
            raise ConfigurationError("give auth or an Authorization header, not both")
        if not isinstance(value, str):
            raise ConfigurationError(
                f"headers: the value of {name} must be a string, not {type(value).__name__}"
            )
        if re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value):  # value not shown: it may be a secret
            raise ConfigurationError(f"headers: the value of {name} has a control character")
        pairs.append((name, value.strip()))
    return tuple(pairs)


def _parse_auth(auth: object) -> tuple[str, str] | None:
    """``auth`` as (user, password) for HTTP Basic; the password is a secret."""
    if auth is None:
        return None
    if isinstance(auth, str | bytes) or not isinstance(auth, tuple | list) or len(auth) != 2:
        raise ConfigurationError("auth must be a pair (user, password), for HTTP Basic")
    user, password = auth
    if not isinstance(user, str) or not isinstance(password, str):
        raise ConfigurationError("auth's user and password must be strings")
    if not user or ":" in user or re.search(r"[\x00-\x1f\x7f]", user):
        raise ConfigurationError(
            "auth's user must be a name without ':' or control characters (HTTP Basic)"
        )
    if re.search(r"[\x00-\x1f\x7f]", password):
        raise ConfigurationError("auth's password may not contain control characters")
    return user, password


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
    ``make_directories``: ``"auto"`` makes the directories above a file
    (WebDAV MKCOL, top down) when a host refuses its PUT with ``409``, as
    lighttpd, Apache and wsgidav do for a missing directory, then retries that
    PUT once; ``True`` makes them before every PUT into a directory not known
    to exist; ``False`` never (a 409 is then the host's failure).
    ``host_cooldown``: after a host could not be reached, every request of the
    process skips it for that many seconds, then one request probes it
    (``0``: never skip).  ``logger`` names the logger failures and surprises
    go to (the storages': ``resto_fast.storage``, which ``resto_fast`` hears).

    ``upload_url``, when replication reaches the media servers otherwise than
    the public ``base_url`` says (http on a private network, the public URL
    https through a CDN): its scheme, its path, and its port for the hosts
    written without one, as in ``http://*:8080/media/``.  ``auth`` (a (user,
    password) pair, HTTP Basic), ``headers`` (a bearer token, an API key...)
    and ``client_cert``/``client_key`` (a TLS client certificate, PEM) go with
    every request; the password and header values are secrets, masked in the
    repr and never logged.
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
    upload_url: str | None = None
    auth: tuple[str, str] | None = None
    headers: tuple[tuple[str, str], ...] = ()  # given as a mapping, or as these pairs
    client_cert: str | None = None
    client_key: str | None = None
    log_tracebacks: bool = False
    make_directories: bool | Literal["auto"] = "auto"
    host_cooldown: float = DEFAULT_HOST_COOLDOWN
    logger: str = "resto_fast"
    scheme: str = dataclasses.field(init=False, repr=False, compare=False)
    base_path: str = dataclasses.field(init=False, repr=False, compare=False)
    port: int | None = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _parse_base_url(self.base_url)
        if self.upload_url is None:
            scheme, base_path = _parse_base_url(self.base_url)
            port = None
        else:
            scheme, base_path, port = _parse_upload_url(self.upload_url)
        object.__setattr__(self, "scheme", scheme)
        object.__setattr__(self, "base_path", base_path)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "auth", _parse_auth(self.auth))
        headers: object = self.headers  # typed as pairs, but given as a mapping too
        if isinstance(headers, tuple):  # pairs, as stored (a copy by dataclasses.replace)
            try:
                headers = dict(headers)
            except (TypeError, ValueError):
                raise ConfigurationError("headers must be a mapping of names to values") from None
        object.__setattr__(self, "headers", _parse_headers(headers, self.auth))
        for name in ("client_cert", "client_key"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _readable_file(name, getattr(self, name)))
        if self.client_key is not None and self.client_cert is None:
            raise ConfigurationError("client_key needs client_cert, the certificate it goes with")
        hosts: object = self.hosts  # typed as a tuple, but settings hand over anything
        if isinstance(hosts, str) or not isinstance(hosts, Iterable):
            raise ConfigurationError(f"hosts must be a list of 'host[:port]', not {hosts!r}")
        normalized = tuple(normalize_host(host, scheme, port) for host in hosts)
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
        if not (isinstance(self.make_directories, bool) or self.make_directories == "auto"):
            raise ConfigurationError(
                f"make_directories must be 'auto', True or False, not {self.make_directories!r}"
            )
        for name in ("verify_tls", "log_tracebacks"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(
                    f"{name} must be True or False, not {getattr(self, name)!r}"
                )
        if self.ca_file is not None:
            object.__setattr__(self, "ca_file", _readable_file("ca_file", self.ca_file))

    def __repr__(self) -> str:
        """The fields, with the secrets (a password, header values) masked."""
        shown = []
        for field in dataclasses.fields(self):
            if not field.repr:
                continue
            value = getattr(self, field.name)
            if field.name == "auth" and value is not None:
                value = (value[0], "***")
            elif field.name == "headers":
                value = {name: "***" for name, _ in value}
            shown.append(f"{field.name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def normalize(self, host: str) -> str:
        """A host as this configuration's URLs spell it (see :func:`normalize_host`)."""
        return normalize_host(host, self.scheme, self.port)

    @property
    def credentials(self) -> bool:
        """Whether requests carry anything secret: a password, or headers set for them."""
        return self.auth is not None or bool(self.headers)

    @property
    def window_chunks(self) -> int:
        """How many chunks the sliding window holds."""
        return self.window_size // self.chunk_size
