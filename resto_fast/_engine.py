"""The transfer engine: one ``CurlMulti`` drives every host of every operation in one loop.

No thread per host: libcurl's socket interface tells which sockets to watch,
``poll`` waits on them (or on libcurl's timer when there is none, so
the loop never spins), and ``socket_action`` moves the transfers along.
Uploads read from a :class:`ChunkWindow` shared by all hosts of one file;
a host that runs ahead pauses, and is resumed from this loop once the slowest
host has moved on.

The engine also enforces the stall timeout itself: a transfer whose byte
counts have not moved for ``timeout`` seconds (a silent or stuck host) is
given up, while one that keeps moving is never cut off.  Transfers paused by
the window are exempt; they are waiting for another host, not stalled.

The work done per transfer and per wake-up (starting transfers, the
socket callback, the wait, the results of transfers that went well) is the
:class:`Loop` of the compiled module (``_multi.pyx``, or its pure-Python
twin); this module keeps the policy around it: what runs when, stalls,
interruptions, and every failure.  An engine is used by one thread at a
time (see ``_pool``); libcurl errors become :mod:`resto_fast` errors here,
in :meth:`Engine._finish`.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import pycurl

from ._breaker import BREAKERS, TRIPPING_REASONS
from ._buffer import Loop, Transfer
from ._config import ReplicatorConfig
from ._exceptions import HostError, TransportError, UnexpectedStatusCode
from ._handles import Handles
from ._operation import Operation
from ._results import HostResult, Outcome
from ._sockets import SocketIndex, unacknowledged

__all__ = ["Engine"]

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


class Engine:
    """A ``CurlMulti``, its handles and its loop; one thread at a time."""

    def __init__(self, config: ReplicatorConfig) -> None:
        self.generation = 0  # the fork generation it was made in (set by _pool)
        self._config = config
        self._sockets = SocketIndex()
        self._handles = Handles(config, self._sockets)
        self._stall_interval = config.timeout / 8
        multi = pycurl.CurlMulti()
        self._multi = multi
        self._loop = Loop(multi, self._handles, self._sockets, self._finish, self._skipped)
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
            self._loop.wake_on(read_end)
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
        loop = self._loop
        queue = iter(operations)
        in_flight: list[Operation] = []
        exhausted = False
        now = time.monotonic()
        next_stall_check = now + self._stall_interval
        next_tick = now + _TICK_INTERVAL if on_tick is not None else math.inf
        done = loop.done
        try:
            while True:
                while not exhausted and len(in_flight) < concurrency:
                    op = next(queue, _EXHAUSTED)
                    if op is _EXHAUSTED:
                        exhausted = True
                    elif op is None:
                        break  # nothing ready: ask again after this turn
                    elif op.targets:
                        loop.start(op)
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
                wake_by = next_stall_check if next_stall_check < next_tick else next_tick
                if not in_flight:
                    if exhausted:
                        return
                    # Waiting on the caller only: ask again within a tick.
                    wake_by = min(wake_by, time.monotonic() + _TICK_INTERVAL)
                now = loop.step(wake_by)
                for op in in_flight:
                    if op.window is not None and op.window.paused_count:
                        loop.resume(op, now)
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
        loop = self._loop
        try:
            loop.start(op)
            next_stall_check = time.monotonic() + self._stall_interval
            while op.pending:
                now = loop.until_done(op, next_stall_check)
                if now >= next_stall_check:
                    self._abort_stalled(now)
                    next_stall_check = now + self._stall_interval
        finally:
            if loop.active:
                self._abort_all()
            loop.done.clear()

    def _skipped(self, op: Operation, index: int, why: str) -> None:
        """The result of a host not asked, because the breaker says it is down."""
        host, url = op.targets[index]
        error = TransportError(
            f"skipped: {why}", host=host, url=url, method=op.method, reason="skipped"
        )
        self._loop.record(
            op, index, HostResult(host, url, op.method, Outcome.SKIPPED, None, 0, 0.0, error)
        )

    def _abort_stalled(self, now: float) -> None:
        timeout = self._config.timeout
        for transfer in list(self._loop.active.values()):
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
        for transfer in list(self._loop.active.values()):
            self._finish(transfer, pycurl.E_ABORTED_BY_CALLBACK, "the operation was interrupted")

    # -- results that are not a plain success ----------------------------------

    def _finish(self, transfer: Transfer, curl_code: int | None, message: str) -> None:
        """The result of a transfer that failed, was given up, or was answered with what its
        kind does not expect (the loop makes a success's itself)."""
        handle = transfer.handle
        op = transfer.op
        method = op.method
        status = handle.getinfo(pycurl.RESPONSE_CODE) or None
        if op.window is not None or op.body is not None:
            transferred = handle.getinfo(pycurl.SIZE_UPLOAD_T)  # what went out, not the size
            if transfer.watch is not None:  # of which this never reached an early answerer
                transferred = max(0, transferred - transfer.watch.unacknowledged)
        elif transfer.gate is not None:  # GET, PROPFIND: what reached the sink, not an error page
            transferred = transfer.gate.written
        else:
            transferred = handle.getinfo(pycurl.SIZE_DOWNLOAD_T)
        error: HostError
        now = time.monotonic()
        elapsed = now - transfer.started
        if curl_code == 0:
            BREAKERS.answered(transfer.host)
            if op.kind.outcomes.get(status or 0) is not None:  # only a PUT's can be refused
                error = _incomplete(transfer, status, transferred)
            else:
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
        else:
            error = self._transport_error(transfer, curl_code, message)
            # A timeout of a transfer that had connected is a slow host (total_timeout), not a
            # dead one.
            if error.reason in TRIPPING_REASONS and not (
                error.reason == "timeout" and handle.getinfo(pycurl.CONNECT_TIME_T)
            ):
                BREAKERS.failed(transfer.host, str(error), now, self._config.host_cooldown)
            else:  # interrupted, reset...: no verdict on the host (a probe may go again)
                BREAKERS.released(transfer.host)
        self._loop.end(
            transfer,
            HostResult(
                transfer.host,
                transfer.url,
                method,
                Outcome.FAILED,
                status,
                transferred,
                elapsed,
                error,
                handle.getinfo(pycurl.NUM_CONNECTS),
            ),
        )

    def _transport_error(
        self, transfer: Transfer, curl_code: int | None, message: str
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


def _incomplete(transfer: Transfer, status: int | None, sent: int) -> TransportError:
    """The error of a PUT answered with success before its whole body reached the server,
    of which ``sent`` bytes did at most (the rule is the loop's: see ``Loop._settle`` in
    ``_multi_py``)."""
    op = transfer.op
    size = op.window.size if op.window is not None else len(op.body or b"")
    return TransportError(
        f"incomplete: the server answered HTTP {status} before it could have read the whole "
        f"body ({sent} of {size} bytes had reached it); it may hold a partial copy",
        host=transfer.host,
        url=transfer.url,
        method=op.method,
        reason="incomplete",
    )
