"""A background worker that runs queued jobs in order, for replication off the request path.

One daemon thread per worker, started with the first job, takes every job
queued so far as one batch, so the caller can merge neighbours (the same
upload to each host becomes one fan-out).  Order is kept: a batch finishes
before the next one starts, so a PUT queued before a DELETE of the same
file reaches every host first.

``flush()`` waits for what was queued before the call; at interpreter exit
the queue is flushed (for up to ``EXIT_FLUSH_TIMEOUT`` seconds per worker,
then what is left is logged), so a clean shutdown loses nothing.  The thread
holds its owner weakly and ends after ``IDLE_SECONDS`` without work, so a
storage that is dropped takes its thread with it.  In a child process
after ``fork()`` the worker starts empty: the parent still owns, and runs,
the jobs it had queued.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import types
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["BackgroundWorker"]

logger = logging.getLogger("resto_fast")
Job = TypeVar("Job")

IDLE_SECONDS = 5.0
EXIT_FLUSH_TIMEOUT = 60.0

_workers: weakref.WeakSet[BackgroundWorker[object]] = weakref.WeakSet()


class BackgroundWorker(Generic[Job]):
    """Runs ``process(batch)`` on a thread of its own for each batch of queued jobs.

    ``process`` must not raise: it logs what failed.  Were it to raise anyway,
    the error is logged and the worker goes on with the next batch.  A bound
    method is held weakly: once its object is gone, queued jobs are dropped
    (nothing could run them) and the thread ends.
    """

    def __init__(self, process: Callable[[list[Job]], None], *, name: str) -> None:
        if isinstance(process, types.MethodType):
            self._process: Callable[[], Callable[[list[Job]], None] | None] = weakref.WeakMethod(
                process
            )
        else:
            self._process = lambda: process
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
                self._start_thread()

    def _start_thread(self) -> None:
        """Under the lock: a thread for the queue.  At interpreter exit Python 3.12+ starts
        none; the exit flush then runs the queue itself (``run_here``)."""
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        try:
            thread.start()
        except RuntimeError:
            self._thread = None
        else:
            self._thread = thread

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
        try:
            while (batch := self._next_batch()) is not None:
                self._handle(batch)
        finally:
            # Idle, or ended by something an Exception is not: the next submit starts anew.
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None
                if self._queue:  # queued while this thread was leaving
                    self._start_thread()

    def _handle(self, batch: list[Job]) -> None:
        try:
            self._process_batch(batch)  # a call: no reference to the owner outlives it
        except Exception:
            logger.exception("background replication: a batch of %d jobs failed", len(batch))
        finally:
            with self._lock:
                self._done += len(batch)
                self._changed.notify_all()

    def _process_batch(self, batch: list[Job]) -> None:
        process = self._process()
        if process is not None:
            process(batch)

    def run_here(self) -> None:
        """Run what is queued on the calling thread, when there is no worker thread to."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            batch, self._queue = self._queue, []
        if batch:
            self._handle(batch)

    def _next_batch(self) -> list[Job] | None:
        """Everything queued, once there is something; None after IDLE_SECONDS of nothing."""
        with self._lock:
            while not self._queue:
                if not self._changed.wait(IDLE_SECONDS) and not self._queue:
                    return None
            batch, self._queue = self._queue, []
            return batch


def _reset_in_child() -> None:
    # The parent's lock may have been held by its worker thread at fork(): a new one.
    for worker in list(_workers):
        worker._setup()


def _flush_all() -> None:
    for worker in list(_workers):
        worker.run_here()
        if worker.pending and not worker.flush(EXIT_FLUSH_TIMEOUT):
            logger.error(
                "exiting with %d replication operations not done: re-synchronise the media "
                "servers from the master copy",
                worker.pending,
            )


os.register_at_fork(after_in_child=_reset_in_child)
atexit.register(_flush_all)
