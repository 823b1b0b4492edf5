"""A redis-server for the queue tests: rq and Celery's broker."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

from testbed.daemon import Daemon
from testbed.places import free_port


def find_redis() -> str | None:
    return shutil.which("redis-server")


class RedisServer(Daemon):
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
