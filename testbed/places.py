"""Where the servers run: free loopback ports, scratch space on tmpfs, and what happens when a
server a test needs is not installed."""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from pathlib import Path
from typing import NoReturn

import pytest

# .ci/run sets this: there, a test whose server is not installed fails instead of skipping.
REQUIRE_SERVERS = os.environ.get("RESTO_FAST_REQUIRE_NGINX", "") == "1"


def unavailable(reason: str) -> NoReturn:
    """A server a test needs is not installed: fail where every one must be (CI), else skip."""
    if REQUIRE_SERVERS:
        pytest.fail(reason)
    pytest.skip(reason)


def scratch_dir(prefix: str) -> Path:
    """A temp dir on tmpfs when there is one: nginx writes gigabytes in some tests and
    in the benchmarks, and disk writeback would drown what they measure."""
    usable = os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/dev/shm" if usable else None))


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
