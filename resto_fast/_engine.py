"""The transfer engine: one ``CurlMulti`` drives every host of every operation in one loop.

No thread per host: libcurl's socket interface tells which sockets to watch,
``select.poll`` waits on them (or on libcurl's timer when there is none, so
the loop never spins), and ``socket_action`` moves the transfers along.
Uploads read from a :class:`ChunkWindow` shared by all hosts of one file;
a host that runs ahead pauses, and is resumed from this loop once the slowest
host has moved on.

The engine also enforces the stall timeout itself: a transfer whose byte
counts have not moved for ``timeout`` seconds (a silent or stuck host) is
given up, while one that keeps moving is never cut off.  Transfers paused by
the window are exempt; they are waiting for another host, not stalled.

An engine is used by one thread at a time (see ``_pool``); libcurl errors
become :mod:`resto_fast` errors here, in :meth:`Engine._finish`.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import time
from collections.abc import Callable, Iterable
from typing import Any

import pycurl

from ._breaker import BREAKERS, TRIPPING_REASONS
from ._buffer import AnswerWatch
from ._config import ReplicatorConfig
from ._exceptions import HostError, TransportError, UnexpectedStatusCode
from ._handles import HandlePool
from ._operation import Operation, Sink
from ._results import HostResult, Outcome
from ._sockets import SocketIndex, unacknowledged

__all__ = ["Engine"]

_POLL_INTEREST = {
    pycurl.POLL_IN: select.POLLIN,
    pycurl.POLL_OUT: select.POLLOUT,
    pycurl.POLL_INOUT: select.POLLIN | select.POLLOUT,
}
_READABLE = select.POLLIN | select.POLLPRI | select.POLLHUP
_BROKEN = select.POLLERR | select.POLLNVAL
# libcurl keeps a timer while anything runs; this only bounds a wait it forgot.
_LONGEST_WAIT_MS = 1000
_TICK_INTERVAL = 0.1

_CURL_REASONS = {
    pycurl.E_COULDNT_CONNECT: "refused",
    pycurl.E_OPERATION_TIMEDOUT: "timeout",
    pycurl.E_COULDNT_RESOLVE_HOST: "dns",
    pycurl.E_RECV_ERROR: "reset",
    pycurl.E_SEND_ERROR: "reset",
    pycurl.E_GOT_NOTHING: "reset",
    pycurl.E_PARTIAL_FILE: "reset",
    pycurl.E_ABORTED_BY_CALLBACK: "aborted",
    pycurl.E_SEND_FAIL_REWIND: "rewind",
    pycurl.E_SSL_CONNECT_ERROR: "tls",
    pycurl.E_PEER_FAILED_VERIFICATION: "tls",
    pycurl.E_SSL_CACERT_BADFILE: "tls",
    pycurl.E_FILESIZE_EXCEEDED: "answer",  # a write's answer over ANSWER_LIMIT
    pycurl.E_FTP_WEIRD_SERVER_REPLY: "protocol",  # CURLE_WEIRD_SERVER_REPLY (8): not HTTP
    pycurl.E_UNSUPPORTED_PROTOCOL: "protocol",  # "Unsupported HTTP version in response"
}


_EXHAUSTED: Any = object()  # what next() gives for an operations iterator that has ended

# poll() events -> libcurl's CSELECT mask, filled as events are seen.
_CURL_MASKS: dict[int, int] = {}


def _curl_mask(event: int) -> int:
    mask = 0
    if event & _READABLE:
        mask |= pycurl.CSELECT_IN
    if event & select.POLLOUT:
        mask |= pycurl.CSELECT_OUT
    if event & _BROKEN:
        mask |= pycurl.CSELECT_ERR
    return mask


class _Transfer:
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
        self.last_progress = now
        self.mark = 0
        self.gate: _StatusGate | None = None
        self.watch: AnswerWatch | None = None  # a PUT's: what its answer came before


class _StatusGate:
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


class Engine:
    """A ``CurlMulti``, its handles and its loop; one thread at a time."""

    def __init__(self, config: ReplicatorConfig) -> None:
        self.generation = 0  # the fork generation it was made in (set by _pool)
        self._config = config
        self._sockets = SocketIndex()
        self._handles = HandlePool(config, self._sockets)
        self._poll = select.poll()
        self._active: dict[pycurl.Curl, _Transfer] = {}
        self._done: list[Operation] = []  # finished since the loop last looked
        self._stall_interval = config.timeout / 8
        multi = pycurl.CurlMulti()
        multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self._multi = multi
        self._max_connections = 0
        self._keep_connections(config.concurrency)
        self._wake_fds: tuple[int, int] | None = None  # see wakeable()

    def _keep_connections(self, concurrency: int) -> None:
        """Let libcurl's connection cache hold one connection per transfer in flight (and one
        more host's worth: a sync also reads a source host), so none is closed for room."""
        wanted = max(16, (len(self._config.hosts) + 1) * concurrency)
        if wanted > self._max_connections:
            self._multi.setopt(pycurl.M_MAXCONNECTS, wanted)
            self._max_connections = wanted

    def close(self) -> None:
        """Close every handle and connection; the engine cannot be used afterwards."""
        self._abort_all()
        self._handles.close()
        self._multi.close()
        if self._wake_fds is not None:
            for fd in self._wake_fds:
                os.close(fd)
            self._wake_fds = None

    def wakeable(self) -> Callable[[], None]:
        """A function that any thread may call to end the loop's current wait at once, so
        that :meth:`run` asks its operations again (work handed over by another thread)."""
        if self._wake_fds is None:
            read_end, write_end = os.pipe()
            os.set_blocking(read_end, False)
            os.set_blocking(write_end, False)
            self._wake_fds = (read_end, write_end)
            self._poll.register(read_end, select.POLLIN)
        write_end = self._wake_fds[1]

        def wake() -> None:
            # A full pipe wakes the loop as well; a closed one has no loop left to wake.
            with contextlib.suppress(OSError):
                os.write(write_end, b"\0")

        return wake

    # -- running operations ----------------------------------------------------

    def run(
        self,
        operations: Iterable[Operation | None],
        *,
        concurrency: int = 1,
        on_done: Callable[[Operation], None] | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        """Run operations, at most ``concurrency`` files at a time, until all have finished.

        ``operations`` is read as room frees up, so it may be a generator that
        makes work from what finished (a directory listed, then its files
        sent).  ``None`` from it means "nothing ready yet": it is asked again
        after the next turn of the loop (at once when something finished, else
        within a tick), so it should block rather than say None when nothing
        is in flight.  ``on_done`` is called as each operation finishes on every
        host; ``on_tick`` about ten times a second.  If anything raises (a
        callback, a signal), every transfer still running is aborted before
        the exception leaves: nothing is left half-sent on a reused handle.
        """
        self._keep_connections(concurrency)
        queue = iter(operations)
        in_flight: list[Operation] = []
        exhausted = False
        now = time.monotonic()
        next_stall_check = now + self._stall_interval
        next_tick = now + _TICK_INTERVAL if on_tick is not None else math.inf
        done = self._done
        try:
            while True:
                while not exhausted and len(in_flight) < concurrency:
                    op = next(queue, _EXHAUSTED)
                    if op is _EXHAUSTED:
                        exhausted = True
                    elif op is None:
                        break  # nothing ready: ask again after this turn
                    elif op.targets:
                        self._start(op)
                        in_flight.append(op)
                    else:
                        done.append(op)
                if done:
                    for op in done:
                        if op in in_flight:
                            in_flight.remove(op)
                        if on_done is not None:
                            on_done(op)
                    done.clear()
                    continue
                wake_by = min(next_stall_check, next_tick)
                if not in_flight:
                    if exhausted:
                        return
                    # Waiting on the caller only: ask again within a tick.
                    wake_by = min(wake_by, time.monotonic() + _TICK_INTERVAL)
                now = self._step(wake_by)
                for op in in_flight:
                    if op.window is not None and op.window.paused_count:
                        self._resume(op, now)
                if now >= next_stall_check:
                    self._abort_stalled(now)
                    next_stall_check = now + self._stall_interval
                if on_tick is not None and now >= next_tick:
                    next_tick = now + _TICK_INTERVAL
                    on_tick()
        finally:
            self._abort_all()
            done.clear()

    def run_one(self, op: Operation) -> None:
        """Run one operation to the end: ``run([op])`` without the batch machinery.

        The path of every ``put`` and ``delete``, so it is kept short.
        """
        if not op.targets:
            return
        window = op.window
        try:
            self._start(op)
            next_stall_check = time.monotonic() + self._stall_interval
            while op.pending:
                now = self._step(next_stall_check)
                if window is not None and window.paused_count:
                    self._resume(op, now)
                if now >= next_stall_check:
                    self._abort_stalled(now)
                    next_stall_check = now + self._stall_interval
        finally:
            if self._active:
                self._abort_all()
            self._done.clear()

    def _start(self, op: Operation) -> None:
        """Add one transfer per host and let libcurl start them at once.

        A host the breaker says is down is not asked: its result is made here.
        """
        now = time.monotonic()
        take = self._handles.take
        window = op.window
        body = op.body
        skip = BREAKERS.skip
        for index, (host, url) in enumerate(op.targets):
            down = skip(host, now)
            if down is not None:
                self._skipped(op, index, down)
                continue
            handle = take(host, op.kind)
            handle.setopt(pycurl.URL, url)
            transfer = _Transfer(op, index, handle, now)
            if op.kind.watch_answer:
                transfer.watch = self._handles.watch(handle)
            if body is not None:
                handle.setopt(pycurl.POSTFIELDS, body)  # no copy: pycurl keeps a reference
            elif window is not None:
                reader = window.reader(index)
                handle.setopt(pycurl.INFILESIZE_LARGE, window.size)
                handle.setopt(pycurl.READFUNCTION, reader)
                handle.setopt(pycurl.SEEKFUNCTION, reader.seek)
            elif op.sinks is not None:
                # Only the kind's one status has the answer as its body; others, error pages.
                status = op.kind.body_status
                assert status is not None, f"{op.kind.name} has no body to keep"
                transfer.gate = gate = _StatusGate(op.sinks[index], status)
                handle.setopt(pycurl.HEADERFUNCTION, gate.header)
                handle.setopt(pycurl.WRITEFUNCTION, gate.write)
            op.transfers[index] = transfer
            self._active[handle] = transfer
            self._multi.add_handle(handle)
        if not op.pending:  # every host skipped: nothing to start
            return
        # Start now rather than one wait later, when the 0 ms timer libcurl just set would fire.
        _, running = self._multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        if running < len(self._active):  # some ended at once (refused, say)
            self._collect()

    def _skipped(self, op: Operation, index: int, why: str) -> None:
        """The result of a host not asked, because the breaker says it is down."""
        host, url = op.targets[index]
        error = TransportError(
            f"skipped: {why}", host=host, url=url, method=op.method, reason="skipped"
        )
        if op.window is not None:
            op.window.drop(index)
        op.results[index] = HostResult(host, url, op.method, Outcome.SKIPPED, None, 0, 0.0, error)
        op.pending -= 1
        if not op.pending:
            self._done.append(op)

    # -- the loop --------------------------------------------------------------

    def _on_socket(self, what: int, fd: int, multi: object, socketp: object) -> None:
        interest = _POLL_INTEREST.get(what)
        if interest is not None:
            self._poll.register(fd, interest)
            self._sockets.watched(fd)
            return
        try:  # noqa: SIM105 - called for every socket change: no context manager here
            self._poll.unregister(fd)  # POLL_REMOVE
        except KeyError:
            pass  # never registered: libcurl removes sockets it only resolved for

    def _step(self, wake_by: float) -> float:
        """Wait for sockets or libcurl's timer, let libcurl act, collect what finished.

        libcurl's timer is read with ``multi.timeout()`` on each turn rather
        than through a timer callback: one call a turn instead of several.
        Returns the time the step started at (the loop's clock: a wait is
        short, at most ``_LONGEST_WAIT_MS``).
        """
        multi = self._multi
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
                else _LONGEST_WAIT_MS
                if wait_ms > _LONGEST_WAIT_MS
                else math.ceil(wait_ms)
            )
            running = len(self._active)  # unless libcurl says otherwise below
            for fd, event in events:
                if self._wake_fds is not None and fd == self._wake_fds[0]:
                    _drain(fd)
                    continue
                mask = _CURL_MASKS.get(event)
                if mask is None:
                    mask = _CURL_MASKS[event] = _curl_mask(event)
                if event & select.POLLNVAL:  # closed under us: stop watching it
                    self._poll.unregister(fd)
                _, running = multi.socket_action(fd, mask)
            if not events:  # the wait ended on a timer: libcurl's, or ours
                _, running = multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        # libcurl counts the transfers still running: fewer than ours means some ended.
        if running < len(self._active):
            self._collect()
        return now

    def _collect(self) -> None:
        while True:
            queued, succeeded, failed = self._multi.info_read()
            for handle in succeeded:
                self._finish(self._active[handle], 0, "")
            for handle, code, message in failed:
                self._finish(self._active[handle], code, message)
            if not queued:
                return

    def _resume(self, op: Operation, now: float) -> None:
        assert op.window is not None
        for index in op.window.resumable():
            transfer = op.transfers[index]
            if transfer is not None and transfer.handle in self._active:
                transfer.last_progress = now
                transfer.handle.pause(pycurl.PAUSE_CONT)

    def _abort_stalled(self, now: float) -> None:
        timeout = self._config.timeout
        for transfer in list(self._active.values()):
            window = transfer.op.window
            if window is not None and window.paused(transfer.index):
                transfer.last_progress = now  # waiting for a slower host is not a stall
                continue
            handle = transfer.handle
            # What the peer received, not what the kernel took (megabytes, on a LAN): a slow
            # host that keeps reading is not stalled.
            mark = handle.getinfo(pycurl.SIZE_UPLOAD_T) - unacknowledged(
                handle.getinfo(pycurl.ACTIVESOCKET)
            )
            if transfer.op.kind.answer == "read":  # a read's body is its progress; a write's
                # answer (an error page at most) is not
                mark += handle.getinfo(pycurl.SIZE_DOWNLOAD_T)
            if mark != transfer.mark:
                transfer.mark = mark
                transfer.last_progress = now
            elif now - transfer.last_progress >= timeout:
                # For a write, an answer that trickles is no progress: once the request has
                # gone out, the whole answer has `timeout` seconds to come.
                self._finish(
                    transfer, None, f"no progress for {now - transfer.last_progress:.1f} s"
                )

    def _abort_all(self) -> None:
        for transfer in list(self._active.values()):
            self._finish(transfer, pycurl.E_ABORTED_BY_CALLBACK, "the operation was interrupted")

    # -- results ---------------------------------------------------------------

    def _finish(self, transfer: _Transfer, curl_code: int | None, message: str) -> None:
        """Turn a finished (or given-up) transfer into its HostResult."""
        handle = transfer.handle
        op = transfer.op
        method = op.method
        del self._active[handle]
        self._multi.remove_handle(handle)
        status = handle.getinfo(pycurl.RESPONSE_CODE) or None
        error: HostError | None = None
        outcome: Outcome | None = None
        window = op.window
        if curl_code == 0:
            BREAKERS.answered(transfer.host)
            elapsed = handle.getinfo(pycurl.TOTAL_TIME_T) / 1e6
            outcome = op.kind.outcomes.get(status or 0)
            if outcome is None:
                redirect = 300 <= (status or 0) < 400
                location = handle.getinfo(pycurl.REDIRECT_URL) if redirect else None
                error = UnexpectedStatusCode(
                    f"HTTP {status}" + (f" to {location}" if location else ""),
                    host=transfer.host,
                    url=transfer.url,
                    method=method,
                    code=status or 0,
                    location=location,
                )
            elif method == "PUT":
                error = _incomplete_upload(transfer, handle, status)
                if error is not None:
                    outcome = None
        else:
            now = time.monotonic()
            elapsed = now - transfer.started
            error = self._transport_error(transfer, curl_code, message)
            # A timeout of a transfer that had connected is a slow host (total_timeout), not a
            # dead one.
            if error.reason in TRIPPING_REASONS and not (
                error.reason == "timeout" and handle.getinfo(pycurl.CONNECT_TIME_T)
            ):
                BREAKERS.failed(transfer.host, str(error), now, self._config.host_cooldown)
            else:  # interrupted, reset...: no verdict on the host (a probe may go again)
                BREAKERS.released(transfer.host)
        if window is not None or op.body is not None:
            if window is not None:
                window.drop(transfer.index)  # a finished or failed host holds no chunk back
            transferred = handle.getinfo(pycurl.SIZE_UPLOAD_T)  # what went out, not the size
            if transfer.watch is not None:  # of which this never reached an early answerer
                transferred -= transfer.watch.unacknowledged
        elif transfer.gate is not None:  # GET, PROPFIND: what reached the sink, not an error page
            transferred = transfer.gate.written
        else:
            transferred = handle.getinfo(pycurl.SIZE_DOWNLOAD_T)
        size = modified = None
        if outcome is Outcome.FOUND:
            length = handle.getinfo(pycurl.CONTENT_LENGTH_DOWNLOAD_T)
            filetime = handle.getinfo(pycurl.INFO_FILETIME)
            size = length if length >= 0 else None
            modified = float(filetime) if filetime >= 0 else None
        op.results[transfer.index] = HostResult(
            transfer.host,
            transfer.url,
            method,
            outcome or Outcome.FAILED,
            status,
            transferred,
            elapsed,
            error,
            handle.getinfo(pycurl.NUM_CONNECTS),
            size,
            modified,
        )
        op.transfers[transfer.index] = None
        op.pending -= 1
        if not op.pending:
            self._done.append(op)
        self._handles.give_back(transfer.host, op.kind, handle)

    def _transport_error(
        self, transfer: _Transfer, curl_code: int | None, message: str
    ) -> TransportError:
        op = transfer.op
        if curl_code is None:
            reason = "stalled"
        elif curl_code == pycurl.E_ABORTED_BY_CALLBACK and op.window and op.window.error:
            reason, message = "aborted", f"reading the source failed ({op.window.error})"
        elif curl_code == pycurl.E_WRITE_ERROR and transfer.gate and transfer.gate.error:
            reason, message = "aborted", f"writing the body failed ({transfer.gate.error})"
        else:
            reason = _CURL_REASONS.get(curl_code, "other")
        return TransportError(
            f"{reason}: {message}",
            host=transfer.host,
            url=transfer.url,
            method=op.method,
            reason=reason,
            curl_code=curl_code,
        )


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 4096):
            pass


def _incomplete_upload(
    transfer: _Transfer, handle: pycurl.Curl, status: int | None
) -> TransportError | None:
    """The error of a PUT answered with success before its whole body reached the server.

    A server may answer ``201`` as soon as it has the request head and close
    (or say ``Connection: close``): libcurl then stops sending and reports
    success.  So a write counts only when libcurl's upload counter reached
    the Content-Length, the answer began after the last byte was sent
    (libcurl's timers: ``STARTTRANSFER`` is the first byte received,
    ``POSTTRANSFER`` the last byte sent), and, where the kernel tells, the
    server had acknowledged every byte when its answer arrived: on a fast
    link the kernel takes the whole body at once, so "sent" can precede the
    answer of a server that never read it.  A body small enough to sit whole
    in the server's socket buffers is acknowledged unread: no client can
    tell that case.
    """
    op = transfer.op
    size = op.window.size if op.window is not None else len(op.body or b"")
    sent = handle.getinfo(pycurl.SIZE_UPLOAD_T)
    missing = transfer.watch.unacknowledged if transfer.watch is not None else 0
    if (
        sent >= size
        and not missing
        and handle.getinfo(pycurl.STARTTRANSFER_TIME_T)
        >= handle.getinfo(pycurl.POSTTRANSFER_TIME_T)
    ):
        return None
    if missing:
        sent = max(0, sent - missing)  # what reached the server, at most
    return TransportError(
        f"incomplete: the server answered HTTP {status} before it could have read the whole "
        f"body ({sent} of {size} bytes had reached it); it may hold a partial copy",
        host=transfer.host,
        url=transfer.url,
        method=op.method,
        reason="incomplete",
    )
