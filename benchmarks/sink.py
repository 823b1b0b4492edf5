"""A discard sink: a minimal HTTP/1.1 PUT receiver that drops the body and answers 201.

It costs the server side almost nothing, so a large upload to it measures the
client alone (nginx writing to tmpfs is the bottleneck otherwise).  One
process per sink, so the sinks do not share a GIL with each other or with the
client.  Not a media server: it keeps nothing.

    python -m benchmarks.sink PORT
"""

from __future__ import annotations

import socket
import sys
import threading

from testbed import read_request_head


def _serve(conn: socket.socket) -> None:
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    pending = b""
    with conn:
        while True:
            request = read_request_head(conn, pending)
            if request is None:
                return
            _, length, pending = request
            received = min(len(pending), length)
            pending = pending[received:]
            while received < length:
                count = conn.recv_into(view, min(len(buffer), length - received))
                if not count:
                    return
                received += count
            conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")


def main(port: int) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main(int(sys.argv[1]))
