"""nginx media servers on loopback: what the tests assert against and the benchmarks measure.

``Nginx`` runs one nginx master on free loopback ports, one ``server`` block
(one media host, with its own root) per port, WebDAV PUT/DELETE on (and
PROPFIND, through Debian's dav-ext module, when it is installed), and an
access log in JSON that tests read to assert exactly which requests each host
received.  Extra server blocks answer a fixed status (403, 500, 202, 302) to
every request: real nginx refusing, failing or redirecting; one more is a
media host with nginx's stock WebDAV only, which answers PROPFIND with 405.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from testbed.daemon import Daemon
from testbed.places import free_ports

NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx")
# Debian's libnginx-mod-http-dav-ext: PROPFIND and OPTIONS, which nginx's own dav module lacks.
DAV_EXT_MODULE = "ngx_http_dav_ext_module.so"
DAV_EXT_DIRECTORIES = ("/usr/lib/nginx/modules",)


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


class Nginx(Daemon):
    """An nginx master serving ``count`` media hosts on loopback, in ``workdir``.

    ``reuseport`` gives each worker its own accept queue on the media hosts'
    ports, the kernel spreading connections over them: the benchmarks use it,
    since with one shared queue the workers take connections unevenly, and
    which worker serves a client's connections moves its rate by a quarter.
    """

    stop_signal = signal.SIGQUIT  # graceful: workers finish what they are writing

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
        reuseport: bool = False,
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
        self.reuseport = reuseport
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
            for _ in range(50):  # a request still being written (wrk stopped mid-flight) can
                shutil.rmtree(root, ignore_errors=True)  # make a directory under rmtree
                if not root.exists():
                    break
                time.sleep(0.02)
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
            [
                (index, f"127.0.0.1:{port}{' reuseport' if self.reuseport else ''}", media)
                for index, port in enumerate(self.ports)
            ]
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
