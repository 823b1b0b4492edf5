"""What the kernel knows of the engine's sockets, and libcurl does not say.

libcurl counts a byte as sent when the kernel accepts it; on loopback or a
fast LAN the kernel takes megabytes at once.  Linux tells how many of them
the peer has not acknowledged yet (``SIOCOUTQ``: unsent plus unacknowledged),
which serves twice: a slow host that keeps reading is not taken for a
stalled one, and a write answered while part of its body never reached the
server is not taken for a complete one.  Elsewhere the queue reads as empty,
and libcurl's counters and timers alone decide.

libcurl's socket callback names a socket but not the transfer using it, and
its info cannot be read from inside a callback; so the engine indexes its
sockets by their address pair, which libcurl's pre-request callback gives
for each transfer (to the answer watch, in the compiled module and its
twin).  A socket's pair is learnt once, when libcurl first watches it, so a
kept-alive connection costs nothing more per request; libcurl's
socket-options callback, which every handle has, says when a new socket
takes a number an old one had.  (Not its close callback: pycurl cannot run
one while a multi handle is being closed.)
"""

from __future__ import annotations

import fcntl
import socket
import struct
import termios

import pycurl

__all__ = ["Pair", "SocketIndex", "unacknowledged"]

_OUTQ: int | None = getattr(termios, "TIOCOUTQ", None)

#: A connection, as both ends name it: (local address, local port, peer address, peer port).
Pair = tuple[str, int, str, int]


def unacknowledged(fd: int) -> int:
    """Bytes written to socket ``fd`` that its peer has not acknowledged (0 when unknown)."""
    if _OUTQ is None or fd < 0:
        return 0
    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, _OUTQ, b"\0\0\0\0"))[0])
    except OSError:
        return 0


def _pair(fd: int) -> Pair | None:
    """The address pair of a connected TCP socket, without taking ownership of ``fd``."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    try:
        local, peer = sock.getsockname(), sock.getpeername()
    except OSError:
        return None
    finally:
        sock.detach()  # the descriptor stays libcurl's
    if not (isinstance(local, tuple) and isinstance(peer, tuple)):
        return None
    return (str(local[0]), int(local[1]), str(peer[0]), int(peer[1]))


class SocketIndex:
    """The sockets libcurl uses, by address pair: learnt from the socket callback,
    each entry dropped when its number goes to a new socket (:meth:`opened`)."""

    __slots__ = ("_by_fd", "_by_pair")

    def __init__(self) -> None:
        self._by_fd: dict[int, Pair | None] = {}
        self._by_pair: dict[Pair, int] = {}

    def opened(self, fd: int, purpose: int) -> int:
        """libcurl's SOCKOPTFUNCTION: ``fd`` is a new socket; what was known under its
        number was another's."""
        pair = self._by_fd.pop(fd, None)
        if pair is not None and self._by_pair.get(pair) == fd:
            del self._by_pair[pair]
        return int(pycurl.SOCKOPT_OK)

    def watched(self, fd: int) -> None:
        """libcurl watches ``fd``: learn its pair, once per connection."""
        if fd in self._by_fd:
            return
        pair = self._by_fd[fd] = _pair(fd)
        if pair is not None:
            self._by_pair[pair] = fd

    @property
    def known(self) -> dict[int, Pair | None]:
        """Pair by socket, for every socket learnt: the loop calls :meth:`watched` only
        for one not in it (read, never changed)."""
        return self._by_fd

    @property
    def pairs(self) -> dict[Pair, int]:
        """Socket by address pair: what the answer watches look up (read, never changed)."""
        return self._by_pair
