"""Just enough HTTP/1.1 for the small peers: request heads read off a socket."""

from __future__ import annotations

import socket
from collections.abc import Iterator


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
