"""``resto-fast doctor``: can each media server serve replication, and if not, what to change.

Each host is probed alone, as replication uses it, through the replicator's
own client: a PUT into missing directories (then MKCOL, when that is
refused), a PUT of a new file and of a replacement, GET, HEAD, PROPFIND,
DELETE, bodies of growing size, and whether a connection is kept alive.
Everything goes under a throw-away directory below the base URL,
``.resto-doctor-<hex>/``, and what was written is removed at the end, even
when a probe fails half-way.  The output is a block per host, one row per
check with the fix for what failed, then one verdict line per host; the exit
status is 1 when a host cannot serve replication.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import secrets
import textwrap
from collections.abc import Iterator
from typing import Literal, NamedTuple, TextIO

from ._config import MiB, ReplicatorConfig, is_loopback
from ._exceptions import (
    ConfigurationError,
    NotFoundError,
    ReplicationError,
    TransportError,
    UnexpectedStatusCode,
)
from ._operation import Job, Sink
from ._progress import human_bytes
from ._replicator import Replicator
from ._results import HostResult, OperationResult, Outcome
from ._sources import Source

__all__ = ["run_doctor"]

State = Literal["ok", "warn", "FAIL", "skip"]
ROWS = (
    "connect", "TLS", "auth", "PUT new", "PUT replace", "GET", "HEAD", "DELETE",
    "PROPFIND", "directories", "largest body", "keep-alive", "cleanup",
)  # fmt: skip
# Rows without which replication fails on a host; the others only warn.  A body limit
# below --max-size fails too: that option says how large a file the site replicates.
_NEEDED = frozenset(
    {"connect", "TLS", "PUT new", "PUT replace", "GET", "DELETE", "directories", "largest body"}
)

_METHOD_FIX = (
    "allow the method here: nginx `dav_methods PUT DELETE MKCOL;`; Apache `Dav On`; "
    'lighttpd `webdav.activate = "enable"` (for this client\'s address too)'
)
_BODY_FIX = (
    "lift the body limit above your largest file: nginx `client_max_body_size 0;` (its "
    "default, 1m, refuses more); Apache `LimitRequestBody 0`; lighttpd `server.max-request-size` "
    "(in KiB)"
)
_LIST_FIX = (
    "load nginx's dav-ext module (dav_ext_methods PROPFIND OPTIONS;); Apache's mod_dav and "
    "lighttpd's mod_webdav list already. Until then resync falls back to HEAD per file"
)
# The fix for a failed request, by status code (300 and 500: any other 3xx or 5xx) or by
# transport error reason.
_FIXES: dict[int | str, str] = {
    202: "the server answered before storing the file: send to the server, not to a queue",
    300: "the server redirects (never followed): give --base-url its real scheme and path",
    401: "the server wants credentials, or refused those given: set auth (--user, RESTO_AUTH) "
    "or headers (--header, RESTO_HEADERS) to what it expects",
    403: "the server wants credentials or refuses this client's address: allow it (nginx "
    '`allow ADDRESS;`, Apache `Require ip ADDRESS`, lighttpd `$HTTP["remoteip"]`); '
    "and let the server's user write under its root",
    404: "WebDAV is off for this URL or this client (lighttpd answers 404 then): " + _METHOD_FIX,
    405: _METHOD_FIX,
    409: "a directory above the file is missing: nginx `create_full_put_path on;`; Apache, "
    "lighttpd: allow MKCOL and use make_directories (--make-directories)",
    413: _BODY_FIX,
    501: _METHOD_FIX,
    500: "the server failed: read its error log (can its user write the root? disk full?)",
    507: "the server's disk is full",
    "refused": "nothing listens there: start the media server, or correct the host and port",
    "dns": "the name does not resolve: correct it, or add it to DNS or /etc/hosts",
    "timeout": "no answer in time: check that the host is up and that no firewall drops the "
    "traffic (or raise --timeout)",
    "stalled": "the server stopped answering: is it an HTTP server, and is it overloaded?",
    "reset": "the server closed the connection: is this port HTTP (an https port needs an "
    "https:// --base-url)? Read its error log",
    "tls": "give the CA that signed the server's certificate with --ca-file (RESTO_CA_FILE), "
    "or fix the certificate (its name must match the host, its dates must be valid); and "
    "check that the port speaks https",
    "incomplete": "the server answered before reading the whole body: look for a body "
    "limit, or a proxy in front of it",
}
_MKCOL_FIX = (
    "use make_directories=True (--make-directories always, RESTO_MAKE_DIRECTORIES = True): "
    "'auto' makes them only after a 409, which this server does not answer; on nginx "
    "`create_full_put_path on;` makes MKCOL unnecessary"
)
_MKCOL_409_FIX = (
    "leave make_directories at 'auto' (the default; --make-directories auto), or True: "
    "'auto' makes them after a 409 and sends the PUT again"
)
_CLEAR_TEXT_FIX = (
    "anyone on the way can read the credentials: upload over https (--base-url https://..., "
    "RESTO_UPLOAD_URL = 'https://*/media/')"
)
_SAME_FILE_FIX = "GET must serve the file PUT wrote: one root for both, no rewrite, cache or proxy"
_LAST_MODIFIED_FIX = (
    "let the server send Last-Modified for these files (lighttpd: keep a catch-all "
    '`"" => "application/octet-stream"` in mimetype.assign)'
)
_KEEPALIVE_FIX = (
    "keep connections open: nginx `keepalive_timeout 75s;` (not 0); Apache `KeepAlive On`; "
    "lighttpd `server.max-keep-alive-requests` (not 0)"
)
_NO_VERIFY_FIX = "give the server's CA with --ca-file instead of --no-verify-tls"


class Row(NamedTuple):
    """One check on one host: how it went, what was seen, and the fix when it did not go well."""

    state: State
    detail: str
    fix: str = ""


def run_doctor(config: ReplicatorConfig, *, max_size: int, out: TextIO) -> int:
    """Probe every host of ``config``, print a table per host and a verdict per host.

    Returns the exit status: 0 when every host can serve replication, 1 when
    one cannot.  Bodies are tried up to ``max_size`` bytes.  The probes run
    without ``make_directories``, to learn whether the server makes
    directories itself; the table says whether the config's setting suits it.
    """
    if max_size < 1:
        raise ConfigurationError(f"the largest body to try must be at least 1 byte, not {max_size}")
    if not config.hosts:
        raise ConfigurationError("no media host to probe: name them with --hosts H1,H2,...")
    where = f"{config.scheme}://HOST{config.base_path}"
    count = f"{len(config.hosts)} media host{'s' if len(config.hosts) > 1 else ''}"
    print(f"resto-fast doctor: {count} at {where}, bodies up to {human_bytes(max_size)}", file=out)
    probing = dataclasses.replace(config, make_directories=False)
    verdicts = []
    with _quiet_log(), Replicator.from_config(probing) as replicator:
        for host in config.hosts:
            probe = _HostProbe(replicator, host, max_size=max_size, config=config)
            rows = probe.run()
            _print_table(out, host, replicator.url(probe.directory, host) + "/", rows)
            verdicts.append(_verdict(host, rows))
    print(file=out)
    for _, line in verdicts:
        print(line, file=out)
    return 0 if all(ready for ready, _ in verdicts) else 1


@contextlib.contextmanager
def _quiet_log() -> Iterator[None]:
    """Hold back the replicator's own log lines while probing: each failure is a row of
    the table already, and the probes fail on purpose on a server that is not ready."""
    package = logging.getLogger("resto_fast")

    def drop(record: logging.LogRecord) -> bool:
        return False

    package.addFilter(drop)
    try:
        yield
    finally:
        package.removeFilter(drop)


class _HostProbe:
    """The checks of one host, made in order, and what they wrote there (to be removed)."""

    def __init__(
        self, replicator: Replicator, host: str, *, max_size: int, config: ReplicatorConfig
    ) -> None:
        self.replicator = replicator
        self.host = host
        self.max_size = max_size
        self.config = config
        self.directory = f".resto-doctor-{secrets.token_hex(6)}"
        self.file = f"{self.directory}/probe.bin"
        self.nested = f"{self.directory}/a/b/probe.bin"
        self.content = secrets.token_bytes(4096)
        self.rows: dict[str, Row] = {}
        self.history: list[HostResult] = []  # every answer, in order
        self.leftover: dict[str, None] = {}  # files that may be on the server, in order
        self.connected = False  # whether the host gave an HTTP answer
        self.touched = False  # whether the probe directory may exist
        self.made_base = False
        self.stopped = "not tried"  # why the rows not reached were skipped

    def run(self) -> list[tuple[str, Row]]:
        """Every row, in table order; rows not reached are skipped, saying why."""
        try:
            self._probe()
        finally:
            self.rows["cleanup"] = self._clean_up()
        if self.connected:
            self.rows["auth"] = self._auth()
            self.rows["keep-alive"] = self._keepalive()
        return [(name, self.rows.get(name, Row("skip", self.stopped))) for name in ROWS]

    def _probe(self) -> None:
        first = self._send("PUT", self.nested, self.content)
        self.rows.update(self._connection(first))
        if not self.connected:
            self.stopped = "no connection"
            return
        self.rows["directories"] = self._directories(first)
        self.rows["PUT new"] = self._put_new()
        if self.rows["PUT new"][0] == "FAIL":
            self.stopped = "PUT new failed"
            return
        self.rows["PUT replace"] = self._put_replace()
        self.rows["GET"] = self._get()
        self.rows["HEAD"] = self._head()
        self.rows["PROPFIND"] = self._propfind()
        self.rows["DELETE"] = self._delete()
        self.rows["largest body"] = self._largest_body()

    def _send(
        self,
        method: str,
        name: str,
        source: Source | None = None,
        *,
        sink: Sink | None = None,
        directory: bool = False,
    ) -> HostResult:
        """One request to this host through the replicator's loop, remembered for the
        connection checks; a PUT's name is noted for removal unless nothing was stored."""
        done: list[OperationResult] = []
        sinks = None if sink is None else [sink]
        job = Job(method, name, (self.host,), source, sinks, directory, warn=False)
        self.replicator.run_jobs([job], on_result=lambda _, result: done.append(result))
        if done[0].source_error is not None:
            raise done[0].source_error  # in-memory sources: never, short of a bug
        (result,) = done[0].hosts
        self.history.append(result)
        if method == "PUT" and (result.ok or isinstance(result.error, TransportError)):
            self.leftover[name] = None
            self.touched = True
        return result

    def _connection(self, first: HostResult) -> dict[str, Row]:
        """connect and TLS, from the first request's answer or transport error."""
        error = first.error
        if first.status is None and isinstance(error, TransportError):
            if error.reason == "tls":
                return {"connect": Row("ok", "TCP connection made"), "TLS": _failed(first)}
            return {"connect": _failed(first)}
        self.connected = True
        return {"connect": Row("ok", f"answered HTTP {first.status}"), "TLS": self._tls()}

    def _tls(self) -> Row:
        """The handshake passed (the first request got an answer); was the certificate checked?"""
        if self.config.scheme == "http":
            return Row("ok", "plain http, no TLS")
        if not self.config.verify_tls:
            return Row("warn", "certificate not checked (--no-verify-tls)", _NO_VERIFY_FIX)
        return Row("ok", "certificate verified")

    def _directories(self, first: HostResult) -> Row:
        """Whether a PUT three levels below missing directories works, or works after MKCOL."""
        said = f"a PUT into missing directories answered {_answer(first)}"
        if first.ok:
            return Row("ok", f"{said}: the server makes them")
        refused = self._make_directories()
        retry = self._send("PUT", self.nested, self.content)
        mode = self.config.make_directories
        conflict = isinstance(first.error, UnexpectedStatusCode) and first.error.code == 409
        if retry.ok and mode is True:
            return Row("ok", f"{said}; after MKCOL it works, and make_directories is on")
        if retry.ok and mode == "auto" and conflict:
            return Row("ok", f"{said}; after MKCOL it works, as make_directories='auto' does")
        if retry.ok:
            return Row(
                "warn", f"{said}; after MKCOL it works", _MKCOL_409_FIX if conflict else _MKCOL_FIX
            )
        refusal = refused or retry  # the MKCOL that failed, else the PUT after them all
        why = f"{refusal.method} {refusal.url} answered {_answer(refusal)}"
        fixes = dict.fromkeys(fix for fix in (_fix(first.error), _fix(refusal.error)) if fix)
        return Row("FAIL", f"{said}; then {why}", " ".join(fixes))

    def _make_directories(self) -> HostResult | None:
        """MKCOL the base and every directory above the nested file, top down, as
        make_directories does; the first refusal, or None."""
        parents = self.nested.split("/")[:-1]
        for depth in range(len(parents) + 1):
            result = self._send("MKCOL", "/".join(parents[:depth]), directory=True)
            if result.outcome is Outcome.CREATED:
                self.touched = self.touched or depth > 0
                self.made_base = self.made_base or depth == 0
            if not result.ok:
                return result
        return None

    def _put_new(self) -> Row:
        result = self._send("PUT", self.file, self.content)
        if result.outcome is Outcome.CREATED:
            return Row("ok", "HTTP 201 Created")
        if result.ok:
            return Row("warn", f"HTTP {result.status}, as for a replacement")
        return _failed(result)

    def _put_replace(self) -> Row:
        """Other bytes, of another size: GET and HEAD can then tell which copy they see."""
        replacement = secrets.token_bytes(len(self.content) + 1000)
        result = self._send("PUT", self.file, replacement)
        if not result.ok:
            return _failed(result)
        self.content = replacement
        return Row("ok", f"HTTP {result.status} ({result.outcome.value})")

    def _get(self) -> Row:
        body = io.BytesIO()
        result = self._send("GET", self.file, sink=body.write)
        got, written = len(body.getvalue()), len(self.content)
        if result.outcome is Outcome.FOUND and body.getvalue() == self.content:
            return Row("ok", f"the same {written} bytes back")
        if result.outcome is Outcome.FOUND:
            return Row("FAIL", f"{got} bytes back, not the {written} written", _SAME_FILE_FIX)
        if result.outcome is Outcome.MISSING:
            return Row("FAIL", "HTTP 404 for the file just written", _SAME_FILE_FIX)
        return _failed(result)

    def _head(self) -> Row:
        result = self._send("HEAD", self.file)
        if result.outcome is not Outcome.FOUND:
            return _failed(result, "warn")
        if result.size != len(self.content):
            return Row("warn", f"size {result.size}, not {len(self.content)}", _SAME_FILE_FIX)
        if result.modified is None:
            detail = f"size {result.size}, but no Last-Modified: resync cannot compare dates"
            return Row("warn", detail, _LAST_MODIFIED_FIX)
        return Row("ok", f"size {result.size}, Last-Modified sent")

    def _propfind(self) -> Row:
        try:
            _, files = self.replicator.listdir(self.directory, self.host)
        except ReplicationError as error:
            failure = error.failures.get(self.host)
            if getattr(failure, "code", None) in (405, 501):
                return Row("warn", f"cannot list ({failure})", _LIST_FIX)
            return Row("warn", f"Depth 1 failed: {failure}", _fix(failure))
        except NotFoundError:
            return Row("warn", "HTTP 404 for the probe directory", _SAME_FILE_FIX)
        if "probe.bin" not in files:
            return Row("warn", "the listing lacks the file just written", _SAME_FILE_FIX)
        return Row("ok", "Depth 1 lists the probe directory")

    def _delete(self) -> Row:
        result = self._send("DELETE", self.file)
        if result.outcome is Outcome.ALREADY_GONE:
            return Row("FAIL", f"HTTP {result.status} for the file just written", _SAME_FILE_FIX)
        if not result.ok:
            return _failed(result)
        del self.leftover[self.file]
        after = self._send("HEAD", self.file)
        if after.outcome is Outcome.FOUND:
            return Row("FAIL", f"HTTP {result.status}, but HEAD still finds it", _SAME_FILE_FIX)
        return Row("ok", f"HTTP {result.status}, then HEAD answers {_answer(after)}")

    def _largest_body(self) -> Row:
        """PUT bodies of growing size, up to max_size; the largest one the server took."""
        zeros = memoryview(bytes(self.max_size))  # calloc'd: untouched pages cost no memory
        sizes = _body_sizes(self.max_size)
        accepted = 0
        for size in sizes:
            result = self._send("PUT", f"{self.directory}/large.bin", zeros[:size])
            if not result.ok:
                limit = result.status == 413 or getattr(result.error, "reason", "") == "reset"
                detail = f"{human_bytes(size)} refused: {_answer(result)}"
                if accepted:
                    detail += f"; {human_bytes(accepted)} was accepted"
                return Row("FAIL", detail, _BODY_FIX if limit else _fix(result.error))
            accepted = size
        tried = ", ".join(human_bytes(size) for size in sizes)
        return Row("ok", f"{human_bytes(accepted)} accepted (tried {tried})")

    def _clean_up(self) -> Row:
        """Delete every file written, then the probe directory; say what could not be."""
        if not (self.connected and self.touched):
            return Row("ok", "nothing was written")
        results = [self._send("DELETE", name) for name in self.leftover]
        results.append(self._send("DELETE", self.directory, directory=True))
        failed = [result for result in results if not result.ok]
        if failed:
            where = ", ".join(f"{result.url} ({_answer(result)})" for result in failed)
            return Row("warn", f"could not remove {where}: do it by hand", _fix(failed[0].error))
        base = self.config.base_path
        kept = f"; kept the base directory {base} it made" if self.made_base else ""
        return Row("ok", f"removed everything written{kept}")

    def _auth(self) -> Row:
        """What credentials are sent, and whether any request was refused for want of them
        (401), or for this client's address (403).  Names what is sent, never a secret."""
        config = self.config
        sent = [f"HTTP Basic as {config.auth[0]!r}"] if config.auth is not None else []
        if config.headers:
            sent.append(f"header(s) {', '.join(name for name, _ in config.headers)}")
        if config.client_cert is not None:
            sent.append("a client certificate")
        what = " and ".join(sent) or "none configured"
        refused = next((r for r in self.history if r.status in (401, 403)), None)
        if refused is not None:
            said = f"{what}; {refused.method} answered HTTP {refused.status}"
            return Row("FAIL", said, _fix(refused.error))
        if not sent:
            return Row("ok", "none configured, and none asked for")
        if config.credentials and config.scheme == "http" and not is_loopback(self.host):
            return Row("warn", f"{what}, accepted; over plain http", _CLEAR_TEXT_FIX)
        return Row("ok", f"{what}, accepted")

    def _keepalive(self) -> Row:
        """Whether a request after a success went over the same connection."""
        pairs = zip(self.history, self.history[1:], strict=False)
        later = next((second for first, second in pairs if first.ok and second.status), None)
        if later is None:
            return Row("skip", "no two requests answered in a row")
        if later.new_connections == 0:
            return Row("ok", "the next request reused the connection")
        detail = "the server closed the connection after a request: each file pays a new one"
        return Row("warn", detail, _KEEPALIVE_FIX)


def _answer(result: HostResult) -> str:
    """What a host answered: ``HTTP 403``, or the transport error's reason and message."""
    return f"HTTP {result.status}" if result.error is None else str(result.error)


def _failed(result: HostResult, state: State = "FAIL") -> Row:
    return Row(state, _answer(result), _fix(result.error))


def _fix(error: Exception | None) -> str:
    """The fix for a failed request, from ``_FIXES``; "" when there is none to give."""
    if isinstance(error, TransportError):
        return _FIXES.get(error.reason, "")
    code = getattr(error, "code", None)
    if not isinstance(code, int):
        return ""
    return _FIXES.get(code) or _FIXES.get(code // 100 * 100, "")


def _body_sizes(max_size: int) -> list[int]:
    """1 MiB, 4 MiB, 16 MiB... below ``max_size``, then ``max_size`` itself."""
    sizes = []
    size = MiB
    while size < max_size:
        sizes.append(size)
        size *= 4
    return [*sizes, max_size]


def _print_table(out: TextIO, host: str, url: str, rows: list[tuple[str, Row]]) -> None:
    """A host's rows, each fix under its row (a fix already given for the host is not repeated)."""
    print(f"\n{host}  (probing {url})", file=out)
    given: set[str] = set()
    for name, row in rows:
        print(_wrap(row.detail, f"  {name:<13} {row.state:<5} "), file=out)
        if row.fix and row.fix not in given:
            given.add(row.fix)
            print(_wrap(f"fix: {row.fix}", " " * 22, hang=5), file=out)
    out.flush()


def _wrap(text: str, first: str, *, hang: int = 0) -> str:
    """``text`` after ``first``, wrapped at 100 columns under its own start; URLs kept whole."""
    rest = " " * (len(first) + hang)
    return textwrap.fill(
        text, 100, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False,
        break_long_words=False,
    )  # fmt: skip


def _verdict(host: str, rows: list[tuple[str, Row]]) -> tuple[bool, str]:
    """Whether the host can serve replication, and the line that says so (and why not)."""
    failed = [(name, row) for name, row in rows if row.state == "FAIL" and name in _NEEDED]
    if failed:
        (name, row), others = failed[0], [other for other, _ in failed[1:]]
        also = f"; also {', '.join(others)}" if others else ""
        return False, f"{host}: cannot serve replication: {name}: {row.detail}{also}"
    warned = [name for name, row in rows if row.state == "warn"]
    said = f" (warnings: {', '.join(warned)})" if warned else ""
    return True, f"{host}: ready for replication{said}"
