"""Dead hosts cost one timeout, not one per request: a circuit breaker per host, process-wide.

After a request to a host fails the way a dead host fails (refused, timed
out, stalled, a name that does not resolve), every Replicator and storage of the
process skips that host for ``host_cooldown`` seconds: its requests fail at
once with outcome ``SKIPPED`` (reason ``skipped``), and are logged and
repaired like any failure.  When the cool-down is over, the next request to
the host is let through alone, as a probe (the breaker is half-open): an
answer, any HTTP answer, closes the breaker; another such failure opens it
for a new cool-down.

The state is shared by every thread, and inherited by a forked child (a
host that was down a moment ago still is).  Reading it costs nothing while
no host has failed: the common case.
"""

from __future__ import annotations

import threading
import time

__all__ = ["BREAKERS", "TRIPPING_REASONS", "Breakers"]

#: TransportError reasons that say a host cannot be reached.  An HTTP error status never trips,
#: nor does a TLS failure: the host is up, and another client's TLS settings may suit it.
TRIPPING_REASONS = frozenset({"refused", "timeout", "stalled", "dns"})


class _Down:
    __slots__ = ("probing", "since", "until", "why")

    def __init__(self, why: str, now: float, until: float) -> None:
        self.why = why
        self.since = now
        self.until = until
        self.probing = False


class Breakers:
    """The hosts given up for a while, by host (``host[:port]`` as configured)."""

    def __init__(self) -> None:
        #: Live, by host: what the loop reads (``if tripped``, ``host in tripped``) before it
        #: calls :meth:`skip` or :meth:`answered`, so a request costs nothing while no host is
        #: down.  Read it; only the methods change it, under the lock.
        self.tripped: dict[str, _Down] = {}
        self._lock = threading.Lock()

    def skip(self, host: str, now: float) -> str | None:
        """Why a request to ``host`` must be skipped now, or None to send it.

        Past the cool-down one caller gets None (the probe); the others keep
        skipping until its answer is in.
        """
        if not self.tripped:  # no host down: no lock, no lookup beyond this
            return None
        with self._lock:
            down = self.tripped.get(host)
            if down is None:
                return None
            if now >= down.until and not down.probing:
                down.probing = True
                return None
            return f"host down ({down.why}, {now - down.since:.1f} s ago)"

    def failed(self, host: str, why: str, now: float, cooldown: float) -> None:
        """A request to ``host`` failed as a dead host fails: skip it for ``cooldown`` s."""
        if cooldown <= 0:
            return
        with self._lock:
            down = self.tripped.get(host)
            if down is None:
                self.tripped[host] = _Down(why, now, now + cooldown)
            else:  # the probe failed, or requests already in flight did
                down.why, down.until, down.probing = why, now + cooldown, False

    def answered(self, host: str) -> None:
        """``host`` answered (whatever the status): it is up."""
        if host in self.tripped:
            with self._lock:
                self.tripped.pop(host, None)

    def released(self, host: str) -> None:
        """A probe ended without a verdict (interrupted): let the next request probe."""
        if host in self.tripped:
            with self._lock:
                down = self.tripped.get(host)
                if down is not None:
                    down.probing = False

    def down(self) -> dict[str, str]:
        """The hosts now skipped, and why (for logs and tests)."""
        now = time.monotonic()
        with self._lock:
            return {host: down.why for host, down in self.tripped.items() if now < down.until}

    def clear(self) -> None:
        with self._lock:
            self.tripped.clear()


#: The process's breakers, shared by every Replicator and storage.
BREAKERS = Breakers()
