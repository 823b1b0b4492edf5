# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled hot path (twin of ``_multi_py.py``): the chunk window that feeds every host's
upload, the answer watch libcurl calls for every header line of a PUT's answer, and the
multi loop's per-transfer and per-wake-up work (:class:`Loop`).

The file is read once, a chunk at a time, into a ring of at most
``max_chunks`` buffers; each host's READFUNCTION returns a memoryview slice at
its own position and pauses when it runs ahead of the ring.  Reader state is
kept in C arrays so the per-callback work is a few integer operations and
one slice.  The loop waits with poll(2) on a C array of the sockets libcurl
asks for, the GIL released, and reads a transfer's fields as C attributes.
Behaviour and interface are exactly those of the pure-Python twin; the same
tests run on both.
"""

from cpython.exc cimport PyErr_CheckSignals, PyErr_SetFromErrno
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.errno cimport EINTR, errno
from libc.math cimport ceil
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from posix.unistd cimport read

import pycurl

from ._breaker import BREAKERS
from ._exceptions import RestoError
from ._kinds import FIRST_FLIGHT, KINDS, kind_of
from ._results import HostResult, Outcome

cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents
    ctypedef unsigned long nfds_t
    int poll(pollfd *fds, nfds_t nfds, int timeout)
    enum:
        POLLIN
        POLLPRI
        POLLOUT
        POLLERR
        POLLHUP
        POLLNVAL

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

    cpdef reset(self):
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


# -- the loop ------------------------------------------------------------------

cdef int CURL_POLL_IN = pycurl.POLL_IN
cdef int CURL_POLL_OUT = pycurl.POLL_OUT
cdef int CURL_POLL_INOUT = pycurl.POLL_INOUT
cdef int CSELECT_IN = pycurl.CSELECT_IN
cdef int CSELECT_OUT = pycurl.CSELECT_OUT
cdef int CSELECT_ERR = pycurl.CSELECT_ERR
cdef int SOCKET_TIMEOUT = pycurl.SOCKET_TIMEOUT
cdef int URL = pycurl.URL
cdef int POSTFIELDS = pycurl.POSTFIELDS
cdef int INFILESIZE_LARGE = pycurl.INFILESIZE_LARGE
cdef int READFUNCTION = pycurl.READFUNCTION
cdef int SEEKFUNCTION = pycurl.SEEKFUNCTION
cdef int HEADERFUNCTION = pycurl.HEADERFUNCTION
cdef int WRITEFUNCTION = pycurl.WRITEFUNCTION
cdef int PAUSE_CONT = pycurl.PAUSE_CONT
cdef int RESPONSE_CODE = pycurl.RESPONSE_CODE
cdef int SIZE_UPLOAD_T = pycurl.SIZE_UPLOAD_T
cdef int SIZE_DOWNLOAD_T = pycurl.SIZE_DOWNLOAD_T
cdef int STARTTRANSFER_TIME_T = pycurl.STARTTRANSFER_TIME_T
cdef int POSTTRANSFER_TIME_T = pycurl.POSTTRANSFER_TIME_T
cdef int NUM_CONNECTS = pycurl.NUM_CONNECTS
cdef int CONTENT_LENGTH_DOWNLOAD_T = pycurl.CONTENT_LENGTH_DOWNLOAD_T
cdef int INFO_FILETIME = pycurl.INFO_FILETIME
cdef object FOUND = Outcome.FOUND
cdef object PUT_SMALL = KINDS["PUT_SMALL"]
cdef object PUT_BODY = KINDS["PUT_BODY"]
# libcurl keeps a timer while anything runs; this only bounds a wait it forgot.
cdef int LONGEST_WAIT_MS = 1000


cdef inline double _monotonic() noexcept nogil:
    # CLOCK_MONOTONIC, as time.monotonic() reads on Linux: the engine mixes both.
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef class Operation:
    """One method on one file, fanned out to some hosts; the engine fills ``results``."""

    cdef public object method
    cdef public object name
    cdef public object targets
    cdef public object window
    cdef public object body
    cdef public object kind
    cdef public object sinks
    cdef public list results
    cdef public list transfers
    cdef public Py_ssize_t pending

    def __init__(self, method, name, targets, *, window=None, body=None, sinks=None,
                 directory=False):
        cdef Py_ssize_t count = len(targets)
        self.method = method
        self.name = name
        self.targets = targets
        self.window = window
        self.body = body
        if body is not None and method == "PUT":  # kind_of's rule, without a call per put
            self.kind = PUT_SMALL if len(body) <= FIRST_FLIGHT else PUT_BODY
        else:
            self.kind = kind_of(method, directory=directory)
        self.sinks = sinks
        self.results = [None] * count
        self.transfers = [None] * count
        self.pending = count

    def host_results(self):
        if self.pending:
            raise RestoError(f"{self.method} {self.name!r} has not finished on every host")
        return tuple(self.results)


cdef class Transfer:
    """One host's request of an operation, while it runs."""

    cdef public Operation op
    cdef public Py_ssize_t index
    cdef public object host
    cdef public object url
    cdef public object handle
    cdef public double started
    cdef public double last_progress
    cdef public long long mark
    cdef public object gate
    cdef public object watch

    def __init__(self, Operation op, Py_ssize_t index, handle, double now):
        self.op = op
        self.index = index
        self.host, self.url = op.targets[index]
        self.handle = handle
        self.started = now
        self.last_progress = now
        self.mark = 0
        self.gate = None
        self.watch = None


cdef class StatusGate:
    """Response body writer: passes the body on only after the status line the method
    succeeds with (200 for GET, 207 for PROPFIND), counts what it passed."""

    cdef object _sink
    cdef int _status
    cdef int _wanted
    cdef public object error
    cdef public long long written

    def __init__(self, sink, int wanted):
        self._sink = sink
        self._status = 0
        self._wanted = wanted
        self.error = None
        self.written = 0

    def header(self, bytes line):
        if line.startswith(b"HTTP/"):
            fields = line.split(None, 2)
            self._status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0

    def write(self, bytes data):
        if self._status != self._wanted:
            return None
        try:
            self._sink(data)
        except Exception as exc:
            self.error = exc
            return 0
        self.written += len(data)
        return None


cdef class Loop:
    """The per-transfer and per-wake-up work of one engine's ``CurlMulti`` (see the twin)."""

    cdef public object multi
    cdef public dict active
    cdef public list done
    cdef object _handles
    cdef dict _idle
    cdef dict _watches
    cdef dict _tripped
    cdef object _watched
    cdef dict _known
    cdef object _finish
    cdef object _skipped
    cdef int _wake_fd
    cdef pollfd *_fds
    cdef pollfd *_ready
    cdef Py_ssize_t _nfds
    cdef Py_ssize_t _capacity
    cdef Py_ssize_t _ready_capacity

    def __cinit__(self):
        self._fds = NULL
        self._ready = NULL
        self._nfds = 0
        self._capacity = 0
        self._ready_capacity = 0

    def __init__(self, multi, handles, sockets, finish, skipped):
        self.multi = multi
        self.active = {}
        self.done = []
        self._handles = handles
        self._idle = {}
        self._watches = {}
        self._tripped = BREAKERS.tripped
        self._watched = sockets.watched
        self._known = sockets.known
        self._finish = finish
        self._skipped = skipped
        self._wake_fd = -1
        multi.setopt(pycurl.M_SOCKETFUNCTION, self.on_socket)

    def __dealloc__(self):
        PyMem_Free(self._fds)
        PyMem_Free(self._ready)

    def wake_on(self, int fd):
        self._wake_fd = fd
        self._set(fd, POLLIN)

    # -- the sockets to wait on ------------------------------------------------

    cdef Py_ssize_t _find(self, int fd):
        cdef Py_ssize_t i
        for i in range(self._nfds):
            if self._fds[i].fd == fd:
                return i
        return -1

    cdef int _set(self, int fd, short events) except -1:
        cdef Py_ssize_t i = self._find(fd)
        cdef pollfd *grown
        if i < 0:
            if self._nfds == self._capacity:
                grown = <pollfd *>PyMem_Realloc(
                    self._fds, (self._capacity * 2 + 16) * sizeof(pollfd)
                )
                if grown == NULL:
                    raise MemoryError()
                self._fds = grown
                self._capacity = self._capacity * 2 + 16
            i = self._nfds
            self._nfds += 1
            self._fds[i].fd = fd
        self._fds[i].events = events
        self._fds[i].revents = 0
        return 0

    cdef void _unset(self, int fd) noexcept:
        cdef Py_ssize_t i = self._find(fd)
        if i >= 0:
            self._nfds -= 1
            self._fds[i] = self._fds[self._nfds]

    def on_socket(self, int what, int fd, multi, socketp):
        """libcurl's socket callback: what to watch ``fd`` for, or to stop watching it."""
        if what == CURL_POLL_IN:
            self._set(fd, POLLIN)
        elif what == CURL_POLL_OUT:
            self._set(fd, POLLOUT)
        elif what == CURL_POLL_INOUT:
            self._set(fd, POLLIN | POLLOUT)
        else:  # POLL_REMOVE (of a socket never watched, too: one libcurl only resolved for)
            self._unset(fd)
            return
        if fd not in self._known:  # a new connection's
            self._watched(fd)

    # -- the loop --------------------------------------------------------------

    def start(self, Operation op):
        """Add one transfer per host and let libcurl start them at once."""
        cdef double now = _monotonic()
        cdef Py_ssize_t index = 0
        cdef Transfer transfer
        cdef AnswerWatch watch
        kind = op.kind
        window = op.window
        body = op.body
        cdef bint watch_answer = kind.watch_answer
        multi = self.multi
        for host, url in op.targets:
            if self._tripped:
                down = BREAKERS.skip(host, now)
                if down is not None:
                    self._skipped(op, index, down)
                    index += 1
                    continue
            handle = self._take(host, kind)
            handle.setopt(URL, url)
            transfer = Transfer.__new__(Transfer)
            transfer.op = op
            transfer.index = index
            transfer.host = host
            transfer.url = url
            transfer.handle = handle
            transfer.started = now
            transfer.last_progress = now
            if watch_answer:
                watch = self._watches[handle]
                watch.reset()
                transfer.watch = watch
            if body is not None:
                handle.setopt(POSTFIELDS, body)  # no copy: pycurl keeps a reference
            elif window is not None:
                reader = window.reader(index)
                handle.setopt(INFILESIZE_LARGE, window.size)
                handle.setopt(READFUNCTION, reader)
                handle.setopt(SEEKFUNCTION, reader.seek)
            elif op.sinks is not None:
                status = kind.body_status
                assert status is not None, f"{kind.name} has no body to keep"
                transfer.gate = gate = StatusGate(op.sinks[index], status)
                handle.setopt(HEADERFUNCTION, gate.header)
                handle.setopt(WRITEFUNCTION, gate.write)
            op.transfers[index] = transfer
            self.active[handle] = transfer
            multi.add_handle(handle)
            index += 1
        if not op.pending:
            return
        running = multi.socket_action(SOCKET_TIMEOUT, 0)[1]
        if running < len(self.active):
            self.collect()

    def until_done(self, Operation op, double wake_by):
        """Step until ``op`` has finished on every host, or until ``wake_by`` (the engine's
        next stall check); return the time the last step started at."""
        cdef double now = 0
        window = op.window
        while op.pending:
            now = self.step(wake_by)
            if window is not None and window.paused_count:
                self.resume(op, now)
            if now >= wake_by:
                break
        return now

    cpdef double step(self, double wake_by) except? -1:
        """Wait for sockets or libcurl's timer, let libcurl act, collect what finished;
        return the time the step started at."""
        multi = self.multi
        cdef double now = _monotonic()
        cdef long timer_ms = multi.timeout()
        cdef double wait_ms
        cdef int wait, found, mask, fd
        cdef Py_ssize_t i, ready
        cdef short event
        cdef char scrap[4096]
        cdef Py_ssize_t running
        if timer_ms == 0:
            running = multi.socket_action(SOCKET_TIMEOUT, 0)[1]
        else:
            wait_ms = (wake_by - now) * 1000
            if 0 < timer_ms < wait_ms:
                wait_ms = timer_ms
            if wait_ms <= 0:
                wait = 0
            elif wait_ms > LONGEST_WAIT_MS:
                wait = LONGEST_WAIT_MS
            else:
                wait = <int>ceil(wait_ms)
            with nogil:
                found = poll(self._fds, self._nfds, wait)
            if found < 0:
                if errno != EINTR:
                    PyErr_SetFromErrno(OSError)
                PyErr_CheckSignals()  # a handler's exception goes up, as select.poll's would
                found = 0
            running = len(self.active)
            # libcurl changes the array from its socket callback: act on a copy of what is ready.
            if self._ready_capacity < self._nfds:
                PyMem_Free(self._ready)
                self._ready = <pollfd *>PyMem_Malloc(self._capacity * sizeof(pollfd))
                if self._ready == NULL:
                    self._ready_capacity = 0
                    raise MemoryError()
                self._ready_capacity = self._capacity
            ready = 0
            if found > 0:
                for i in range(self._nfds):
                    if self._fds[i].revents:
                        self._ready[ready] = self._fds[i]
                        ready += 1
            for i in range(ready):
                fd = self._ready[i].fd
                event = self._ready[i].revents
                if fd == self._wake_fd:
                    while read(fd, scrap, sizeof(scrap)) > 0:
                        pass
                    continue
                mask = 0
                if event & (POLLIN | POLLPRI | POLLHUP):
                    mask |= CSELECT_IN
                if event & POLLOUT:
                    mask |= CSELECT_OUT
                if event & (POLLERR | POLLNVAL):
                    mask |= CSELECT_ERR
                if event & POLLNVAL:  # closed under us: stop watching it
                    self._unset(fd)
                running = multi.socket_action(fd, mask)[1]
            if ready == 0:  # the wait ended on a timer: libcurl's, or ours
                running = multi.socket_action(SOCKET_TIMEOUT, 0)[1]
        if running < len(self.active):
            self.collect()
        return now

    cpdef collect(self):
        """Make the results of the transfers libcurl says have ended."""
        cdef Transfer transfer
        while True:
            queued, succeeded, failed = self.multi.info_read()
            for handle in succeeded:
                transfer = self.active[handle]
                if not self._settle(transfer):
                    self._finish(transfer, 0, "")
            for handle, code, message in failed:
                self._finish(self.active[handle], code, message)
            if not queued:
                return

    def resume(self, Operation op, double now):
        """Unpause the hosts of ``op`` that its window lets move again."""
        cdef Transfer transfer
        for index in op.window.resumable():
            transfer = op.transfers[index]
            if transfer is not None and transfer.handle in self.active:
                transfer.last_progress = now
                transfer.handle.pause(PAUSE_CONT)

    cdef bint _settle(self, Transfer transfer) except -1:
        # The rule for a PUT is the twin's (see its docstring).
        handle = transfer.handle
        cdef Operation op = transfer.op
        getinfo = handle.getinfo
        status = getinfo(RESPONSE_CODE)
        outcome = op.kind.outcomes.get(status)
        if outcome is None:
            return False
        window = op.window
        body = op.body
        cdef long long transferred, length
        size = modified = None
        if window is not None or body is not None:
            transferred = getinfo(SIZE_UPLOAD_T)
            length = window.size if window is not None else len(body)
            watch = transfer.watch
            if (
                transferred < length
                or (watch is not None and watch.unacknowledged)
                or getinfo(STARTTRANSFER_TIME_T) < getinfo(POSTTRANSFER_TIME_T)
            ):
                return False
        elif transfer.gate is not None:
            transferred = (<StatusGate>transfer.gate).written
        else:
            transferred = getinfo(SIZE_DOWNLOAD_T)
        if outcome is FOUND:
            length = getinfo(CONTENT_LENGTH_DOWNLOAD_T)
            filetime = getinfo(INFO_FILETIME)
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
                _monotonic() - transfer.started,
                None,
                getinfo(NUM_CONNECTS),
                size,
                modified,
            ),
        )
        return True

    cpdef end(self, Transfer transfer, result):
        """Record ``result`` as the transfer's and give its handle back."""
        handle = transfer.handle
        del self.active[handle]
        self.multi.remove_handle(handle)
        self.record(transfer.op, transfer.index, result)
        self._idle[transfer.op.kind, transfer.host].append(handle)

    cpdef record(self, Operation op, Py_ssize_t index, result):
        """Host ``index`` of ``op`` is done, with ``result`` (sent or not)."""
        window = op.window
        if window is not None:
            window.drop(index)
        op.results[index] = result
        op.transfers[index] = None
        op.pending -= 1
        if not op.pending:
            self.done.append(op)

    cdef object _take(self, host, kind):
        """An idle handle for ``kind`` to ``host``, or a new one."""
        key = (kind, host)
        cdef list idle = self._idle.get(key)
        if idle:
            return idle.pop()
        if idle is None:
            self._idle[key] = []
        handle, watch = self._handles.new(kind)
        if watch is not None:
            self._watches[handle] = watch
        return handle
