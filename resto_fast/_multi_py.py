"""Pure-Python twin of ``_multi.pyx``: the chunk window that feeds every host's upload.

A file is read once, a chunk at a time, into a ring of at most ``max_chunks``
buffers.  Each host (a *reader*) has its own position; its libcurl
READFUNCTION returns a memoryview slice of the chunk under that position.  A
reader that reaches the newest chunk while the ring is full (the slowest
reader still needs the oldest chunk) gets ``READFUNC_PAUSE``; the engine asks
:meth:`ChunkWindow.resumable` after each turn of its loop and unpauses those
that can move again.  Memory is therefore ``max_chunks * chunk_size`` at most,
whatever the file size and the number of hosts.

The module also holds the other per-transfer callback libcurl calls many
times a request: :class:`AnswerWatch`, a PUT's header callback, which marks
how much of the body the server had not acknowledged when its answer began
(see ``_sockets``).

Both implementations keep exactly this interface and behaviour; the tests run
on both.  This module must stay importable without a compiler.
"""

from __future__ import annotations

from collections.abc import Callable

import pycurl

from ._sockets import Pair, unacknowledged

__all__ = ["AnswerWatch", "ChunkWindow", "Reader"]

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
