"""What can be uploaded, and how each kind is opened for one pass of reading.

A source is a path, bytes-like data, or a binary file object (anything with
``read``: Django ``File`` and uploaded files, ``open(..., "rb")``, sockets'
makefile, pipes).  Whatever the kind, the upload needs its size first, since
every request carries a Content-Length: a path is stat'ed, a seekable file is
measured from its current position to its end, and a stream of unknown length
is spooled to a temporary file (in memory up to a small limit, on disk past
it).  Nothing reads a large file into memory.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Callable
from typing import IO, Protocol, TypeAlias, cast, runtime_checkable

from ._buffer import ChunkWindow

__all__ = ["NotASource", "OpenSource", "Source", "SupportsRead", "file_stamp", "open_source"]

#: Streams of unknown length are spooled in memory up to this size, then to disk.
SPOOL_MEMORY_LIMIT = 1024 * 1024
_SPOOL_READ = 256 * 1024


@runtime_checkable
class SupportsRead(Protocol):
    """A binary file object, as far as an upload needs one."""

    def read(self, size: int = ..., /) -> bytes: ...


Source: TypeAlias = "str | os.PathLike[str] | bytes | bytearray | memoryview | SupportsRead"
ReadInto: TypeAlias = Callable[[memoryview], "int | None"]


class OpenSource:
    """One source, opened: its size, a way to read it once, and what to close after."""

    __slots__ = ("_close", "_data", "_read", "_readinto", "_rewind", "_whole", "size")

    def __init__(
        self,
        size: int,
        *,
        readinto: ReadInto | None = None,
        read: Callable[[int], bytes] | None = None,
        data: memoryview | None = None,
        whole: bytes | None = None,
        close: Callable[[], None] | None = None,
        rewind: Callable[[], object] | None = None,
    ) -> None:
        self.size = size
        self._readinto = readinto
        self._read = read
        self._data = data
        self._whole = whole  # the source itself, when it is a bytes object
        self._close = close
        self._rewind = rewind

    def body(self, limit: int) -> bytes | None:
        """All of the content as one ``bytes``, if it is ``bytes`` already or fits in ``limit``.

        Such a body goes to libcurl whole, for every host, with no window
        and no read callback.  A larger source returns None: it streams
        through a window.  Reading here is the source's one read.
        """
        if self._whole is not None:
            return self._whole
        if self.size > limit:
            return None
        if self._data is not None:
            return bytes(self._data)
        assert self._read is not None
        pieces = []
        missing = self.size
        while missing:
            piece = _checked(self._read(missing))
            if not piece:
                raise EOFError(f"the source ended {missing} bytes short of its {self.size}")
            if len(piece) > missing:
                raise ValueError(f"read({missing}) returned {len(piece)} bytes, more than asked")
            pieces.append(piece)
            missing -= len(piece)
        return pieces[0] if len(pieces) == 1 and type(pieces[0]) is bytes else b"".join(pieces)

    def window(self, *, readers: int, chunk_size: int, max_chunks: int) -> ChunkWindow:
        """A chunk window over this source for ``readers`` hosts."""
        data = self._data if self._data is not None else self._whole
        if data is not None:
            return ChunkWindow.of_buffer(data, readers=readers)
        chunk = max(1, min(chunk_size, self.size))
        chunks_needed = -(-self.size // chunk)
        return ChunkWindow(
            self.size,
            self._readinto,
            readers=readers,
            chunk_size=chunk,
            max_chunks=max(1, min(max_chunks, chunks_needed)),
        )

    def rewind(self) -> bool:
        """Go back to the start for a second pass (a PUT retried after its directories
        were made); False when that cannot be done, and the source is then spent."""
        if self._data is not None or self._whole is not None:
            return True
        if self._rewind is None:
            return False
        try:
            self._rewind()
        except (OSError, ValueError):
            return False
        return True

    def close(self) -> None:
        close, self._close = self._close, None
        if close is not None:
            close()


def file_stamp(path: str) -> tuple[int, int, int] | None:
    """What tells this version of a file from the next (inode, mtime in ns, size); None when
    it is gone.  A resync and a replication task look again after sending a file: a stamp
    that changed means what went out may be stale, or half old and half new."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


class NotASource(TypeError):
    """What was given as a source is none: text, a text-mode file, a number..."""


def open_source(source: Source) -> OpenSource:
    """Open a source for one upload.

    Raises :class:`NotASource` (a ``TypeError``) for something that is not a
    source (text, a text-mode file), and whatever opening or reading it
    raises otherwise; the caller makes a :class:`SourceError` of both, naming
    the file.
    """
    if type(source) is bytes:  # the common case first: whole already, nothing to check
        return OpenSource(len(source), whole=source)
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source)
        if not view.contiguous:
            raise NotASource("a memoryview source must be contiguous")
        view = view.cast("B")
        return OpenSource(view.nbytes, data=view, whole=source if type(source) is bytes else None)
    if isinstance(source, str | os.PathLike):
        return _open_path(os.fspath(source))
    if isinstance(cast(object, source), io.TextIOBase):  # declared binary, passed as text
        raise NotASource("a file source must be opened in binary mode ('rb'), not text mode")
    # io's own files first: the protocol's check costs microseconds, and comes only after.
    if isinstance(source, io.RawIOBase | io.BufferedIOBase | SupportsRead):
        return _open_file(source)
    raise NotASource(
        f"a source is a path, bytes-like data or a binary file object, not {type(source).__name__}"
    )


def _open_path(path: str) -> OpenSource:
    raw = open(path, "rb", buffering=0)  # noqa: SIM115 - OpenSource.close closes it
    try:
        info = os.fstat(raw.fileno())
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device: its length is unknown
            with raw:
                return _spool(raw)
    except BaseException:
        raw.close()
        raise
    return OpenSource(
        info.st_size,
        readinto=raw.readinto,
        read=raw.read,
        close=raw.close,
        rewind=lambda: raw.seek(0),
    )


def _open_file(file: SupportsRead) -> OpenSource:
    measured = _remaining_size(file)
    if measured is None:
        return _spool(file)
    size, position = measured
    seekable_file: IO[bytes] = file  # type: ignore[assignment]  # _remaining_size saw seek
    return OpenSource(
        size,
        readinto=_readinto_of(file),
        read=file.read,
        rewind=lambda: seekable_file.seek(position),
    )


def _remaining_size(file: SupportsRead) -> tuple[int, int] | None:
    """Bytes from the current position to the end, and that position; None when the
    file cannot tell."""
    try:
        seekable = getattr(file, "seekable", None)
        if seekable is None or not seekable():
            return None
        seekable_file: IO[bytes] = file  # type: ignore[assignment]
        position = seekable_file.tell()
        end = seekable_file.seek(0, os.SEEK_END)
        seekable_file.seek(position)
    except (OSError, ValueError, AttributeError):
        return None
    return max(0, end - position), position


def _checked(data: object) -> bytes | bytearray | memoryview:
    """What a source's ``read()`` returned, refused unless it is binary."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"the source's read() returned {type(data).__name__}, not bytes")
    return data


def _readinto_of(file: SupportsRead) -> ReadInto:
    readinto = getattr(file, "readinto", None)
    if callable(readinto):
        return readinto  # type: ignore[no-any-return]

    def copy_read(view: memoryview) -> int:
        data = _checked(file.read(len(view)))
        count = len(data)
        if count > len(view):
            raise ValueError(f"read({len(view)}) returned {count} bytes, more than asked")
        view[:count] = data
        return count

    return copy_read


def _spool(file: SupportsRead) -> OpenSource:
    """Copy a stream of unknown length aside, to learn its size before sending it."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_LIMIT)  # noqa: SIM115
    try:
        while True:
            data = _checked(file.read(_SPOOL_READ))
            if not data:
                break
            if len(data) > _SPOOL_READ:
                raise ValueError(f"read({_SPOOL_READ}) returned {len(data)} bytes, more than asked")
            spool.write(data)
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return OpenSource(
        size,
        readinto=spool.readinto,
        read=spool.read,
        close=spool.close,
        rewind=lambda: spool.seek(0),
    )
