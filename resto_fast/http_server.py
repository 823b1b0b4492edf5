"""An embedded media server: HTTP/1.1 GET, HEAD, PUT, DELETE and PROPFIND, for tests and the demo.

It keeps django-resto's ``TestHttpServer`` API (``files``, ``override_code``,
``readonly``, ``has_file``/``get_file``/``create_file``/``delete_file``,
``run``/``stop``) and is a real server: threaded, keep-alive, Content-Length
and chunked request bodies, and files either in memory or under a directory,
where each upload is written to a temporary file and renamed into place, so
a file is never seen half-written.  ``log`` records ``(method, path, code)``
for each request, with the path percent-decoded.

``PROPFIND`` lists a directory as a WebDAV server does (``Depth`` 0 or 1;
``infinity`` is refused with 403, as nginx does): a directory exists when a
file lies somewhere under it (in memory) or when it is one on disk (under a
directory); the root always does.  Every entry says its ``resourcetype``, and
a file its ``getcontentlength`` and ``getlastmodified``, whatever properties
the request asked for.

It is not meant to face the internet; in production use nginx, lighttpd or
Apache (see the docs).
"""

from __future__ import annotations

import contextlib
import email.utils
import io
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, MutableMapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, unquote, urlsplit

__all__ = ["DirectoryStore", "MemoryStore", "TestHttpServer"]

_COPY_SIZE = 256 * 1024
_TEMPORARY_PREFIX = ".resto-upload-"  # uploads being written, under a directory


def _clean_name(path: str, *, directory: bool = False) -> str | None:
    """The file name a request path stands for, or None when it must be refused.

    With ``directory``, the directory name: ``""`` for the root, and one
    trailing slash allowed (a collection's URL ends with one).
    """
    try:
        name = unquote(urlsplit(path).path, errors="strict").lstrip("/")
    except UnicodeDecodeError:
        return None
    if directory:
        name = name.removesuffix("/")
        if not name:
            return ""
    segments = name.split("/")
    if not name or "\x00" in name or any(s in ("", ".", "..") for s in segments):
        return None
    return name


class MemoryStore(MutableMapping[str, bytes]):
    """Files kept in a dict, with their modification times."""

    def __init__(self) -> None:
        self._files: dict[str, bytes] = {}
        self._times: dict[str, float] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> bytes:
        return self._files[name]

    def __setitem__(self, name: str, content: bytes) -> None:
        with self._lock:
            self._files[name] = bytes(content)
            self._times[name] = time.time()

    def __delitem__(self, name: str) -> None:
        with self._lock:
            del self._files[name]
            del self._times[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._files))

    def __len__(self) -> int:
        return len(self._files)

    def modified(self, name: str) -> float:
        return self._times[name]

    def size(self, name: str) -> int:
        return len(self._files[name])

    def open_read(self, name: str) -> IO[bytes]:
        return io.BytesIO(self._files[name])

    def receive(self, name: str, chunks: Iterator[bytes]) -> None:
        self[name] = b"".join(chunks)

    def listdir(self, directory: str) -> tuple[list[str], list[str]] | None:
        """Directories and files directly inside ``directory`` (``""``: the root), sorted;
        None when no file lies under it, since a dict keeps no empty directories."""
        prefix = f"{directory}/" if directory else ""
        directories: set[str] = set()
        files: set[str] = set()
        for name in self:
            if name.startswith(prefix):
                head, slash, _ = name[len(prefix) :].partition("/")
                (directories if slash else files).add(head)
        if directory and not (directories or files):
            return None
        return sorted(directories), sorted(files)


class DirectoryStore(MutableMapping[str, bytes]):
    """Files kept under a directory; each write lands atomically (temporary file, rename)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        return self.root / name

    def __getitem__(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(name) from None

    def __setitem__(self, name: str, content: bytes) -> None:
        self.receive(name, iter([content]))

    def __delitem__(self, name: str) -> None:
        try:
            self._path(name).unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith(_TEMPORARY_PREFIX):
                yield path.relative_to(self.root).as_posix()

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._path(name).is_file()

    def modified(self, name: str) -> float:
        return self._stat(name).st_mtime

    def size(self, name: str) -> int:
        return self._stat(name).st_size

    def _stat(self, name: str) -> os.stat_result:
        path = self._path(name)
        if not path.is_file():
            raise KeyError(name)
        return path.stat()

    def open_read(self, name: str) -> IO[bytes]:
        try:
            return self._path(name).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(name) from None

    def receive(self, name: str, chunks: Iterator[bytes]) -> None:
        target = self._path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=_TEMPORARY_PREFIX)
        try:
            with os.fdopen(fd, "wb") as file:
                for chunk in chunks:
                    file.write(chunk)
            os.replace(temporary, target)
        except BaseException:
            os.unlink(temporary)
            raise

    def listdir(self, directory: str) -> tuple[list[str], list[str]] | None:
        """Directories and files directly inside ``directory`` (``""``: the root), sorted;
        None when it is not a directory on disk.  Uploads still being written are left out."""
        try:
            entries = list(os.scandir(self._path(directory) if directory else self.root))
        except (FileNotFoundError, NotADirectoryError):
            return None
        directories = sorted(entry.name for entry in entries if entry.is_dir())
        files = sorted(
            entry.name
            for entry in entries
            if entry.is_file() and not entry.name.startswith(_TEMPORARY_PREFIX)
        )
        return directories, files


Store = MemoryStore | DirectoryStore


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TestHttpServer
    timeout = 30  # idle keep-alive connections are dropped after this
    # Headers and body go out in two writes: without this, Nagle holds the body back
    # until the client's delayed ACK, 40 ms on Linux, on every GET.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Requests go to ``server.log``, not to stderr."""

    # -- plumbing ----------------------------------------------------------------

    def _reply(self, code: int, *, length: int = 0, headers: dict[str, str] | None = None) -> None:
        code = self.server.override_code or code
        self.server.log.append(
            (self.command, unquote(urlsplit(self.path).path, errors="replace"), code)
        )
        self.send_response(code)
        self.send_header("Content-Length", str(length))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()

    def _body(self) -> Iterator[bytes]:
        """The request body, as it arrives: Content-Length or chunked."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                yield from self._exactly(size)
                self.rfile.readline(1024)
        else:
            yield from self._exactly(int(self.headers.get("Content-Length", "0")))

    def _exactly(self, remaining: int) -> Iterator[bytes]:
        while remaining:
            chunk = self.rfile.read(min(remaining, _COPY_SIZE))
            if not chunk:
                raise ConnectionError("the client closed the connection mid-body")
            remaining -= len(chunk)
            yield chunk

    def _discard_body(self) -> None:
        for _ in self._body():
            pass

    def _name_or_refuse(self, *, directory: bool = False) -> str | None:
        name = _clean_name(self.path, directory=directory)
        if name is None:
            self._discard_body()
            self._reply(400)
        return name

    # -- methods -----------------------------------------------------------------

    def do_GET(self) -> None:
        self._read(send_body=True)

    def do_HEAD(self) -> None:
        self._read(send_body=False)

    def _read(self, *, send_body: bool) -> None:
        name = self._name_or_refuse()
        if name is None:
            return
        store = self.server.files
        if self.server.override_code or name not in store:
            self._reply(404)
            return
        try:
            size, modified = store.size(name), store.modified(name)
            file = store.open_read(name)
        except KeyError:
            self._reply(404)
            return
        with file:
            headers = {
                "Last-Modified": email.utils.formatdate(modified, usegmt=True),
                "Content-Type": "application/octet-stream",
            }
            self._reply(200, length=size, headers=headers)
            if send_body:
                while chunk := file.read(_COPY_SIZE):
                    self.wfile.write(chunk)

    def do_PUT(self) -> None:
        name = self._name_or_refuse()
        if name is None:
            return
        if self.server.override_code or self.server.readonly:
            self._discard_body()
            self._reply(403)
            return
        if (
            "Content-Length" not in self.headers
            and "chunked" not in self.headers.get("Transfer-Encoding", "").lower()
        ):
            self.close_connection = True
            self._reply(411)
            return
        store = self.server.files
        existed = name in store
        store.receive(name, self._body())
        self._reply(204 if existed else 201)

    def do_DELETE(self) -> None:
        name = self._name_or_refuse()
        if name is None:
            return
        if self.server.override_code or self.server.readonly:
            self._reply(403)
            return
        try:
            del self.server.files[name]
        except KeyError:
            self._reply(404)
        else:
            self._reply(204)

    def do_PROPFIND(self) -> None:
        directory = self._name_or_refuse(directory=True)
        if directory is None:
            return
        self._discard_body()  # which properties were asked for does not change the answer
        depth = self.headers.get("Depth", "infinity")  # RFC 4918: none given means infinity
        if depth not in ("0", "1"):
            self._reply(403)
            return
        listing = None if self.server.override_code else self.server.files.listdir(directory)
        if listing is None:
            self._reply(404)
            return
        directories, names = listing if depth == "1" else ([], [])
        store = self.server.files
        files = []
        prefix = f"{directory}/" if directory else ""
        for name in names:
            try:
                files.append((name, store.size(prefix + name), store.modified(prefix + name)))
            except KeyError:  # deleted since it was listed
                continue
        body = _multistatus(directory, directories, files)
        headers = {"Content-Type": 'application/xml; charset="utf-8"'}
        self._reply(207, length=len(body), headers=headers)
        self.wfile.write(body)


def _multistatus(
    directory: str, directories: list[str], files: list[tuple[str, int, float]]
) -> bytes:
    """A WebDAV multistatus body: the directory, then each member, with its resourcetype,
    and for a file its size and date (what a resync compares).

    Hrefs are percent-encoded absolute paths, which leaves nothing to escape for XML.
    """
    base = f"/{directory}/" if directory else "/"
    collection = "<D:resourcetype><D:collection/></D:resourcetype>"

    def response(href: str, props: str) -> str:
        return (
            f"<D:response><D:href>{quote(href)}</D:href><D:propstat><D:prop>{props}</D:prop>"
            "<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>\n"
        )

    responses = [response(base, collection)]
    responses += [response(f"{base}{name}/", collection) for name in directories]
    responses += [
        response(
            f"{base}{name}",
            f"<D:resourcetype/><D:getcontentlength>{size}</D:getcontentlength>"
            f"<D:getlastmodified>{email.utils.formatdate(modified, usegmt=True)}"
            "</D:getlastmodified>",
        )
        for name, size, modified in files
    ]
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<D:multistatus xmlns:D="DAV:">\n{"".join(responses)}</D:multistatus>\n'
    ).encode()


class TestHttpServer(ThreadingHTTPServer):
    """An HTTP media server for tests: in memory, or under ``root`` when given.

    ``TestHttpServer("127.0.0.1", 0)`` picks a free port (see ``port`` and
    ``host``).  ``run()`` serves until ``stop()`` is called from another
    thread; ``start()`` does that in a background thread and returns the
    server, which is also a context manager.

    ``override_code``, when set, is the status of every answer and nothing is
    stored or deleted (a failing server); ``readonly`` refuses PUT and DELETE
    with 403.
    """

    __test__ = False  # not a pytest test class, despite its name
    daemon_threads = True
    block_on_close = False
    # socketserver listens with a backlog of 5: a replicator opening more connections at
    # once (a sync lists and uploads on several) lost SYNs and waited the kernel's
    # 1-second retransmit.  The kernel caps this at net.core.somaxconn.
    request_queue_size = 1024

    def __init__(
        self,
        host: str = "localhost",
        port: int = 4080,
        *,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        self.files: Store = MemoryStore() if root is None else DirectoryStore(root)
        self.log: list[tuple[str, str, int]] = []
        self.override_code: int | None = None
        self.readonly = False
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._serving = threading.Event()
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _Handler)

    # -- django-resto's API --------------------------------------------------------

    def has_file(self, name: str) -> bool:
        return name in self.files

    def get_file(self, name: str) -> bytes:
        return self.files[name]

    def create_file(self, name: str, content: bytes) -> None:
        self.files[name] = content

    def delete_file(self, name: str) -> None:
        del self.files[name]

    def run(self) -> None:
        """Serve requests until ``stop()`` is called."""
        self._serving.set()
        try:
            self.serve_forever(poll_interval=0.1)
        finally:
            self._serving.clear()

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection."""
        if self._serving.is_set():
            self.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._connections_lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):  # already closed by the client
                    conn.shutdown(socket.SHUT_RDWR)
            self._connections.clear()
        self.server_close()

    # -- conveniences ----------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def host(self) -> str:
        """``address:port``, as it goes in ``RESTO_MEDIA_HOSTS``."""
        address = str(self.server_address[0])
        return f"[{address}]:{self.port}" if ":" in address else f"{address}:{self.port}"

    def start(self) -> TestHttpServer:
        """Serve from a background thread; returns at once, ready for requests."""
        self._thread = threading.Thread(
            target=self.run, name=f"TestHttpServer {self.host}", daemon=True
        )
        self._thread.start()
        self._serving.wait(5)
        return self

    def __enter__(self) -> TestHttpServer:
        return self.start() if not self._serving.is_set() else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-request (its upload is discarded, never stored half)
        is no error of the server's: only what is not a broken connection is printed."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    # -- connection tracking (so stop() can close keep-alive connections) --------------

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)
