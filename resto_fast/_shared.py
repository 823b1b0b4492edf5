"""One loop that the threads of a process hand their operations to, when they replicate at once.

A threaded WSGI server (gunicorn's gthread, mod_wsgi) saves files from many
request threads at the same moment.  Each driving its own ``CurlMulti``
costs every save about three times its CPU: the threads wake each other in
short bursts over the GIL, and each keeps connections of its own.  So while
more than one thread is replicating, operations go to a single loop thread,
which runs them all in one ``CurlMulti`` as ``put_many`` runs a batch, and
each request thread waits for its own operation and concludes it itself
(its results, its log lines, its exceptions).  A thread alone runs its
operation inline, on its own engine, as before: a hand-over costs two thread
switches, which only pays when there is company.

The loop thread starts on demand and ends after a few idle seconds; after a
``fork()`` the child starts its own (see ``_pool``).  Where no thread can
start (Python 3.12+ refuses new threads at interpreter exit, when
AsyncStorage flushes its queue) the loop refuses the operation and the
caller runs it inline.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterator

from . import _pool
from ._engine import Engine
from ._exceptions import ClosedError
from ._operation import Operation

__all__ = ["SharedLoop"]

#: Seconds the loop thread waits for work before it ends (a new one starts on demand).
IDLE_SECONDS = 5.0
#: Operations in flight at once in the loop: every waiting thread's, in practice.
_IN_FLIGHT = 256


class _Waiter:
    """One thread's operation, handed over: done when the loop has finished it.

    A lock taken at birth and released by the loop is the cheapest one-shot
    signal between two threads (an Event is a Condition and a lock).
    """

    __slots__ = ("_signal", "error", "op", "refused")

    def __init__(self, op: Operation) -> None:
        self.op = op
        self.error: BaseException | None = None
        self.refused = False  # no loop thread could start: the caller runs it
        self._signal = threading.Lock()
        self._signal.acquire()

    def set(self) -> None:
        self._signal.release()

    def wait(self) -> None:
        self._signal.acquire()


class SharedLoop:
    """The hand-over loop of one replicator: :meth:`run` blocks until ``op`` has finished."""

    def __init__(self, new_engine: Callable[[], Engine]) -> None:
        self._new_engine = new_engine
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._pending: collections.deque[_Waiter] = collections.deque()
        self._waiters: dict[int, _Waiter] = {}  # by id(op): in the loop, not finished yet
        self._thread: threading.Thread | None = None
        self._wake: Callable[[], None] | None = None
        self._generation = _pool.generation()
        self._closed = False

    def run(self, op: Operation) -> bool:
        """Hand ``op`` to the loop and wait until it has finished on every host.

        False, at once, when the loop could take nothing because no thread can
        start now: the caller runs ``op`` itself.
        """
        waiter = _Waiter(op)
        if self._generation != _pool.generation():  # a forked child: a loop of its own
            self._forget_inherited()
        with self._lock:
            if self._closed:
                raise ClosedError("the replicator is closed: make a new one")
            self._pending.append(waiter)
            if self._thread is None:
                self._start()
            else:
                self._arrived.notify()
            wake = self._wake
        if wake is not None:
            wake()  # the loop may be waiting on its sockets
        waiter.wait()
        if waiter.error is not None:
            raise waiter.error
        return not waiter.refused

    def in_loop(self) -> bool:
        """Whether this is the loop thread (a sink that replicates: it must not wait on itself)."""
        return self._thread is threading.current_thread()

    def close(self) -> None:
        """Let the loop end once what it holds has finished; later hand-overs are refused."""
        with self._lock:
            self._closed = True
            self._arrived.notify()
            wake = self._wake
        if wake is not None:
            wake()

    # -- the loop thread ---------------------------------------------------------------

    def _start(self) -> None:
        """Start a loop thread for what is pending (called with the lock held); where none
        can start, hand every pending operation back to its caller."""
        engine = self._new_engine()
        thread = threading.Thread(
            target=self._loop, args=(engine,), name="resto_fast-loop", daemon=True
        )
        try:
            wake = engine.wakeable()
            thread.start()  # the thread waits for the lock before it reads anything
        except RuntimeError:  # "can't create new thread at interpreter shutdown"
            engine.close()
            refused = list(self._pending)
            self._pending.clear()
            for waiter in refused:
                waiter.refused = True
                waiter.set()
            return
        self._thread, self._wake = thread, wake

    def _loop(self, engine: Engine) -> None:
        try:
            engine.run(self._feed(), concurrency=_IN_FLIGHT, on_done=self._finished)
        except BaseException as exc:  # a bug, or the interpreter going down: fail the waiters
            with self._lock:
                waiting = [*self._waiters.values(), *self._pending]
                self._waiters.clear()
                self._pending.clear()
            for waiter in waiting:
                waiter.error = exc
                waiter.set()
        finally:
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None
                    self._wake = None
                if self._thread is None and self._pending and not self._closed:
                    self._start()  # handed over while this loop was ending
            engine.close()

    def _feed(self) -> Iterator[Operation | None]:
        """What the engine runs: every operation handed over, as it arrives.  Blocks while
        nothing is in flight; ends after IDLE_SECONDS without work, or once closed."""
        while True:
            with self._lock:
                if not self._pending and not self._waiters:
                    if self._closed:
                        return
                    self._arrived.wait(IDLE_SECONDS)
                    if not self._pending:
                        # Idle (or closed): end here, in the lock, so no hand-over is lost.
                        self._thread = None
                        self._wake = None
                        return
                arrived = list(self._pending)
                self._pending.clear()
                for waiter in arrived:
                    self._waiters[id(waiter.op)] = waiter
            if not arrived:
                yield None  # operations in flight: one more turn of the loop, then ask again
            for waiter in arrived:
                yield waiter.op

    def _finished(self, op: Operation) -> None:
        with self._lock:
            waiter = self._waiters.pop(id(op))
        waiter.set()

    def _forget_inherited(self) -> None:
        """In a forked child: the parent's loop thread does not exist here, its lock may be
        held for ever, and its engine must not be touched (see ``_pool``)."""
        self._thread = None
        self._wake = None
        self._pending.clear()
        self._waiters.clear()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._generation = _pool.generation()
