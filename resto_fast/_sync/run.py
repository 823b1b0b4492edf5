"""Running a resync: the source walk feeding one worker here, or several worker processes.

The source is walked in a thread of this process, one directory at a time,
into a bounded queue.  With one process the worker runs here; with more,
this process is one of the workers, at work at once, and the others are
processes (started by ``forkserver``, else ``spawn``: never a bare fork of
this threaded process) that join as they start; each takes the next
directory from a shared queue, so the load balances itself, and sends back
its counts, the lines it has to say and its log records, which this process
prints in order through one display.  Each worker has its own Replicator,
CurlMulti and connections.

Ctrl-C (or ``stop``) ends it cleanly: the walk stops, every worker aborts
its transfers in flight (no host keeps a truncated file: servers discard an
upload that did not finish) and reports what it had done.  A second run
carries on, since every decision is made from the state it finds.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from .._exceptions import ConfigurationError
from .._replicator import Replicator
from .options import SyncOptions
from .report import SyncReport, Tally
from .tree import Directory, SourceHostError, source_is_empty, walk_host, walk_local
from .worker import END, Worker

__all__ = ["Interrupted", "check_source", "run_sync"]

logger = logging.getLogger("resto_fast")

Say = Callable[[str], None]
_QUEUE_WAIT = 0.2  # seconds between looks at the stop flag while waiting on a queue
_TALLY_EVERY = 0.25  # seconds between a worker process's progress reports
_STOP_GRACE = 15.0  # seconds workers get to abort and report after a stop


class Interrupted(Exception):
    """The run was asked to stop (Ctrl-C, SIGTERM, or its ``stop`` event)."""


def check_source(options: SyncOptions, replicator: Replicator | None = None) -> None:
    """Refuse to start without a source, and ``--delete`` from an empty one.

    A mistyped path must not make every media server empty.
    """
    if replicator is None:
        with Replicator.from_config(options.config) as own:
            check_source(options, own)
        return
    where = options.prefix
    if options.source_dir is not None:
        top = os.path.join(options.source_dir, where) if where else options.source_dir
        if not os.path.isdir(top):
            raise ConfigurationError(f"the source directory {top} does not exist")
        if options.delete and source_is_empty(options.source_dir, where):
            raise ConfigurationError(
                f"the source directory {top} is empty: refusing to --delete everything on the "
                "media servers (check the path)"
            )
        return
    assert options.source_host is not None
    empty = True
    try:

        def first(directory: Directory) -> None:
            nonlocal empty
            empty = not (directory.files or directory.subdirs)
            raise _Listed

        walk_host(replicator, options.source_host, where, first, lambda: False)
    except _Listed:
        pass
    except SourceHostError as exc:
        raise ConfigurationError(str(exc)) from None
    if options.delete and empty:
        raise ConfigurationError(
            f"the source host {options.source_host} has nothing under {'/' + where}: refusing "
            "to --delete everything on the other media servers"
        )


class _Listed(Exception):
    """Ends the look at the source host's top directory."""


def _walk(
    options: SyncOptions, emit: Callable[[Directory], None], stopped: Callable[[], bool]
) -> None:
    if options.source_dir is not None:
        walk_local(options.source_dir, options.prefix, emit, stopped)
    else:
        assert options.source_host is not None
        with Replicator.from_config(options.config) as replicator:
            walk_host(replicator, options.source_host, options.prefix, emit, stopped)


def run_sync(
    options: SyncOptions,
    *,
    say: Say,
    note: Say,
    on_tally: Callable[[Tally], None] | None = None,
    stop: threading.Event | None = None,
    checked: bool = False,
) -> SyncReport:
    """Run one sync or verify to the end (or until stopped); the report says what happened.

    ``say`` gets the report's lines (what differs, in a verify or dry run),
    ``note`` the lines about the run (a host given up, a refused name);
    ``on_tally`` the counts so far, a few times a second.  Raises
    :class:`ConfigurationError` before any change when the source is
    missing, or empty with ``--delete`` (unless the caller ``checked`` it
    with :func:`check_source`).
    """
    stop = stop or threading.Event()
    started = time.monotonic()
    with Replicator.from_config(options.config) as replicator:
        if not checked:
            check_source(options, replicator)
        if options.processes == 1:
            tally, interrupted, incomplete = _in_process(
                options, replicator, say, note, on_tally, stop
            )
        else:
            tally, interrupted, incomplete = _in_processes(
                options, replicator, say, note, on_tally, stop
            )
    return SyncReport(options, tally, time.monotonic() - started, interrupted, incomplete)


# -- the source walk, in a thread -------------------------------------------------------------


def _feed(
    directories: Any, stop: Any, meanwhile: Callable[[], None] | None = None
) -> Callable[[bool], Directory | str | None]:
    """A worker's feed from a queue of directories (a thread's or the processes' shared one):
    the next directory, waiting for one when asked to (looking at ``stop``, and doing
    ``meanwhile``, between looks), else None when none is there."""

    def feed(block: bool) -> Directory | str | None:
        while True:
            if stop.is_set():
                raise Interrupted
            if meanwhile is not None:
                meanwhile()
            try:
                item = directories.get(timeout=_QUEUE_WAIT) if block else directories.get_nowait()
            except queue.Empty:
                if block:
                    continue
                return None
            return item  # type: ignore[no-any-return]

    return feed


class _Walker:
    """Walks the source in a thread into ``directories``, then puts ``END`` ``ends`` times."""

    def __init__(self, options: SyncOptions, directories: Any, ends: int, stop: threading.Event):
        self.error: BaseException | None = None
        self._options = options
        self._directories = directories
        self._ends = ends
        self._stop = stop
        self._thread = threading.Thread(target=self._run, name="resto-sync-walk", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._directories.put(item, timeout=_QUEUE_WAIT)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            _walk(self._options, self._put, self._stop.is_set)
        except BaseException as exc:  # told to the workers' side through the END marker
            self.error = exc
        for _ in range(self._ends):
            self._put(END)

    def join(self) -> None:
        self._thread.join(timeout=_STOP_GRACE)


def _in_process(
    options: SyncOptions,
    replicator: Replicator,
    say: Say,
    note: Say,
    on_tally: Callable[[Tally], None] | None,
    stop: threading.Event,
) -> tuple[Tally, bool, str]:
    directories: queue.Queue[object] = queue.Queue(maxsize=16)
    walker = _Walker(options, directories, 1, stop)

    feed = _feed(directories, stop)

    def tick(tally: Tally) -> None:
        if stop.is_set():
            raise Interrupted
        if on_tally is not None:
            on_tally(tally)

    worker = Worker(options, replicator, feed, say=say, note=note, tick=tick)
    walker.start()
    interrupted = False
    try:
        worker.run()
    except (Interrupted, KeyboardInterrupt):
        interrupted = True
    finally:
        stop.set()  # ends the walk, if it still runs
        walker.join()
    incomplete = f"the source walk failed: {walker.error}" if walker.error else ""
    return worker.tally, interrupted, incomplete


# -- worker processes -----------------------------------------------------------------------


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload([__name__])
    return context


def _in_processes(
    options: SyncOptions,
    replicator: Replicator,
    say: Say,
    note: Say,
    on_tally: Callable[[Tally], None] | None,
    stop: threading.Event,
) -> tuple[Tally, bool, str]:
    """This process is worker 0, at work at once; the others join as they start."""
    context = _context()
    count = options.processes
    directories = context.Queue(maxsize=4 * count)
    events = context.Queue()
    stopping = context.Event()
    children = {
        index: context.Process(
            target=_worker_process,
            args=(options, index, directories, events, stopping),
            name=f"resto-sync-{index}",
            daemon=True,
        )
        for index in range(1, count)
    }
    for process in children.values():
        process.start()
    parent = _Parent(events, children, say, note, on_tally)
    walker = _Walker(options, directories, count, stop)
    walker.start()

    feed = _feed(directories, stop, meanwhile=parent.drain)

    def tick(tally: Tally) -> None:
        if stop.is_set():
            raise Interrupted
        parent.tallies[0] = tally
        parent.drain()

    local = Worker(options, replicator, feed, say=say, note=note, tick=tick)
    interrupted = False
    try:
        try:
            local.run()
        except (Interrupted, KeyboardInterrupt):
            interrupted = True
        parent.finished[0] = "interrupted" if interrupted else ""
        parent.tallies[0] = local.tally
        if interrupted:
            stop.set()
            stopping.set()
        interrupted = parent.wait(stop, stopping) or interrupted
    finally:
        stop.set()
        stopping.set()
        parent.end(walker)
        directories.close()
        directories.cancel_join_thread()
    problems = [why for why in parent.finished.values() if why and why != "interrupted"]
    if walker.error is not None:
        problems.append(f"the source walk failed: {walker.error}")
    return parent.total(), interrupted, "; ".join(problems)


class _Parent:
    """The parent's side of the worker processes: their counts, lines, records and ends."""

    def __init__(
        self,
        events: Any,
        children: dict[int, Any],
        say: Say,
        note: Say,
        on_tally: Callable[[Tally], None] | None,
    ) -> None:
        self.events = events
        self.children = children
        self.say = say
        self.note = note
        self.on_tally = on_tally
        self.tallies: dict[int, Tally] = {}
        self.finished: dict[int, str] = {}

    def total(self) -> Tally:
        total = Tally()
        for tally in self.tallies.values():
            total.add(tally)
        return total

    def drain(self, wait: float = 0.0) -> None:
        """Handle what the workers sent: everything waiting (or the first within ``wait``)."""
        counted = False
        while True:
            try:
                event = self.events.get(timeout=wait) if wait else self.events.get_nowait()
            except queue.Empty:
                break
            wait = 0.0
            kind = event[0]
            if kind in ("tally", "done"):
                self.tallies[event[1]] = event[2]
                counted = True
                if kind == "done":
                    self.finished[event[1]] = event[3]
            elif kind == "say":
                self.say(event[1])
            elif kind == "note":
                self.note(event[1])
            elif kind == "log":
                record: logging.LogRecord = event[1]
                logging.getLogger(record.name).handle(record)
        if self.on_tally is not None and (counted or 0 in self.tallies):
            self.on_tally(self.total())

    def _dead(self) -> None:
        for index, process in self.children.items():
            if index not in self.finished and process.exitcode is not None:
                self.drain(0.05)  # its last words may still be in the pipe
                if index not in self.finished:
                    self.finished[index] = f"worker process {index} died ({process.exitcode})"

    def wait(self, stop: threading.Event, stopping: Any) -> bool:
        """Until every child has finished (or the stop grace has run out); True if stopped."""
        interrupted = False
        deadline: float | None = None
        while len(self.finished) < len(self.children) + 1:
            try:
                if stop.is_set() and deadline is None:
                    raise Interrupted
                self.drain(_QUEUE_WAIT)
                self._dead()
                if deadline is not None and time.monotonic() > deadline:
                    break
            except (Interrupted, KeyboardInterrupt):
                interrupted = True
                stop.set()
                stopping.set()
                deadline = time.monotonic() + _STOP_GRACE
        return interrupted

    def end(self, walker: _Walker) -> None:
        for process in self.children.values():
            process.join(timeout=_STOP_GRACE)
            if process.exitcode is None:
                process.terminate()
                process.join(timeout=5)
        walker.join()
        self.events.close()


class _ToParent(logging.Handler):
    """A worker process's log records, sent to the parent to be printed in order there."""

    def __init__(self, events: Any) -> None:
        super().__init__()
        self._events = events

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg = record.getMessage()
            record.args = None
            record.exc_info = None
            self._events.put(("log", record))
        except Exception:  # a record that cannot travel is not worth a crash
            self.handleError(record)


def _worker_process(
    options: SyncOptions, index: int, directories: Any, events: Any, stopping: Any
) -> None:
    """The body of one worker process: its own Replicator, fed from the shared queue."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides, and says so by `stopping`
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    package_logger = logging.getLogger("resto_fast")
    package_logger.handlers[:] = [_ToParent(events)]
    package_logger.propagate = False
    package_logger.setLevel(logging.INFO)
    last_report = 0.0

    feed = _feed(directories, stopping)

    def tick(tally: Tally) -> None:
        nonlocal last_report
        if stopping.is_set():
            raise Interrupted
        now = time.monotonic()
        if now - last_report >= _TALLY_EVERY:
            last_report = now
            events.put(("tally", index, tally))

    with Replicator.from_config(options.config) as replicator:
        worker = Worker(
            options,
            replicator,
            feed,
            say=lambda line: events.put(("say", line)),
            note=lambda line: events.put(("note", line)),
            tick=tick,
        )
        why = ""
        try:
            worker.run()
        except Interrupted:
            why = "interrupted"
        except Exception as exc:
            why = f"worker process {index} failed: {exc!r}"
        events.put(("done", index, worker.tally, why))
    events.close()
    events.join_thread()
