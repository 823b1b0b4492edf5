"""Every kind of source is opened with its size known and without reading it into memory."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from resto_fast._sources import SPOOL_MEMORY_LIMIT, NotASource, open_source


def read_all(source: object) -> bytes:
    opened = open_source(source)  # type: ignore[arg-type]
    try:
        window = opened.window(readers=1, chunk_size=1000, max_chunks=2)
        out = bytearray()
        while True:
            piece = window.read(0, 700)
            assert not isinstance(piece, int), window.error
            if not len(piece):
                break
            out += piece
        assert len(out) == opened.size
        return bytes(out)
    finally:
        opened.close()


def test_bytes_like(tmp_path: Path) -> None:
    assert read_all(b"abc") == b"abc"
    assert read_all(bytearray(b"abc")) == b"abc"
    assert read_all(memoryview(b"abcdef")[1:4]) == b"bcd"
    with pytest.raises(TypeError, match="contiguous"):
        open_source(memoryview(b"abcdef")[::2])


def test_paths(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(5000))
    assert read_all(path) == path.read_bytes()
    assert read_all(str(path)) == path.read_bytes()
    with pytest.raises(FileNotFoundError):
        open_source(tmp_path / "missing")
    with pytest.raises(IsADirectoryError):
        open_source(tmp_path)


def test_a_path_is_closed_after_use(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 10)
    before = len(os.listdir("/proc/self/fd"))
    opened = open_source(path)
    assert len(os.listdir("/proc/self/fd")) == before + 1
    opened.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_seekable_files_send_from_their_current_position() -> None:
    file = io.BytesIO(b"0123456789")
    file.seek(4)
    assert read_all(file) == b"456789"
    assert not file.closed  # the caller's file stays the caller's


def test_a_file_with_read_only() -> None:
    class ReadOnly:
        def __init__(self) -> None:
            self.inner = io.BytesIO(b"z" * 3000)

        def read(self, size: int = -1) -> bytes:
            return self.inner.read(size)

    assert read_all(ReadOnly()) == b"z" * 3000  # unknown length: spooled first


def test_a_pipe_is_spooled_to_learn_its_length(tmp_path: Path) -> None:
    data = os.urandom(SPOOL_MEMORY_LIMIT + 12345)  # past the in-memory limit: spooled to disk
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with os.fdopen(write_fd, "wb") as writer:
            writer.write(data)

    thread = threading.Thread(target=feed)
    thread.start()
    with os.fdopen(read_fd, "rb") as reader:
        assert read_all(reader) == data
    thread.join()


def test_text_is_refused() -> None:
    with pytest.raises(NotASource, match="binary mode"):
        open_source(io.StringIO("text"))  # type: ignore[arg-type]

    class TextRead:
        def read(self, size: int = -1) -> str:
            return "text"

    with pytest.raises(ValueError, match="not bytes"):  # what it read is wrong, not what it is
        open_source(TextRead())  # type: ignore[arg-type]
    with pytest.raises(NotASource, match="a source is"):
        open_source(12)  # type: ignore[arg-type]
    assert issubclass(NotASource, TypeError)


def test_bytes_are_a_body_as_they_are() -> None:
    data = b"x" * (5 * 1024 * 1024)
    assert open_source(data).body(1024) is data  # in memory already: no copy, whatever the size


def test_a_source_that_fits_in_one_chunk_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "small.bin"
    path.write_bytes(b"0123456789")
    opened = open_source(path)
    assert opened.body(10) == b"0123456789"
    opened.close()
    assert open_source(bytearray(b"abc")).body(10) == b"abc"
    assert open_source(io.BytesIO(b"abc")).body(10) == b"abc"
    larger = open_source(path)
    assert larger.body(9) is None  # larger than a chunk: it will stream
    larger.close()


def test_a_body_shorter_than_its_announced_size_is_an_error(tmp_path: Path) -> None:
    class Shrinking(io.BytesIO):
        def seek(self, offset: int, whence: int = 0) -> int:
            return 100 if whence == 2 else super().seek(offset, whence)

    with pytest.raises(EOFError, match="short"):
        open_source(Shrinking(b"only ten b")).body(1000)
