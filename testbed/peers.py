"""Hosts that misbehave: small TCP peers, since no well-behaved server produces them on demand.

One never answers (a black hole), one stops reading the body (stalls), one
resets the connection half-way through an upload, one reads slowly (to make
a fast host wait for it), one gives every request the same answer (a success
status with a wrong body), one answers a PUT with success before it has read
the body; a relay that can cut its connections; a WebDAV host listing a
synthetic tree of a million names; and an embedded media server that fails
now and then.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

from resto_fast.http_server import TestHttpServer
from testbed.wire import read_request_head, requests_on


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


class Peer:
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


class BlackHole(Peer):
    """Connections are completed by the kernel's backlog and never answered."""

    def __init__(self) -> None:
        super().__init__(accept=False)


class Staller(Peer):
    """Accepts, reads the request head and a little, then stops reading for ever."""

    def __init__(self) -> None:
        super().__init__(receive_buffer=64 * 1024)

    def serve(self, conn: socket.socket) -> None:
        conn.recv(4096)
        self._stopped.wait()


class Resetter(Peer):
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


class SlowSink(Peer):
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


class FixedAnswer(Peer):
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


class Answering(Peer):
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


class EarlyAnswer(Peer):
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


class Relay(Peer):
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


class SyntheticTree(Peer):
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
def running(peer: Peer) -> Iterator[Peer]:
    try:
        yield peer
    finally:
        peer.close()
