"""Pure-Python twin of ``_multi.pyx``: the multi loop's hot path.

It holds what runs per chunk, per header line, per transfer and per wake-up:
the chunk window that feeds every host's upload, the answer watch, and the
:class:`Loop` that starts transfers, waits on libcurl's sockets and turns
transfers that ended well into results.

**The chunk window.**  A file is read once, a chunk at a time, into a ring of at most ``max_chunks``
buffers.  Each host (a *reader*) has its own position; its libcurl
READFUNCTION returns a memoryview slice of the chunk under that position.  A
reader that reaches the newest chunk while the ring is full (the slowest
reader still needs the oldest chunk) gets ``READFUNC_PAUSE``; the engine asks
:meth:`ChunkWindow.resumable` after each turn of its loop and unpauses those
that can move again.  Memory is therefore ``max_chunks * chunk_size`` at most,
whatever the file size and the number of hosts.

**The answer watch** (:class:`AnswerWatch`), the header callback of a PUT
whose body can outrun TCP's first flight (see ``_kinds.FIRST_FLIGHT``), marks
how much of the body the server had not acknowledged when its answer began
(see ``_sockets``).

**The loop** (:class:`Loop`) is the mechanics of ``_engine``: the engine
keeps the policy (what runs when, stalls, aborts) and every rare path (a
failure, an unexpected status, a host the breaker skips), which it is handed
back through two callbacks.

Both implementations keep exactly this interface and behaviour; the tests run
on both.  This module must stay importable without a compiler.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pycurl

from ._breaker import BREAKERS
from ._exceptions import RestoError
from ._kinds import kind_of
from ._results import HostResult, Outcome
from ._sockets import Pair, unacknowledged

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._handles import Handles
    from ._kinds import Kind
    from ._operation import Sink
    from ._sockets import SocketIndex

__all__ = ["AnswerWatch", "ChunkWindow", "Loop", "Operation", "Reader", "StatusGate", "Transfer"]

READFUNC_PAUSE: int = pycurl.READFUNC_PAUSE
READFUNC_ABORT: int = pycurl.READFUNC_ABORT
SEEKFUNC_OK = 0
SEEKFUNC_CANTSEEK: int = pycurl.SEEKFUNC_CANTSEEK
PREREQFUNC_OK: int = pycurl.PREREQFUNC_OK
_EOF = b""


class Reader:
    """One host's view of the window: pycurl's READFUNCTION and SEEKFUNCTION."""

    __slots__ = ("_index", "_window")

    def __init__(self, window: ChunkWindow, index: int) -> None:
        self._window = window
        self._index = index

    def __call__(self, size: int) -> memoryview | bytes | int:
        return self._window.read(self._index, size)

    def seek(self, offset: int, origin: int) -> int:
        return self._window.seek(self._index, offset, origin)


class ChunkWindow:
    """A sliding window of chunks of one source, shared by ``readers`` hosts."""

    def __init__(
        self,
        size: int,
        readinto: Callable[[memoryview], int | None] | None,
        *,
        readers: int,
        chunk_size: int,
        max_chunks: int,
    ) -> None:
        if size < 0 or readers < 0 or chunk_size < 1 or max_chunks < 1:
            raise ValueError("size and readers must be >= 0, chunk_size and max_chunks >= 1")
        self._size = size
        self._readinto = readinto
        self._chunk = chunk_size
        self._max_chunks = max_chunks
        self._views: list[memoryview | None] = [None] * max_chunks
        self._head = 0  # index of the oldest chunk still held
        self._tail = 0  # index of the next chunk to read from the source
        self._positions = [0] * readers
        self._paused = [False] * readers
        self._dropped = [False] * readers
        self._npaused = 0
        self._error: BaseException | None = None
        self._bytes_read = 0
        self._allocated = 0

    @classmethod
    def of_buffer(cls, data: bytes | bytearray | memoryview, *, readers: int) -> ChunkWindow:
        """A window over bytes already in memory: no copy, no reading, never pauses."""
        view = memoryview(data).cast("B")
        window = cls(
            view.nbytes, None, readers=readers, chunk_size=max(view.nbytes, 1), max_chunks=1
        )
        if view.nbytes:
            window._views[0] = view
            window._tail = 1
            window._bytes_read = view.nbytes
        return window

    # -- what the engine and the tests read --------------------------------------

    @property
    def size(self) -> int:
        return self._size

    @property
    def error(self) -> BaseException | None:
        """Why reading the source failed, if it did; every reader then aborts."""
        return self._error

    @property
    def paused_count(self) -> int:
        return self._npaused

    @property
    def bytes_read(self) -> int:
        """Bytes read from the source so far (each byte once, whatever the readers)."""
        return self._bytes_read

    @property
    def memory(self) -> int:
        """Bytes of chunk buffers this window allocated (its memory bound in action)."""
        return self._allocated

    def position(self, index: int) -> int:
        self._check(index)
        return self._positions[index]

    def paused(self, index: int) -> bool:
        """Whether reader ``index`` is paused, waiting for the window to move."""
        self._check(index)
        return self._paused[index]

    def reader(self, index: int) -> Reader:
        self._check(index)
        return Reader(self, index)

    # -- the READFUNCTION path -------------------------------------------------

    def read(self, index: int, size: int) -> memoryview | bytes | int:
        """Up to ``size`` bytes at reader ``index``'s position, ``b""`` at the end, or a code."""
        self._check(index)
        if self._error is not None or self._dropped[index]:
            return READFUNC_ABORT
        position = self._positions[index]
        if position >= self._size:
            return _EOF
        chunk = self._chunk
        k = position // chunk
        if k >= self._tail:
            if self._tail - self._head >= self._max_chunks:
                self._advance()
                if self._tail - self._head >= self._max_chunks:
                    if not self._paused[index]:
                        self._paused[index] = True
                        self._npaused += 1
                    return READFUNC_PAUSE
            if not self._fill():
                return READFUNC_ABORT
        start = position - k * chunk
        end = min(start + size, self._chunk_length(k))
        view = self._views[k % self._max_chunks]
        assert view is not None
        self._positions[index] = position + end - start
        return view[start:end]

    def seek(self, index: int, offset: int, origin: int) -> int:
        """SEEKFUNCTION: libcurl rewinds to retry on a fresh connection.

        Possible while the target offset is still in the window; otherwise
        libcurl reports that it cannot rewind and the host fails cleanly.
        """
        self._check(index)
        if origin != 0 or self._dropped[index]:
            return SEEKFUNC_CANTSEEK
        if not self._head * self._chunk <= offset <= min(self._tail * self._chunk, self._size):
            return SEEKFUNC_CANTSEEK
        self._positions[index] = offset
        return SEEKFUNC_OK

    # -- the loop's side -------------------------------------------------------

    def resumable(self) -> list[int]:
        """Readers paused earlier that can move now; they are no longer marked paused.

        A paused reader can move when the window has room for a new chunk, or
        when other readers have already read past it the chunk it waits for
        (it paused when that chunk was not read yet).
        """
        if not self._npaused:
            return []
        if self._error is None:
            self._advance()
            room = self._tail - self._head < self._max_chunks
        else:
            room = True  # every reader must come back, to abort
        filled = self._tail * self._chunk
        ready = [
            i
            for i, paused in enumerate(self._paused)
            if paused and (room or self._positions[i] < filled)
        ]
        for i in ready:
            self._paused[i] = False
        self._npaused -= len(ready)
        return ready

    def drop(self, index: int) -> None:
        """Reader ``index`` is gone (its host failed or finished): stop holding chunks for it."""
        self._check(index)
        if self._paused[index]:
            self._paused[index] = False
            self._npaused -= 1
        self._dropped[index] = True
        self._positions[index] = self._size

    def close(self) -> None:
        """Release the chunk buffers; every later read aborts."""
        self._views = [None] * self._max_chunks
        for index in range(len(self._dropped)):
            self._dropped[index] = True
        self._readinto = None

    # -- internals -------------------------------------------------------------

    def _check(self, index: int) -> None:
        # As the compiled window does: a negative index is no reader (not one from the end).
        if not 0 <= index < len(self._positions):
            raise IndexError(f"no reader {index}")

    def _chunk_length(self, k: int) -> int:
        return min(self._chunk, self._size - k * self._chunk)

    def _advance(self) -> None:
        lowest = min(self._positions, default=self._size)
        self._head = min(lowest // self._chunk, self._tail)

    def _fill(self) -> bool:
        """Read chunk ``tail`` from the source into its ring slot; False on failure."""
        k = self._tail
        slot = k % self._max_chunks
        view = self._views[slot]
        if view is None:
            view = memoryview(bytearray(self._chunk))
            self._views[slot] = view
            self._allocated += self._chunk
        want = self._chunk_length(k)
        got = 0
        readinto = self._readinto
        if readinto is None:
            self._error = ValueError("the window has no source to read from")
            return False
        try:
            while got < want:
                count = readinto(view[got:want])
                if not count:
                    break
                got += count
        except Exception as exc:
            self._error = exc
            return False
        self._bytes_read += got
        if got < want:
            self._error = EOFError(
                f"the source ended after {self._bytes_read} bytes, {self._size} were expected"
            )
            return False
        self._tail = k + 1
        return True


class AnswerWatch:
    """For a write handle's current request: how many bytes of it the server had not
    acknowledged when its answer began (its status line), from the kernel's send queue.

    A server that answers after reading the whole body has acknowledged every
    byte with that answer; one that answered early has not.  libcurl's
    pre-request callback names the connection (``prereq``), its header
    callback (``header``, once per header line) marks the answer; ``sockets``
    maps a connection's address pair to its socket (``SocketIndex.pairs``).
    """

    __slots__ = ("_pair", "_sockets", "unacknowledged")

    def __init__(self, sockets: dict[Pair, int]) -> None:
        self._sockets = sockets
        self._pair: Pair | None = None
        self.unacknowledged = 0

    def reset(self) -> None:
        """Before each request of the handle it belongs to."""
        self._pair = None
        self.unacknowledged = 0

    def prereq(self, peer_ip: str, local_ip: str, peer_port: int, local_port: int) -> int:
        self._pair = (local_ip, local_port, peer_ip, peer_port)
        return PREREQFUNC_OK

    def header(self, line: bytes) -> None:
        # The status line of the final answer (a 1xx is not one).  Never raise here.
        if line.startswith(b"HTTP/") and self._pair is not None:
            fields = line.split(None, 2)
            status = fields[1] if len(fields) > 1 else b""
            if len(status) == 3 and status.isdigit() and status[:1] != b"1":
                self.unacknowledged = unacknowledged(self._sockets.get(self._pair, -1))


# -- the loop ------------------------------------------------------------------

_POLL_INTEREST = {
    pycurl.POLL_IN: select.POLLIN,
    pycurl.POLL_OUT: select.POLLOUT,
    pycurl.POLL_INOUT: select.POLLIN | select.POLLOUT,
}
_READABLE = select.POLLIN | select.POLLPRI | select.POLLHUP
_BROKEN = select.POLLERR | select.POLLNVAL
#: libcurl keeps a timer while anything runs; this only bounds a wait it forgot.
LONGEST_WAIT_MS = 1000


def _curl_mask(event: int) -> int:
    """poll() events -> libcurl's CSELECT mask."""
    mask = 0
    if event & _READABLE:
        mask |= pycurl.CSELECT_IN
    if event & select.POLLOUT:
        mask |= pycurl.CSELECT_OUT
    if event & _BROKEN:
        mask |= pycurl.CSELECT_ERR
    return mask


class Operation:
    """One method on one file, fanned out to some hosts; the engine fills ``results``.

    What the loop reads and writes for every host of every request, so it
    lives here, beside the loop (compiled, its fields are C fields).
    """

    __slots__ = (
        "body",
        "kind",
        "method",
        "name",
        "pending",
        "results",
        "sinks",
        "targets",
        "transfers",
        "window",
    )

    def __init__(
        self,
        method: str,
        name: str,
        targets: Sequence[tuple[str, str]],
        *,
        window: ChunkWindow | None = None,
        body: bytes | None = None,
        sinks: Sequence[Sink] | None = None,
        directory: bool = False,
    ) -> None:
        """A PUT carries its content as a ``window`` (streamed) or a ``body`` (given whole);
        a DELETE of a ``directory`` removes all below it (see ``_kinds``)."""
        self.method = method
        self.name = name
        self.targets = targets  # (host, url) pairs
        self.window = window
        self.body = body
        self.kind = kind_of(
            method,
            whole=body is not None,
            directory=directory,
            size=None if body is None else len(body),
        )
        self.sinks = sinks
        self.results: list[HostResult | None] = [None] * len(targets)
        self.transfers: list[Transfer | None] = [None] * len(targets)  # while running
        self.pending = len(targets)

    def host_results(self) -> tuple[HostResult, ...]:
        if self.pending:
            raise RestoError(f"{self.method} {self.name!r} has not finished on every host")
        return tuple(self.results)  # type: ignore[arg-type]  # none is None once pending is 0


class Transfer:
    """One host's request of an operation, while it runs."""

    __slots__ = (
        "gate",
        "handle",
        "host",
        "index",
        "last_progress",
        "mark",
        "op",
        "started",
        "url",
        "watch",
    )

    def __init__(self, op: Operation, index: int, handle: pycurl.Curl, now: float) -> None:
        self.op = op
        self.index = index
        self.host, self.url = op.targets[index]
        self.handle = handle
        self.started = now
        self.last_progress = now  # when its byte counts last moved (see Engine)
        self.mark = 0  # what they were then
        self.gate: StatusGate | None = None  # a read's: where its body goes
        self.watch: AnswerWatch | None = None  # a PUT's: what its answer came before


class StatusGate:
    """Response body writer: passes the body on only after the status line the method
    succeeds with (200 for GET, 207 for PROPFIND), counts what it passed.

    libcurl forbids getinfo() inside callbacks, so the status comes from the
    header callback.  A sink that raises aborts the transfer (returning 0 to
    libcurl) and its exception is kept for the result, not printed.
    """

    __slots__ = ("_sink", "_status", "_wanted", "error", "written")

    def __init__(self, sink: Sink, wanted: int) -> None:
        self._sink = sink
        self._status = 0
        self._wanted = wanted
        self.error: Exception | None = None
        self.written = 0

    def header(self, line: bytes) -> None:
        # A status line, or a header line that only looks like one (libcurl judges the
        # answer itself): never an exception here, a callback's would be printed.
        if line.startswith(b"HTTP/"):
            fields = line.split(None, 2)
            self._status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0

    def write(self, data: bytes) -> int | None:
        if self._status != self._wanted:
            return None
        try:
            self._sink(data)
        except Exception as exc:
            self.error = exc
            return 0
        self.written += len(data)
        return None


#: (transfer, libcurl's code or None for "given up", message): the engine's rare path.
Finish = Callable[[Transfer, "int | None", str], None]
#: (operation, index of the host, why): the engine's result for a host the breaker skips.
Skipped = Callable[[Operation, int, str], None]


class Loop:
    """The per-transfer and per-wake-up work of one engine's ``CurlMulti``.

    :meth:`start` adds an operation's transfers (a host the breaker says is
    down goes to ``skipped``); :meth:`step` waits for libcurl's sockets or
    its timer and lets libcurl act; a transfer that ended with the answer
    its kind expects (and, for a PUT, after its whole body reached the
    server: see :meth:`_settle`) becomes its :class:`HostResult` here, any
    other goes to ``finish``, which makes its result and calls :meth:`end`.
    ``active`` maps each running handle to its transfer; ``done`` holds the
    operations finished on every host since the engine last looked.
    """

    def __init__(
        self,
        multi: pycurl.CurlMulti,
        handles: Handles,
        sockets: SocketIndex,
        finish: Finish,
        skipped: Skipped,
    ) -> None:
        self.multi = multi
        self.active: dict[pycurl.Curl, Transfer] = {}
        self.done: list[Operation] = []
        self._handles = handles
        self._idle: dict[tuple[Kind, str], list[pycurl.Curl]] = {}
        self._watches: dict[pycurl.Curl, AnswerWatch] = {}  # a PUT handle's, made with it
        self._tripped = BREAKERS.tripped
        self._watched = sockets.watched
        self._known = sockets.known
        self._finish = finish
        self._skipped = skipped
        self._poll = select.poll()
        self._wake_fd = -1
        multi.setopt(pycurl.M_SOCKETFUNCTION, self.on_socket)

    def wake_on(self, fd: int) -> None:
        """Also end a wait when ``fd`` (a pipe's read end) is readable; it is drained."""
        self._wake_fd = fd
        self._poll.register(fd, select.POLLIN)

    def start(self, op: Operation) -> None:
        """Add one transfer per host and let libcurl start them at once."""
        now = time.monotonic()
        kind = op.kind
        window = op.window
        body = op.body
        for index, (host, url) in enumerate(op.targets):
            down = BREAKERS.skip(host, now) if self._tripped else None
            if down is not None:
                self._skipped(op, index, down)
                continue
            handle = self._take(host, kind)
            handle.setopt(pycurl.URL, url)
            transfer = Transfer(op, index, handle, now)
            if kind.watch_answer:
                transfer.watch = watch = self._watches[handle]
                watch.reset()
            if body is not None:
                handle.setopt(pycurl.POSTFIELDS, body)  # no copy: pycurl keeps a reference
            elif window is not None:
                reader = window.reader(index)
                handle.setopt(pycurl.INFILESIZE_LARGE, window.size)
                handle.setopt(pycurl.READFUNCTION, reader)
                handle.setopt(pycurl.SEEKFUNCTION, reader.seek)
            elif op.sinks is not None:
                # Only the kind's one status has the answer as its body; others, error pages.
                status = kind.body_status
                assert status is not None, f"{kind.name} has no body to keep"
                transfer.gate = gate = StatusGate(op.sinks[index], status)
                handle.setopt(pycurl.HEADERFUNCTION, gate.header)
                handle.setopt(pycurl.WRITEFUNCTION, gate.write)
            op.transfers[index] = transfer
            self.active[handle] = transfer
            self.multi.add_handle(handle)
        if not op.pending:  # every host skipped: nothing to start
            return
        # Start now rather than one wait later, when the 0 ms timer libcurl just set would fire.
        _, running = self.multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        if running < len(self.active):  # some ended at once (refused, say)
            self.collect()

    def on_socket(self, what: int, fd: int, multi: object, socketp: object) -> None:
        """libcurl's socket callback: what to watch ``fd`` for, or to stop watching it."""
        interest = _POLL_INTEREST.get(what)
        if interest is not None:
            self._poll.register(fd, interest)
            if fd not in self._known:  # a new connection's
                self._watched(fd)
            return
        try:  # noqa: SIM105 - called for every socket change: no context manager here
            self._poll.unregister(fd)  # POLL_REMOVE
        except KeyError:
            pass  # never registered: libcurl removes sockets it only resolved for

    def until_done(self, op: Operation, wake_by: float) -> float:
        """Step until ``op`` has finished on every host, or until ``wake_by`` (the engine's
        next stall check); return the time the last step started at.  What
        ``Engine.run_one`` repeats, so every put's steps stay in this module."""
        now = 0.0
        window = op.window
        while op.pending:
            now = self.step(wake_by)
            if window is not None and window.paused_count:
                self.resume(op, now)
            if now >= wake_by:
                break
        return now

    def step(self, wake_by: float) -> float:
        """Wait for sockets or libcurl's timer (until ``wake_by`` at the latest), let
        libcurl act, collect what finished; return the time the step started at.

        libcurl's timer is read with ``multi.timeout()`` on each turn rather
        than through a timer callback: one call a turn instead of several.
        """
        multi = self.multi
        now = time.monotonic()
        timer_ms = multi.timeout()
        if timer_ms == 0:
            _, running = multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        else:
            wait_ms = (wake_by - now) * 1000
            if 0 < timer_ms < wait_ms:
                wait_ms = timer_ms
            events = self._poll.poll(
                0
                if wait_ms <= 0
                else LONGEST_WAIT_MS
                if wait_ms > LONGEST_WAIT_MS
                else math.ceil(wait_ms)
            )
            running = len(self.active)  # unless libcurl says otherwise below
            for fd, event in events:
                if fd == self._wake_fd:
                    _drain(fd)
                    continue
                if event & select.POLLNVAL:  # closed under us: stop watching it
                    self._poll.unregister(fd)
                _, running = multi.socket_action(fd, _curl_mask(event))
            if not events:  # the wait ended on a timer: libcurl's, or ours
                _, running = multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        # libcurl counts the transfers still running: fewer than ours means some ended.
        if running < len(self.active):
            self.collect()
        return now

    def collect(self) -> None:
        """Make the results of the transfers libcurl says have ended."""
        active = self.active
        while True:
            queued, succeeded, failed = self.multi.info_read()
            for handle in succeeded:
                transfer = active[handle]
                if not self._settle(transfer):
                    self._finish(transfer, 0, "")
            for handle, code, message in failed:
                self._finish(active[handle], code, message)
            if not queued:
                return

    def resume(self, op: Operation, now: float) -> None:
        """Unpause the hosts of ``op`` that its window lets move again."""
        assert op.window is not None
        for index in op.window.resumable():
            transfer = op.transfers[index]
            if transfer is not None and transfer.handle in self.active:
                transfer.last_progress = now
                transfer.handle.pause(pycurl.PAUSE_CONT)

    def _settle(self, transfer: Transfer) -> bool:
        """The result of a transfer libcurl completed, if it is a success; False otherwise.

        A PUT counts only when libcurl's upload counter reached the
        Content-Length, its answer began after the last byte was sent
        (libcurl's timers: ``STARTTRANSFER`` is the first byte received,
        ``POSTTRANSFER`` the last byte sent), and, where the kernel tells, the
        server had acknowledged every byte when its answer arrived (the answer
        watch): a server may answer ``201`` as soon as it has the request head,
        and on a fast link the kernel takes the whole body at once.  A body
        small enough to sit whole in the server's socket buffers is
        acknowledged unread: no client can tell that case.
        """
        handle = transfer.handle
        op = transfer.op
        status = handle.getinfo(pycurl.RESPONSE_CODE)
        outcome = op.kind.outcomes.get(status)
        if outcome is None:
            return False
        window = op.window
        size = modified = None
        if window is not None or op.body is not None:
            transferred = handle.getinfo(pycurl.SIZE_UPLOAD_T)
            length = window.size if window is not None else len(op.body or b"")
            watch = transfer.watch
            if (
                transferred < length
                or (watch is not None and watch.unacknowledged)
                or handle.getinfo(pycurl.STARTTRANSFER_TIME_T)
                < handle.getinfo(pycurl.POSTTRANSFER_TIME_T)
            ):
                return False  # incomplete: the engine says how
        elif transfer.gate is not None:  # GET, PROPFIND: what reached the sink
            transferred = transfer.gate.written
        else:
            transferred = handle.getinfo(pycurl.SIZE_DOWNLOAD_T)
        if outcome is Outcome.FOUND:
            length = handle.getinfo(pycurl.CONTENT_LENGTH_DOWNLOAD_T)
            filetime = handle.getinfo(pycurl.INFO_FILETIME)
            size = length if length >= 0 else None
            modified = float(filetime) if filetime >= 0 else None
        if transfer.host in self._tripped:
            BREAKERS.answered(transfer.host)
        self.end(
            transfer,
            HostResult(
                transfer.host,
                transfer.url,
                op.method,
                outcome,
                status,
                transferred,
                time.monotonic() - transfer.started,
                None,
                handle.getinfo(pycurl.NUM_CONNECTS),
                size,
                modified,
            ),
        )
        return True

    def end(self, transfer: Transfer, result: HostResult) -> None:
        """Record ``result`` as the transfer's and give its handle back."""
        handle = transfer.handle
        del self.active[handle]
        self.multi.remove_handle(handle)
        self.record(transfer.op, transfer.index, result)
        self._idle[transfer.op.kind, transfer.host].append(handle)

    def record(self, op: Operation, index: int, result: HostResult) -> None:
        """Host ``index`` of ``op`` is done, with ``result`` (sent or not)."""
        if op.window is not None:
            op.window.drop(index)  # a finished, failed or skipped host holds no chunk back
        op.results[index] = result
        op.transfers[index] = None
        op.pending -= 1
        if not op.pending:
            self.done.append(op)

    def _take(self, host: str, kind: Kind) -> pycurl.Curl:
        """An idle handle for ``kind`` to ``host``, or a new one."""
        idle = self._idle.get((kind, host))
        if idle:
            return idle.pop()
        if idle is None:
            self._idle[kind, host] = []
        handle, watch = self._handles.new(kind)
        if watch is not None:
            self._watches[handle] = watch
        return handle


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 4096):
            pass
