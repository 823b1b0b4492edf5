"""An rsync daemon on loopback, for the resync benchmark's reference: what operators run today.

One ``rsync --daemon --no-detach`` on a free loopback port serves ``count``
writable modules (``mod0``, ``mod1``, ...), each a directory of its own in
``workdir`` (on tmpfs, as the nginx roots are), without chroot.  Run as root,
the daemon keeps root's uid and gid for the transfers (by default it would
drop to ``nobody``, who cannot write there), so ``rsync -a`` sets owners as
it does on a real server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from testbed import Daemon, free_port


def find_rsync() -> str | None:
    return shutil.which("rsync")


class RsyncDaemon(Daemon):
    """An rsync daemon serving ``count`` writable modules on 127.0.0.1, in ``workdir``."""

    def __init__(self, workdir: Path, count: int = 3) -> None:
        binary = find_rsync()
        if binary is None:
            raise FileNotFoundError("rsync is not installed (scripts/bench installs it)")
        self.binary = binary
        self.workdir = workdir
        self.count = count
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def module(self, index: int) -> str:
        return f"mod{index}"

    def path(self, index: int) -> Path:
        """The directory module ``index`` writes into."""
        return self.workdir / self.module(index)

    def url(self, index: int) -> str:
        """The destination ``rsync -a SRC/ URL`` fills with SRC's contents."""
        return f"rsync://127.0.0.1:{self.port}/{self.module(index)}/"

    def clear(self) -> None:
        """Empty every module's directory."""
        for index in range(self.count):
            shutil.rmtree(self.path(index), ignore_errors=True)
            self.path(index).mkdir(parents=True)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> RsyncDaemon:
        self.clear()
        for _ in range(5):  # a port picked as free can be taken before the daemon binds it
            self.port = free_port()
            config = self._write_config()
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--daemon",
                    "--no-detach",
                    f"--config={config}",
                    f"--port={self.port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._accepting():
                return self
            self.stop()
        log = self.workdir / "rsyncd.log"
        raise RuntimeError(
            "the rsync daemon did not start:\n"
            + (log.read_text(errors="replace") if log.exists() else "(no log)")
        )

    def _accepting(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return True
            time.sleep(0.02)
        return False

    def _write_config(self) -> Path:
        # Modules inherit the global settings; the daemon's own log keeps syslog out of it.
        owner = "uid = 0\ngid = 0\n" if os.geteuid() == 0 else ""
        modules = "".join(
            f"[{self.module(index)}]\n    path = {self.path(index)}\n"
            for index in range(self.count)
        )
        config = self.workdir / "rsyncd.conf"
        config.write_text(
            f"log file = {self.workdir}/rsyncd.log\n"
            "use chroot = no\n"
            "read only = no\n"
            "list = no\n"
            f"{owner}"
            f"{modules}"
        )
        return config
