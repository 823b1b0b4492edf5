"""A server the testbed runs as a child process: how each is stopped, and its use in ``with``."""

from __future__ import annotations

import signal
import subprocess
from typing import ClassVar, Self


class Daemon:
    """A child-process server: ``start()`` runs it (a subclass's), :meth:`stop` asks it to
    go with ``stop_signal`` and kills it if it has not gone within 10 s."""

    stop_signal: ClassVar[int] = signal.SIGTERM
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(self.stop_signal)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
