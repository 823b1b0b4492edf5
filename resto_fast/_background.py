"""A background worker that runs queued jobs in order, for replication off the request path.

One daemon thread per worker, started with the first job, takes every job
queued so far as one batch, so the caller can merge neighbours (the same
upload to each host becomes one fan-out).  Order is kept: a batch finishes
before the next one starts, so a PUT queued before a DELETE of the same
file reaches every host first.

``flush()`` waits for what was queued before the call; at interpreter exit
the queue is flushed, so a clean shutdown loses nothing.  In a child process
after ``fork()`` the worker starts empty: the parent still owns, and runs,
the jobs it had queued.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["BackgroundWorker"]

logger = logging.getLogger("resto_fast")
Job = TypeVar("Job")

_workers: weakref.WeakSet[BackgroundWorker[object]] = weakref.WeakSet()


class BackgroundWorker(Generic[Job]):
    """Runs ``process(batch)`` on a thread of its own for each batch of queued jobs.

    ``process`` must not raise: it logs what failed.  Were it to raise anyway,
    the error is logged and the worker goes on with the next batch.
    """

    def __init__(self, process: Callable[[list[Job]], None], *, name: str) -> None:
        self._process = process
        self._name = name
        self._setup()
        _workers.add(self)  # type: ignore[arg-type]

    def _setup(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: list[Job] = []
        self._queued = 0  # jobs ever queued
        self._done = 0  # jobs ever finished
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> int:
        """Jobs queued or running, not finished yet."""
        with self._lock:
            return self._queued - self._done

    def submit(self, job: Job) -> None:
        self.submit_all([job])

    def submit_all(self, jobs: list[Job]) -> None:
        """Queue jobs at once: the worker takes them in one batch, or later ones with them."""
        with self._lock:
            self._queue.extend(jobs)
            self._queued += len(jobs)
            self._changed.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every job queued before this call has finished; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._queued
            while self._done < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    self._changed.wait()
                batch, self._queue = self._queue, []
            try:
                self._process(batch)
            except Exception:
                logger.exception("background replication: a batch of %d jobs failed", len(batch))
            finally:
                with self._lock:
                    self._done += len(batch)
                    self._changed.notify_all()


def _reset_in_child() -> None:
    # The parent's lock may have been held by its worker thread at fork(): a new one.
    for worker in list(_workers):
        worker._setup()


def _flush_all() -> None:
    for worker in list(_workers):
        if worker.pending:
            worker.flush()


os.register_at_fork(after_in_child=_reset_in_child)
atexit.register(_flush_all)
