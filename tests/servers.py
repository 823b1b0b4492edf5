"""Real peers for the tests and benchmarks: nginx media servers, and hosts that misbehave.

``Nginx`` runs one nginx master on free loopback ports, one ``server`` block
(one media host, with its own root) per port, WebDAV PUT/DELETE on (and
PROPFIND, through Debian's dav-ext module, when it is installed), and an
access log in JSON that tests read to assert exactly which requests each host
received.  Extra server blocks answer a fixed status (403, 500, 202, 302) to
every request: real nginx refusing, failing or redirecting; one more is a
media host with nginx's stock WebDAV only, which answers PROPFIND with 405.

The misbehaving hosts are small TCP peers, since no well-behaved server
produces them on demand: one that never answers (a black hole), one that stops
reading the body (stalls), one that resets the connection half-way through an
upload, one that reads slowly (to make a fast host wait for it), and one that
gives every request the same answer (a success status with a wrong body), and one that
answers a PUT with success before it has read the body.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Self

import pytest

from resto_fast.http_server import TestHttpServer

NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx")
# Debian's libnginx-mod-http-dav-ext: PROPFIND and OPTIONS, which nginx's own dav module lacks.
DAV_EXT_MODULE = "ngx_http_dav_ext_module.so"
DAV_EXT_DIRECTORIES = ("/usr/lib/nginx/modules",)


# .ci/run sets this: there, a test whose server is not installed fails instead of skipping.
REQUIRE_SERVERS = os.environ.get("RESTO_FAST_REQUIRE_NGINX", "") == "1"


def unavailable(reason: str) -> NoReturn:
    """A server a test needs is not installed: fail where every one must be (CI), else skip."""
    if REQUIRE_SERVERS:
        pytest.fail(reason)
    pytest.skip(reason)


def find_nginx() -> str | None:
    for candidate in NGINX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def find_dav_ext_module(binary: str) -> Path | None:
    """The dav-ext module built for this nginx, or None.

    Looked for where ``nginx -V`` says its modules live, then where Debian puts
    them.  Loaded by absolute path: a relative one would be read against the
    ``-p`` prefix the tests start nginx with.
    """
    built = subprocess.run([binary, "-V"], capture_output=True, text=True, check=False).stderr
    found = re.search(r"--modules-path=(\S+)", built)
    directories = ([found.group(1)] if found else []) + list(DAV_EXT_DIRECTORIES)
    for directory in directories:
        module = Path(directory) / DAV_EXT_MODULE
        if module.is_file():
            return module
    return None


def scratch_dir(prefix: str) -> Path:
    """A temp dir on tmpfs when there is one: nginx writes gigabytes in some tests and
    in the benchmarks, and disk writeback would drown what they measure."""
    usable = os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/dev/shm" if usable else None))


def read_request_head(conn: socket.socket, pending: bytes) -> tuple[str, int, bytes] | None:
    """Read one HTTP/1.1 request head: its path, its Content-Length, and what followed it.

    None when the client closed the connection.  For the small HTTP peers here,
    which speak just enough HTTP for a PUT.
    """
    while b"\r\n\r\n" not in pending:
        data = conn.recv(65536)
        if not data:
            return None
        pending += data
    head, rest = pending.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    _, path, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-length":
            length = int(value)
    return path, length, rest


def requests_on(conn: socket.socket) -> Iterator[str]:
    """The path of each request on a kept-alive connection, its body read and dropped,
    until the client closes it."""
    pending = b""
    while (request := read_request_head(conn, pending)) is not None:
        path, length, pending = request
        while len(pending) < length:
            data = conn.recv(65536)
            if not data:
                return
            pending += data
        pending = pending[length:]
        yield path


def free_port() -> int:
    """A loopback port nothing listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` different loopback ports nothing listens on: each held until all are
    picked, since the kernel may hand a port just released out again (two nginx server
    blocks on one port are virtual hosts of each other, not an error)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


@dataclass(frozen=True)
class Request:
    """One line of an nginx access log."""

    port: int
    method: str
    uri: str
    status: int
    connection: int
    connection_requests: int
    content_length: str  # as the client sent it ("" when absent)
    expect: str  # the Expect header ("" when absent)


_LOG_FORMAT = (
    'log_format resto escape=json \'{"port":$server_port,"method":"$request_method",'
    '"uri":"$uri","status":$status,"connection":$connection,'
    '"requests":$connection_requests,"length":"$content_length","expect":"$http_expect"}\';'
)


class Nginx:
    """An nginx master serving ``count`` media hosts on loopback, in ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        count: int = 3,
        *,
        workers: int = 1,
        status_hosts: tuple[int, ...] = (403, 500, 202, 302),
        body_buffer: str = "128k",
        tls: bool = False,
        private: bool = False,
    ) -> None:
        self.binary = find_nginx()
        if self.binary is None:
            raise FileNotFoundError("nginx is not installed (scripts/test installs it)")
        self.workdir = workdir
        self.count = count
        self.workers = workers
        self.status_codes = status_hosts
        self.body_buffer = body_buffer
        self.tls = tls or private
        self.private = private
        self.private_ports: dict[str, int] = {}
        self.dav_ext = find_dav_ext_module(self.binary)
        self.ports: list[int] = []
        self.tls_ports: list[int] = []
        self.status_ports: dict[int, int] = {}
        self.plain_port = 0
        self.strict_port = 0
        self.small_body_port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- what tests use ----------------------------------------------------------

    @property
    def hosts(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.ports]

    @property
    def tls_hosts(self) -> list[str]:
        """The same media hosts (same roots) over HTTPS, with ``certificate`` as their CA."""
        return [f"127.0.0.1:{port}" for port in self.tls_ports]

    @property
    def certificate(self) -> Path:
        return self.workdir / "tls" / "cert.pem"

    @property
    def propfind(self) -> bool:
        """Whether the media hosts answer PROPFIND (the dav-ext module is installed)."""
        return self.dav_ext is not None

    def status_host(self, code: int) -> str:
        """A host that answers ``code`` to every request."""
        return f"127.0.0.1:{self.status_ports[code]}"

    @property
    def plain_host(self) -> str:
        """A media host on host 0's root with nginx's stock WebDAV only: PUT and DELETE
        work, PROPFIND is answered 405, as by any nginx without the dav-ext module."""
        return f"127.0.0.1:{self.plain_port}"

    @property
    def strict_host(self) -> str:
        """A media host on host 0's root whose PUT into a missing directory is refused (409)
        until the directory is made with MKCOL, as Apache's and lighttpd's WebDAV do."""
        return f"127.0.0.1:{self.strict_port}"

    @property
    def small_body_host(self) -> str:
        """A full media host on host 0's root that refuses bodies over 1 MiB with 413, as
        nginx does by default (``client_max_body_size 1m``)."""
        return f"127.0.0.1:{self.small_body_port}"

    #: What the private hosts want: HTTP Basic with these, or this bearer token.
    USER = "replicator"
    PASSWORD = "pa55 w0rd!%@é"  # htpasswd has no room for a colon
    TOKEN = "s3cret-t0ken"

    def private_host(self, kind: str) -> str:
        """A media host on host 0's root that wants credentials: ``"basic"`` (HTTP Basic,
        USER and PASSWORD, for every method but GET and HEAD), ``"bearer"``
        (``Authorization: Bearer TOKEN``), or ``"client"`` (https, with the trusted
        client certificate of ``client_files()``)."""
        return f"127.0.0.1:{self.private_ports[kind]}"

    def client_files(self, name: str = "client") -> tuple[Path, Path]:
        """(certificate, key) of a client certificate: ``"client"`` is trusted by the
        client-certificate host, ``"stranger"`` is not."""
        return self.workdir / "tls" / f"{name}.pem", self.workdir / "tls" / f"{name}-key.pem"

    def root(self, index: int) -> Path:
        return self.workdir / f"root{index}"

    def path(self, index: int, name: str) -> Path:
        """Where host ``index`` keeps file ``name`` (under the /media/ base path)."""
        return self.root(index) / "media" / name

    def clear(self) -> None:
        """Empty every root and forget the requests logged so far."""
        for index in range(self.count):
            root = self.root(index)
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
        self.clear_log()

    def clear_log(self) -> None:
        """Forget the requests logged so far (the roots stay as they are)."""
        # nginx logs a request just after sending its response, so the last test's final
        # line may still be on its way: start counting once the log has been still 10 ms.
        size = -1
        while self._log_path.exists() and (current := self._log_path.stat().st_size) != size:
            size = current
            time.sleep(0.01)
        self._log_offset = max(size, 0)

    def requests(self, host: str | None = None, *, settle: float = 0.2) -> list[Request]:
        """Requests logged since the last clear(), for one host or all.

        nginx writes its log line just after sending the response, so lines
        still arriving are waited for until the log has been quiet a moment.
        """
        deadline = time.monotonic() + 5
        last_size = -1
        while True:
            size = self._log_path.stat().st_size
            if size == last_size or time.monotonic() > deadline:
                break
            last_size = size
            time.sleep(settle / 4)
        with self._log_path.open("rb") as log:
            log.seek(self._log_offset)
            lines = log.read().decode("utf-8").splitlines()
        entries = [json.loads(line) for line in lines if line.strip()]
        found = [
            Request(
                port=e["port"],
                method=e["method"],
                uri=e["uri"],
                status=e["status"],
                connection=e["connection"],
                connection_requests=e["requests"],
                content_length=e["length"],
                expect=e["expect"],
            )
            for e in entries
        ]
        if host is not None:
            port = int(host.rsplit(":", 1)[1])
            found = [request for request in found if request.port == port]
        return found

    # -- lifecycle ---------------------------------------------------------------

    @property
    def _log_path(self) -> Path:
        return self.workdir / "access.log"

    def start(self) -> Nginx:
        for _ in range(5):  # a port picked as free can be taken before nginx binds it
            kinds = ("basic", "bearer", "client") if self.private else ()
            tls_count = self.count if self.tls else 0
            picked = iter(
                free_ports(self.count + tls_count + len(self.status_codes) + 3 + len(kinds))
            )
            self.ports = [next(picked) for _ in range(self.count)]
            self.tls_ports = [next(picked) for _ in range(tls_count)]
            self.status_ports = {code: next(picked) for code in self.status_codes}
            self.plain_port = next(picked)
            self.strict_port = next(picked)
            self.small_body_port = next(picked)
            self.private_ports = {kind: next(picked) for kind in kinds}
            self._write_config()
            if self._launch():
                self.clear()
                return self
        raise RuntimeError(f"nginx did not start:\n{self._error_log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _launch(self) -> bool:
        assert self.binary is not None
        self.process = subprocess.Popen(
            [self.binary, "-p", str(self.workdir), "-c", "nginx.conf", "-e", "error.log"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        pending = set(self.ports) | set(self.tls_ports) | set(self.status_ports.values())
        pending |= {self.plain_port, self.strict_port, self.small_body_port}
        pending |= set(self.private_ports.values())
        while pending and time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            for port in list(pending):
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), 0.2),
                ):
                    pending.discard(port)
            time.sleep(0.02)
        if pending:
            self.stop()
            return False
        return True

    def _error_log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text(errors="replace") if path.exists() else "(no error log)"

    def _write_config(self) -> None:
        work = self.workdir
        work.mkdir(parents=True, exist_ok=True)
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (work / "temp" / name).mkdir(parents=True, exist_ok=True)
        if self.tls:
            self._make_certificate()
        propfind = "dav_ext_methods PROPFIND OPTIONS;" if self.dav_ext else ""
        media = f"dav_methods PUT DELETE; {propfind} create_full_put_path on;"
        # (root index, listen, the location's WebDAV directives)
        listens = (
            [(index, f"127.0.0.1:{port}", media) for index, port in enumerate(self.ports)]
            + [(index, f"127.0.0.1:{port} ssl", media) for index, port in enumerate(self.tls_ports)]
            + [
                (
                    0,
                    f"127.0.0.1:{self.plain_port}",
                    "dav_methods PUT DELETE; create_full_put_path on;",
                )
            ]
            + [(0, f"127.0.0.1:{self.strict_port}", "dav_methods PUT DELETE MKCOL;")]
            + [(0, f"127.0.0.1:{self.small_body_port}", f"{media} client_max_body_size 1m;")]
            + self._private_servers(media)
        )
        media_servers = "\n".join(
            f"""
    server {{
        listen {listen};
        {self._server_level(listen)}
        root {self.root(index)};
        location / {{
            {webdav}
            dav_access user:rw group:r all:r;
        }}
    }}"""
            for index, listen, webdav in listens
        )
        status_servers = "\n".join(
            f"""
    server {{
        listen 127.0.0.1:{port};
        location / {{ return {code}{" /elsewhere" if 300 <= code < 400 else ""}; }}
    }}"""
            for code, port in self.status_ports.items()
        )
        user = "user root;" if os.geteuid() == 0 else ""
        load = f"load_module {self.dav_ext};" if self.dav_ext else ""
        config = f"""
{load}
{user}
worker_processes {self.workers};
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    {_LOG_FORMAT}
    access_log {work}/access.log resto;
    client_body_temp_path {work}/temp/client_body;
    proxy_temp_path {work}/temp/proxy;
    fastcgi_temp_path {work}/temp/fastcgi;
    uwsgi_temp_path {work}/temp/uwsgi;
    scgi_temp_path {work}/temp/scgi;
    client_max_body_size 0;
    client_body_buffer_size {self.body_buffer};
    keepalive_requests 100000;
    types {{ }}
    default_type application/octet-stream;
    {media_servers}
    {status_servers}
}}
"""
        (work / "nginx.conf").write_text(config)

    def _private_servers(self, media: str) -> list[tuple[int, str, str]]:
        """The server blocks of the private hosts: (root index, listen, directives)."""
        if not self.private:
            return []
        work = self.workdir
        (work / "htpasswd").write_text(f"{self.USER}:{{PLAIN}}{self.PASSWORD}\n")
        ports = self.private_ports
        bearer = f'if ($http_authorization != "Bearer {self.TOKEN}") {{ return 401; }}'
        return [
            (
                0,
                f"127.0.0.1:{ports['basic']}",
                f"{media} limit_except GET HEAD "
                f'{{ auth_basic "media"; auth_basic_user_file {work}/htpasswd; }}',
            ),
            (0, f"127.0.0.1:{ports['bearer']}", f"{media} {bearer}"),
            (0, f"127.0.0.1:{ports['client']} ssl", media),
        ]

    def _server_level(self, listen: str) -> str:
        """Directives of a server block itself: TLS files, and client certificates."""
        if not listen.endswith("ssl"):
            return ""
        work = self.workdir
        directives = f"ssl_certificate {self.certificate}; ssl_certificate_key {work}/tls/key.pem;"
        if self.private and listen == f"127.0.0.1:{self.private_ports['client']} ssl":
            client_ca = self.client_files()[0]
            directives += f" ssl_verify_client on; ssl_client_certificate {client_ca};"
        return directives

    def _make_certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1, and for the private hosts two self-signed
        client certificates, one of them trusted (openssl's command line)."""
        directory = self.workdir / "tls"
        if self.certificate.exists():
            return
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                str(directory / "key.pem"),
                "-out",
                str(self.certificate),
            ],
            check=True,
            capture_output=True,
        )
        for name in ("client", "stranger") if self.private else ():
            certificate, key = self.client_files(name)
            subprocess.run(
                [
                    *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
                    *("-subj", f"/CN=resto-fast-{name}", "-keyout", str(key)),
                    *("-out", str(certificate)),
                ],
                check=True,
                capture_output=True,
            )


class FlakyServer(TestHttpServer):
    """An embedded media server (files under ``root``) that answers 500 to a random share
    (``rate``) of requests, seeded: a host that fails now and then.  ``failures`` counts them."""

    def __init__(self, root: Path, *, rate: float, seed: int) -> None:
        self.rate = rate
        self.failures = 0
        self._random = random.Random(seed)
        self._draw = threading.Lock()
        super().__init__("127.0.0.1", 0, root=root)

    @property
    def override_code(self) -> int | None:
        with self._draw:
            if self._random.random() >= self.rate:
                return None
            self.failures += 1
        return 500

    @override_code.setter
    def override_code(self, value: int | None) -> None:
        pass  # the base class sets None at start; the rate decides


def find_redis() -> str | None:
    return shutil.which("redis-server")


class RedisServer:
    """A redis-server on a free loopback port, its files in ``workdir``, nothing saved."""

    def __init__(self, workdir: Path) -> None:
        self.binary = find_redis()
        if self.binary is None:
            raise FileNotFoundError("redis-server is not installed (scripts/test installs it)")
        self.workdir = workdir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        assert self.binary is not None
        for _ in range(5):  # a port picked as free can be taken before redis binds it
            self.port = free_port()
            options = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            options += ["--appendonly", "no", "--dir", str(self.workdir)]
            self.process = subprocess.Popen([self.binary, *options], stdout=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.process.poll() is None:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", self.port), 0.2) as conn,
                ):
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self
                time.sleep(0.05)
            self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# -- misbehaving hosts -------------------------------------------------------------


class _Peer:
    """A TCP listener on loopback whose connections a subclass handles in threads."""

    def __init__(self, *, receive_buffer: int | None = None, accept: bool = True) -> None:
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if receive_buffer is not None:  # accepted sockets inherit it
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self.host = f"127.0.0.1:{self.port}"
        self.connections: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        if accept:
            self._thread = threading.Thread(target=self._accept_loop, daemon=True)
            self._thread.start()

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve_safely, args=(conn,), daemon=True).start()

    def _serve_safely(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self.serve(conn)

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for conn in self.connections:
            with contextlib.suppress(OSError):  # wakes a thread blocked on it; close() alone won't
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class BlackHole(_Peer):
    """Connections are completed by the kernel's backlog and never answered."""

    def __init__(self) -> None:
        super().__init__(accept=False)


class Staller(_Peer):
    """Accepts, reads the request head and a little, then stops reading for ever."""

    def __init__(self) -> None:
        super().__init__(receive_buffer=64 * 1024)

    def serve(self, conn: socket.socket) -> None:
        conn.recv(4096)
        self._stopped.wait()


class Resetter(_Peer):
    """Reads ``after`` bytes of the upload, then resets the connection."""

    def __init__(self, after: int = 256 * 1024) -> None:
        self.after = after
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        received = 0
        while received < self.after:
            data = conn.recv(65536)
            if not data:
                return
            received += len(data)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


class SlowSink(_Peer):
    """A minimal HTTP/1.1 PUT target that reads the body slowly, then answers 201.

    Keeps what it received per path in ``received``, so a test can check the
    bytes it got, not only that it answered.
    """

    def __init__(self, *, rate: int = 4 * 1024 * 1024) -> None:
        self.rate = rate  # bytes per second
        self.received: dict[str, bytes] = {}
        super().__init__(receive_buffer=32 * 1024)

    def serve(self, conn: socket.socket) -> None:
        buffer = b""
        while True:
            request = read_request_head(conn, buffer)
            if request is None:
                return
            path, length, buffer = request
            body = bytearray(buffer[:length])
            buffer = buffer[length:]
            step = max(1, self.rate // 100)
            while len(body) < length:
                data = conn.recv(min(step, length - len(body)))
                if not data:
                    return
                body += data
                time.sleep(len(data) / self.rate)
            self.received[path] = bytes(body)
            conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")


class FixedAnswer(_Peer):
    """Reads each request (head and Content-Length body) and sends the same answer."""

    def __init__(self, status: int, body: bytes) -> None:
        self.answer = b"HTTP/1.1 %d Fixed\r\nContent-Length: %d\r\n\r\n%s" % (
            status,
            len(body),
            body,
        )
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        for _ in requests_on(conn):
            conn.sendall(self.answer)


class Answering(_Peer):
    """Reads each whole request, then sends ``answer`` (raw bytes), then ``trickle`` bytes
    one at a time every ``pause`` seconds (a body that never seems to end), if any."""

    def __init__(self, answer: bytes, *, trickle: int = 0, pause: float = 0.5) -> None:
        self.answer = answer
        self.trickle = trickle
        self.pause = pause
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        for _ in requests_on(conn):
            conn.sendall(self.answer)
            for _ in range(self.trickle):
                if self._stopped.wait(self.pause):
                    return
                conn.sendall(b"x")


class EarlyAnswer(_Peer):
    """Answers ``201 Created`` (and ``Connection: close``) as soon as it has a request head,
    without reading the body, then holds the connection open without reading: libcurl
    takes the answer as the end of the exchange and stops sending."""

    def __init__(self, status: int = 201, *, delay: float = 0.0) -> None:
        self.answer = b"HTTP/1.1 %d Early\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % (
            status
        )
        self.delay = delay  # before answering: the client's kernel takes what it can meanwhile
        super().__init__(receive_buffer=64 * 1024)

    def serve(self, conn: socket.socket) -> None:
        if read_request_head(conn, b"") is not None:
            time.sleep(self.delay)
            conn.sendall(self.answer)
            self._stopped.wait()


class Relay(_Peer):
    """Forwards every connection to ``target`` (another host's port), the requests at
    ``rate`` bytes a second at most (a slow link), until ``cut()``, which resets every
    relayed connection and refuses new ones: a host going down mid-run.  With
    ``cut_after``, it cuts itself once that many request bytes have gone through."""

    def __init__(
        self, target: str, *, rate: int | None = None, cut_after: int | None = None
    ) -> None:
        self.target = target
        self.rate = rate
        self.cut_after = cut_after
        self.relayed = 0
        self.cut_off = threading.Event()
        super().__init__(receive_buffer=64 * 1024 if rate else None)

    def serve(self, conn: socket.socket) -> None:
        if self.cut_off.is_set():  # accepted as it was cut: reset it too
            _reset(conn)
            return
        address, port = self.target.rsplit(":", 1)
        upstream = socket.create_connection((address, int(port)))
        self.connections.append(upstream)
        threading.Thread(target=self._pump, args=(upstream, conn), daemon=True).start()
        self._pump(conn, upstream, requests=True)

    def _pump(self, source: socket.socket, sink: socket.socket, *, requests: bool = False) -> None:
        rate = self.rate if requests else None
        step = max(1, rate // 50) if rate else 65536
        with contextlib.suppress(OSError):
            while data := source.recv(step):
                if requests and self.cut_after is not None:
                    self.relayed += len(data)
                    if self.relayed > self.cut_after:
                        self.cut()
                        return
                sink.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        self.cut_off.set()
        self._listener.close()
        for conn in self.connections:
            _reset(conn)

    def restore(self) -> None:
        """Listen again on the same port after ``cut()``: the host is back."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self.cut_off.clear()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()


def _reset(conn: socket.socket) -> None:
    """Close with a reset (RST), as a host that goes down does to its peers.

    ``shutdown`` first: a thread blocked in ``recv`` on it holds the socket open
    (close() alone neither wakes it nor sends anything)."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        conn.close()


class SyntheticTree(_Peer):
    """A WebDAV host that lists a tree it does not hold: ``directories`` directories of
    ``files`` files each under ``/media/`` (every file ``size`` bytes, one date), answered
    to ``PROPFIND`` ``Depth: 1`` as nginx would.  For scale: a million names without a
    million files on disk; nothing else is served (404)."""

    DATE = "Sun, 01 Nov 2026 10:00:00 GMT"

    def __init__(self, directories: int, files: int, *, size: int = 4096) -> None:
        self.directories = directories
        entry = (
            "<D:response><D:href>/media/{dir}/f{n:06}.bin</D:href><D:propstat><D:prop>"
            f"<D:getcontentlength>{size}</D:getcontentlength>"
            f"<D:getlastmodified>{self.DATE}</D:getlastmodified>"
            "<D:resourcetype/></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
            "</D:response>\n"
        )
        # One directory's listing, with a placeholder for its name: made once, filled per request.
        self._listing = (
            self._head("/media/{dir}/")
            + "".join(entry.replace("{n:06}", f"{n:06}") for n in range(files))
            + "</D:multistatus>\n"
        ).encode()
        top = "".join(
            f"<D:response><D:href>/media/d{d:04}/</D:href><D:propstat><D:prop><D:resourcetype>"
            "<D:collection/></D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status>"
            "</D:propstat></D:response>\n"
            for d in range(directories)
        )
        self._top = (self._head("/media/") + top + "</D:multistatus>\n").encode()
        super().__init__()

    @staticmethod
    def _head(href: str) -> str:
        return (
            '<?xml version="1.0" encoding="utf-8" ?>\n<D:multistatus xmlns:D="DAV:">\n'
            f"<D:response><D:href>{href}</D:href><D:propstat><D:prop><D:resourcetype>"
            "<D:collection/></D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status>"
            "</D:propstat></D:response>\n"
        )

    def serve(self, conn: socket.socket) -> None:
        for path in requests_on(conn):
            conn.sendall(self._answer(path))

    def _answer(self, path: str) -> bytes:
        body = None
        if path == "/media/":
            body = self._top
        elif re.fullmatch(r"/media/d\d{4}/", path) and int(path[8:12]) < self.directories:
            body = self._listing.replace(b"{dir}", path[7:12].encode())
        if body is None:
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        head = b"HTTP/1.1 207 Multi-Status\r\nContent-Type: text/xml; charset=utf-8\r\n"
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


@contextlib.contextmanager
def running(peer: _Peer) -> Iterator[_Peer]:
    try:
        yield peer
    finally:
        peer.close()
