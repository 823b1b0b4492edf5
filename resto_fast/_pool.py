"""Engines lent to threads one at a time, and forgotten across a fork.

libcurl handles must never be used by two threads at once, and a child
process must never use (or even clean up) handles made by its parent: their
sockets, and TLS sessions, are shared with the parent until one side closes
them.  So an engine is borrowed by one thread at a time and given back when
it is done: the replicator's lone-thread engine (kept by the replicator,
used by whichever thread replicates alone; see ``Replicator._run``), a
batch's, or one for a call made from inside another; threads replicating at
the same moment share the loop of ``_shared`` instead.

After ``fork()``, the child drops every engine inherited from its parent
without closing it (closing would shut the parent's connections, and send
TLS close-notify on its sessions) and starts afresh.  The child learns of the
fork from an ``os.register_at_fork`` hook, which runs for ``os.fork``,
``multiprocessing`` and preforking servers (gunicorn, and uWSGI through
``PyOS_AfterFork_Child``); a fork from C code that skips that call is not seen.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable

from ._engine import Engine
from ._exceptions import ClosedError

__all__ = ["EnginePool", "generation"]

# Engines a forked child inherited: kept referenced so they are never finalized in the child.
_INHERITED: list[Engine] = []
_POOLS: weakref.WeakSet[EnginePool] = weakref.WeakSet()
# Bumped in every child after fork(): comparing it costs no system call, unlike getpid().
_generation = 0


class EnginePool:
    """Idle engines of one replicator."""

    def __init__(self, factory: Callable[[], Engine]) -> None:
        self._factory = factory
        self._idle: list[Engine] = []
        self._lock = threading.Lock()
        self._generation = _generation
        self.closed = False  # read without the lock by the replicator's lone thread
        _POOLS.add(self)

    def acquire(self) -> Engine:
        """Borrow an engine for one operation (or one batch) in this thread."""
        if self.closed:
            raise ClosedError("the replicator is closed: make a new one")
        if self._generation != _generation:
            self._forget_inherited()
        with self._lock:
            if self._idle:
                return self._idle.pop()
        engine = self._factory()
        engine.generation = _generation
        return engine

    def release(self, engine: Engine) -> None:
        """Give an engine back; ``Engine.run`` leaves it clean even when it raised."""
        if engine.generation != _generation:  # borrowed before a fork, given back after
            _INHERITED.append(engine)
            return
        with self._lock:
            if not self.closed:
                self._idle.append(engine)
                return
        engine.close()

    @property
    def idle(self) -> int:
        return len(self._idle)

    def close(self) -> None:
        """Close the idle engines; engines still lent out close when given back."""
        with self._lock:
            self.closed = True
            idle, self._idle = self._idle, []
        if self._generation == _generation:
            for engine in idle:
                engine.close()
        else:
            _INHERITED.extend(idle)

    def _forget_inherited(self) -> None:
        _INHERITED.extend(self._idle)
        self._idle = []
        self._lock = threading.Lock()
        self._generation = _generation


def generation() -> int:
    """How many forks this process is from the one that imported resto_fast: what changes
    tells a child that what it inherited is its parent's."""
    return _generation


def _after_fork_in_child() -> None:
    global _generation
    _generation += 1
    for pool in list(_POOLS):
        pool._forget_inherited()


os.register_at_fork(after_in_child=_after_fork_in_child)
