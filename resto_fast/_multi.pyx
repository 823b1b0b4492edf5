# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled hot path (twin of ``_multi_py.py``): the chunk window that feeds every host's
upload, and the answer watch libcurl calls for every header line of a PUT's answer.

The file is read once, a chunk at a time, into a ring of at most
``max_chunks`` buffers; each host's READFUNCTION returns a memoryview slice at
its own position and pauses when it runs ahead of the ring.  Reader state is
kept in C arrays so the per-callback work is a few integer operations and
one slice.  Behaviour and interface are exactly those of the pure-Python twin;
the same tests run on both.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc

import pycurl

# Bytes a socket's peer has not acknowledged (Linux's SIOCOUTQ); 0 where unknown, as in
# _sockets.unacknowledged.
cdef extern from *:
    """
    #if defined(__linux__)
    #include <sys/ioctl.h>
    #include <linux/sockios.h>
    static int resto_unacknowledged(int fd) {
        int count = 0;
        if (fd < 0 || ioctl(fd, SIOCOUTQ, &count) < 0) return 0;
        return count;
    }
    #else
    static int resto_unacknowledged(int fd) { (void)fd; return 0; }
    #endif
    """
    int resto_unacknowledged(int fd) nogil

cdef int READFUNC_PAUSE = pycurl.READFUNC_PAUSE
cdef int READFUNC_ABORT = pycurl.READFUNC_ABORT
cdef int SEEKFUNC_OK = 0
cdef int SEEKFUNC_CANTSEEK = pycurl.SEEKFUNC_CANTSEEK
cdef int PREREQFUNC_OK = pycurl.PREREQFUNC_OK
cdef bytes _EOF = b""

cdef enum:
    PAUSED = 1
    DROPPED = 2


cdef class Reader:
    """One host's view of the window: pycurl's READFUNCTION and SEEKFUNCTION."""

    cdef ChunkWindow _window
    cdef Py_ssize_t _index

    def __call__(self, Py_ssize_t size):
        return self._window._read(self._index, size)

    def seek(self, long long offset, int origin):
        return self._window._seek(self._index, offset, origin)


cdef class ChunkWindow:
    """A sliding window of chunks of one source, shared by ``readers`` hosts."""

    cdef long long _size
    cdef long long _chunk
    cdef long long _head
    cdef long long _tail
    cdef long long _bytes_read
    cdef long long _allocated
    cdef Py_ssize_t _max_chunks
    cdef Py_ssize_t _nreaders
    cdef Py_ssize_t _npaused
    cdef long long *_positions
    cdef unsigned char *_flags
    cdef list _views
    cdef object _readinto
    cdef object _error

    def __cinit__(self):
        self._positions = NULL
        self._flags = NULL

    def __init__(self, long long size, readinto, *, Py_ssize_t readers,
                 long long chunk_size, Py_ssize_t max_chunks):
        cdef Py_ssize_t i
        if size < 0 or readers < 0 or chunk_size < 1 or max_chunks < 1:
            raise ValueError("size and readers must be >= 0, chunk_size and max_chunks >= 1")
        self._size = size
        self._readinto = readinto
        self._chunk = chunk_size
        self._max_chunks = max_chunks
        self._views = [None] * max_chunks
        self._head = 0
        self._tail = 0
        self._nreaders = readers
        self._npaused = 0
        self._error = None
        self._bytes_read = 0
        self._allocated = 0
        PyMem_Free(self._positions)
        PyMem_Free(self._flags)
        self._positions = <long long *>PyMem_Malloc(sizeof(long long) * (readers + 1))
        self._flags = <unsigned char *>PyMem_Malloc(sizeof(unsigned char) * (readers + 1))
        if self._positions == NULL or self._flags == NULL:
            raise MemoryError()
        for i in range(readers):
            self._positions[i] = 0
            self._flags[i] = 0

    def __dealloc__(self):
        PyMem_Free(self._positions)
        PyMem_Free(self._flags)

    @classmethod
    def of_buffer(cls, data, *, Py_ssize_t readers):
        """A window over bytes already in memory: no copy, no reading, never pauses."""
        view = memoryview(data).cast("B")
        cdef Py_ssize_t nbytes = view.nbytes
        cdef ChunkWindow window = cls(nbytes, None, readers=readers,
                                      chunk_size=max(nbytes, 1), max_chunks=1)
        if nbytes:
            window._views[0] = view
            window._tail = 1
            window._bytes_read = nbytes
        return window

    # -- what the engine and the tests read --------------------------------------

    @property
    def size(self):
        return self._size

    @property
    def error(self):
        """Why reading the source failed, if it did; every reader then aborts."""
        return self._error

    @property
    def paused_count(self):
        return self._npaused

    @property
    def bytes_read(self):
        """Bytes read from the source so far (each byte once, whatever the readers)."""
        return self._bytes_read

    @property
    def memory(self):
        """Bytes of chunk buffers this window allocated (its memory bound in action)."""
        return self._allocated

    def position(self, Py_ssize_t index):
        self._check(index)
        return self._positions[index]

    def paused(self, Py_ssize_t index):
        """Whether reader ``index`` is paused, waiting for the window to move."""
        self._check(index)
        return bool(self._flags[index] & PAUSED)

    def reader(self, Py_ssize_t index):
        self._check(index)
        cdef Reader reader = Reader.__new__(Reader)
        reader._window = self
        reader._index = index
        return reader

    # -- the READFUNCTION path -------------------------------------------------

    def read(self, Py_ssize_t index, Py_ssize_t size):
        """Up to ``size`` bytes at reader ``index``'s position, ``b""`` at the end, or a code."""
        self._check(index)
        return self._read(index, size)

    def seek(self, Py_ssize_t index, long long offset, int origin):
        """SEEKFUNCTION: rewind while the target offset is still in the window."""
        self._check(index)
        return self._seek(index, offset, origin)

    cdef object _read(self, Py_ssize_t index, Py_ssize_t size):
        cdef long long position, k, start, end, length
        if self._error is not None or self._flags[index] & DROPPED:
            return READFUNC_ABORT
        position = self._positions[index]
        if position >= self._size:
            return _EOF
        k = position // self._chunk
        if k >= self._tail:
            if self._tail - self._head >= self._max_chunks:
                self._advance()
                if self._tail - self._head >= self._max_chunks:
                    if not self._flags[index] & PAUSED:
                        self._flags[index] |= PAUSED
                        self._npaused += 1
                    return READFUNC_PAUSE
            if not self._fill():
                return READFUNC_ABORT
        start = position - k * self._chunk
        length = self._chunk_length(k)
        end = start + size
        if end > length:
            end = length
        self._positions[index] = position + end - start
        return self._views[k % self._max_chunks][start:end]

    cdef int _seek(self, Py_ssize_t index, long long offset, int origin):
        cdef long long filled = self._tail * self._chunk
        if filled > self._size:
            filled = self._size
        if origin != 0 or self._flags[index] & DROPPED:
            return SEEKFUNC_CANTSEEK
        if offset < self._head * self._chunk or offset > filled:
            return SEEKFUNC_CANTSEEK
        self._positions[index] = offset
        return SEEKFUNC_OK

    # -- the loop's side -------------------------------------------------------

    def resumable(self):
        """Readers paused earlier that can move now; they are no longer marked paused.

        A paused reader can move when the window has room for a new chunk, or
        when other readers have already read past it the chunk it waits for
        (it paused when that chunk was not read yet).
        """
        cdef Py_ssize_t i
        cdef bint room = True  # after an error every reader must come back, to abort
        cdef long long filled
        cdef list ready = []
        if not self._npaused:
            return ready
        if self._error is None:
            self._advance()
            room = self._tail - self._head < self._max_chunks
        filled = self._tail * self._chunk
        for i in range(self._nreaders):
            if self._flags[i] & PAUSED and (room or self._positions[i] < filled):
                self._flags[i] &= ~PAUSED
                ready.append(i)
        self._npaused -= len(ready)
        return ready

    def drop(self, Py_ssize_t index):
        """Reader ``index`` is gone (its host failed or finished): stop holding chunks for it."""
        self._check(index)
        if self._flags[index] & PAUSED:
            self._flags[index] &= ~PAUSED
            self._npaused -= 1
        self._flags[index] |= DROPPED
        self._positions[index] = self._size

    def close(self):
        """Release the chunk buffers; every later read aborts."""
        cdef Py_ssize_t i
        self._views = [None] * self._max_chunks
        for i in range(self._nreaders):
            self._flags[i] |= DROPPED
        self._readinto = None

    # -- internals -------------------------------------------------------------

    cdef int _check(self, Py_ssize_t index) except -1:
        if index < 0 or index >= self._nreaders:
            raise IndexError(f"no reader {index}")
        return 0

    cdef inline long long _chunk_length(self, long long k):
        cdef long long rest = self._size - k * self._chunk
        return self._chunk if rest > self._chunk else rest

    cdef void _advance(self):
        cdef Py_ssize_t i
        cdef long long lowest = self._size
        for i in range(self._nreaders):
            if self._positions[i] < lowest:
                lowest = self._positions[i]
        lowest //= self._chunk
        self._head = lowest if lowest < self._tail else self._tail

    cdef bint _fill(self):
        """Read chunk ``tail`` from the source into its ring slot; False on failure."""
        cdef long long k = self._tail
        cdef Py_ssize_t slot = k % self._max_chunks
        cdef long long want = self._chunk_length(k)
        cdef long long got = 0
        cdef object count
        view = self._views[slot]
        if view is None:
            view = memoryview(bytearray(self._chunk))
            self._views[slot] = view
            self._allocated += self._chunk
        if self._readinto is None:
            self._error = ValueError("the window has no source to read from")
            return False
        try:
            while got < want:
                count = self._readinto(view[got:want])
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


cdef class AnswerWatch:
    """For a write handle's current request: how many bytes of it the server had not
    acknowledged when its answer began (its status line).  See the twin's docstring."""

    cdef dict _sockets
    cdef object _pair
    cdef public long long unacknowledged

    def __init__(self, dict sockets):
        self._sockets = sockets
        self._pair = None
        self.unacknowledged = 0

    def reset(self):
        self._pair = None
        self.unacknowledged = 0

    def prereq(self, peer_ip, local_ip, peer_port, local_port):
        self._pair = (local_ip, local_port, peer_ip, peer_port)
        return PREREQFUNC_OK

    def header(self, bytes line):
        # The status line of the final answer (a 1xx is not one).  Never raise here.
        cdef Py_ssize_t n = len(line)
        cdef Py_ssize_t i
        if n < 5 or not line.startswith(b"HTTP/"):
            return
        i = 5
        while i < n and line[i] != 32:  # the version, up to its space
            i += 1
        while i < n and line[i] == 32:
            i += 1
        # Three digits, then the end or a space: a status, and not a 1xx (no final answer).
        if i + 3 > n or self._pair is None:
            return
        if not (48 <= line[i] <= 57 and 48 <= line[i + 1] <= 57 and 48 <= line[i + 2] <= 57):
            return
        if line[i] == 49 or (i + 3 < n and line[i + 3] not in (32, 13, 10)):
            return
        fd = self._sockets.get(self._pair, -1)
        self.unacknowledged = resto_unacknowledged(fd)
