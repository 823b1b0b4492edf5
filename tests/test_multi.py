"""The compiled module and its twin, each test on both: the chunk window, the answer watch,
and the loop (its wait, its sockets, the results it makes) driving real transfers."""

from __future__ import annotations

import ast
import io
import os
import random
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pycurl
import pytest

from resto_fast import Outcome, ReplicatorConfig, RestoError, UnexpectedStatusCode, _multi_py
from resto_fast import _engine as engine_module
from resto_fast import _handles as handles_module
from resto_fast._engine import Engine
from resto_fast._kinds import FIRST_FLIGHT, KINDS
from testbed import BlackHole, Nginx

PAUSE = pycurl.READFUNC_PAUSE
ABORT = pycurl.READFUNC_ABORT
CANTSEEK = pycurl.SEEKFUNC_CANTSEEK


class CountingSource(io.BytesIO):
    """A source that counts how many bytes were read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_served = 0

    def readinto(self, buffer: Any) -> int:
        count = super().readinto(buffer)
        self.bytes_served += count
        return count


def make(module: ModuleType, data: bytes, *, readers: int, chunk: int, chunks: int) -> Any:
    source = CountingSource(data)
    window = module.ChunkWindow(
        len(data), source.readinto, readers=readers, chunk_size=chunk, max_chunks=chunks
    )
    return window, source


def drain(window: Any, index: int, size: int = 1000) -> bytes:
    """Read reader ``index`` until it ends or pauses."""
    out = bytearray()
    while True:
        piece = window.read(index, size)
        if isinstance(piece, int) or not len(piece):
            return bytes(out)
        out += piece


DATA = bytes(random.Random(7).randrange(256) for _ in range(10_000))


def test_one_reader_gets_every_byte_in_order(window_module: ModuleType) -> None:
    window, source = make(window_module, DATA, readers=1, chunk=1024, chunks=2)
    assert drain(window, 0, 700) == DATA
    assert window.read(0, 100) == b""
    assert source.bytes_served == len(DATA)


def test_interleaved_readers_each_get_the_file_which_is_read_once(
    window_module: ModuleType,
) -> None:
    rng = random.Random(3)
    window, source = make(window_module, DATA, readers=3, chunk=512, chunks=4)
    outputs = [bytearray() for _ in range(3)]
    finished: set[int] = set()
    while len(finished) < 3:
        index = rng.randrange(3)
        piece = window.read(index, rng.randrange(1, 2000))
        if piece == PAUSE:
            continue
        assert not isinstance(piece, int)
        if not len(piece):
            finished.add(index)
        outputs[index] += piece
        window.resumable()
    assert all(bytes(out) == DATA for out in outputs)
    assert source.bytes_served == len(DATA) == window.bytes_read
    assert window.memory <= 4 * 512


def test_a_read_never_returns_more_than_asked(window_module: ModuleType) -> None:
    window, _ = make(window_module, DATA, readers=1, chunk=4096, chunks=2)
    for size in (1, 7, 4096, 5000):
        piece = window.read(0, size)
        assert not isinstance(piece, int)
        assert 0 < len(piece) <= size


def test_a_reader_ahead_of_the_window_pauses_until_the_slowest_moves(
    window_module: ModuleType,
) -> None:
    window, _ = make(window_module, DATA, readers=2, chunk=1000, chunks=2)
    assert len(drain(window, 0)) == 2000  # the fast reader fills the window, then:
    assert window.read(0, 1000) == PAUSE
    assert window.paused(0)
    assert window.paused_count == 1
    assert window.resumable() == []  # the slow reader still needs chunk 0
    assert bytes(window.read(1, 1000)) == DATA[:1000]  # it leaves chunk 0 ...
    assert window.resumable() == [0]  # ... so the window can slide
    assert not window.paused(0)
    assert bytes(window.read(0, 1000)) == DATA[2000:3000]
    assert window.memory == 2000


def test_dropping_the_slow_reader_releases_the_window(window_module: ModuleType) -> None:
    window, _ = make(window_module, DATA, readers=2, chunk=1000, chunks=2)
    drain(window, 0)
    assert window.read(0, 1000) == PAUSE
    window.drop(1)
    assert window.resumable() == [0]
    assert drain(window, 0) == DATA[2000:]
    assert window.read(1, 10) == ABORT


def test_memory_stays_within_the_window_whatever_the_size(window_module: ModuleType) -> None:
    data = bytes(200_000)
    window, _ = make(window_module, data, readers=2, chunk=1000, chunks=3)
    done = [False, False]
    while not all(done):
        for index in (0, 1):
            piece = window.read(index, 300 if index else 900)
            if isinstance(piece, int):
                window.resumable()
            elif not len(piece):
                done[index] = True
    assert window.memory <= 3000
    assert window.bytes_read == len(data)


def test_zero_bytes(window_module: ModuleType) -> None:
    window, _ = make(window_module, b"", readers=2, chunk=1000, chunks=2)
    assert window.read(0, 10) == b""
    assert window.read(1, 10) == b""
    assert window.memory == 0


def test_a_failing_source_aborts_every_reader_and_keeps_the_error(
    window_module: ModuleType,
) -> None:
    def broken(buffer: Any) -> int:
        raise OSError(5, "Input/output error")

    window = window_module.ChunkWindow(100, broken, readers=2, chunk_size=10, max_chunks=2)
    assert window.read(0, 10) == ABORT
    assert window.read(1, 10) == ABORT
    assert isinstance(window.error, OSError)


def test_an_error_wakes_paused_readers_so_they_can_abort(window_module: ModuleType) -> None:
    calls = 0

    def fails_third_time(buffer: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("disk gone")
        buffer[:] = bytes(len(buffer))
        return len(buffer)

    window = window_module.ChunkWindow(
        100, fails_third_time, readers=2, chunk_size=10, max_chunks=2
    )
    drain(window, 0, 10)  # chunks 0 and 1, then pauses
    assert window.paused(0)
    drain(window, 1, 10)  # reads 0, 1, then needs chunk 2: the third read fails
    assert window.error is not None
    assert window.resumable() == [0]
    assert window.read(0, 10) == ABORT


def test_a_source_shorter_than_announced_is_an_error(window_module: ModuleType) -> None:
    source = io.BytesIO(b"x" * 50)
    window = window_module.ChunkWindow(100, source.readinto, readers=1, chunk_size=40, max_chunks=4)
    assert drain(window, 0, 40) == b"x" * 40
    assert window.read(0, 40) == ABORT
    assert isinstance(window.error, EOFError)
    assert "50 bytes, 100 were expected" in str(window.error)


def test_a_source_that_returns_short_reads_is_read_until_full(window_module: ModuleType) -> None:
    data = bytes(range(256)) * 8

    class Trickle(io.RawIOBase):
        def __init__(self) -> None:
            self.position = 0

        def readinto(self, buffer: Any) -> int:
            piece = data[self.position : self.position + min(7, len(buffer))]
            buffer[: len(piece)] = piece
            self.position += len(piece)
            return len(piece)

    window = window_module.ChunkWindow(
        len(data), Trickle().readinto, readers=1, chunk_size=100, max_chunks=2
    )
    assert drain(window, 0, 64) == data


def test_seek_rewinds_within_the_window_only(window_module: ModuleType) -> None:
    window, _ = make(window_module, DATA, readers=2, chunk=1000, chunks=2)
    reader = window.reader(0)
    assert bytes(reader(500)) == DATA[:500]
    assert reader.seek(0, 0) == 0
    assert bytes(reader(500)) == DATA[:500]
    drain(window, 0)
    drain(window, 1)  # both past chunk 0 and 1 now; the window slides on the next read
    assert bytes(window.read(0, 1000)) == DATA[2000:3000]
    assert reader.seek(0, 0) == CANTSEEK
    assert reader.seek(2000, 1) == CANTSEEK  # only SEEK_SET is supported


def test_a_reader_is_the_window_read_at_one_index(window_module: ModuleType) -> None:
    window, _ = make(window_module, DATA, readers=2, chunk=1000, chunks=4)
    assert bytes(window.reader(1)(10)) == DATA[:10]
    assert window.position(1) == 10
    assert window.position(0) == 0
    with pytest.raises(IndexError):
        window.reader(2)


@pytest.mark.parametrize("index", [-1, 2])
def test_an_index_that_is_no_reader_is_refused_by_every_method(
    window_module: ModuleType, index: int
) -> None:
    """Both windows alike: -1 is no reader (not the last one), 2 is past the end."""
    window, _ = make(window_module, DATA, readers=2, chunk=1000, chunks=4)
    calls: list[tuple[str, tuple[int, ...]]] = [
        ("reader", ()),
        ("position", ()),
        ("paused", ()),
        ("read", (10,)),
        ("seek", (0, 0)),
        ("drop", ()),
    ]
    for method, more in calls:
        with pytest.raises(IndexError, match=f"no reader {index}"):
            getattr(window, method)(index, *more)
    assert window.position(1) == 0  # nothing moved


def test_a_buffer_window_shares_memory_and_never_pauses(window_module: ModuleType) -> None:
    data = bytearray(DATA)
    window = window_module.ChunkWindow.of_buffer(data, readers=2)
    first = window.read(0, 100)
    assert isinstance(first, memoryview)
    data[0] ^= 0xFF
    assert first[0] == data[0]  # a view on the caller's buffer, not a copy
    assert drain(window, 0, 3000) == bytes(data[100:])
    assert drain(window, 1, 3000) == bytes(data)
    assert window.memory == 0


def test_close_releases_the_chunks_and_aborts_later_reads(window_module: ModuleType) -> None:
    window, _ = make(window_module, DATA, readers=1, chunk=1000, chunks=2)
    window.read(0, 10)
    window.close()
    assert window.read(0, 10) == ABORT


def test_invalid_arguments_are_refused(window_module: ModuleType) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        window_module.ChunkWindow(10, None, readers=1, chunk_size=0, max_chunks=1)
    with pytest.raises(ValueError, match="size"):
        window_module.ChunkWindow(-1, None, readers=1, chunk_size=1, max_chunks=1)


def test_a_paused_reader_resumes_when_others_have_read_its_chunk(window_module: ModuleType) -> None:
    """A and B pause for chunk 2 while C lags at chunk 0; C then reads chunks 2 and 3
    itself and pauses at 4.  The window is full again (2 and 3), but A and B can read
    both: they must be resumable, or all three wait for ever."""
    window, _ = make(window_module, bytes(100), readers=3, chunk=10, chunks=2)
    for index in (0, 1):
        assert len(drain(window, index, 10)) == 20
        assert window.paused(index)
    assert len(drain(window, 2, 10)) == 40
    assert window.paused(2)
    assert window.resumable() == [0, 1]
    assert not window.paused(0)
    assert window.paused(2)
    assert window.paused_count == 1


def test_no_schedule_deadlocks(window_module: ModuleType) -> None:
    """Readers read at random in random order, as hosts of varied speed do; a paused
    reader waits for resumable().  Whatever the schedule, all of them reach the end."""
    rng = random.Random(11)
    data = bytes(rng.randrange(256) for _ in range(5000))
    for trial in range(200):
        readers = rng.randrange(1, 5)
        window, _ = make(
            window_module,
            data,
            readers=readers,
            chunk=rng.randrange(1, 700),
            chunks=rng.randrange(1, 4),
        )
        outputs = [bytearray() for _ in range(readers)]
        waiting: set[int] = set()
        done: set[int] = set()
        for _ in range(100_000):
            if len(done) == readers:
                break
            # The engine asks after each turn of its loop, and a turn can hold many reads.
            if rng.random() < 0.2:
                waiting -= set(window.resumable())
            runnable = [i for i in range(readers) if i not in waiting and i not in done]
            if not runnable:
                waiting -= set(window.resumable())
                runnable = [i for i in range(readers) if i not in waiting and i not in done]
            assert runnable, f"trial {trial}: every unfinished reader waits: deadlock"
            index = rng.choice(runnable)
            piece = window.read(index, rng.randrange(1, 900))
            if piece == PAUSE:
                waiting.add(index)
            elif isinstance(piece, int):
                pytest.fail(f"unexpected code {piece}")
            elif not len(piece):
                done.add(index)
            else:
                outputs[index] += piece
        assert all(bytes(out) == data for out in outputs), f"trial {trial}"


def test_the_answer_watch_reads_what_the_server_had_not_received(
    window_module: ModuleType,
) -> None:
    """Both watches: at the final status line (not a 1xx), the bytes the peer of the
    transfer's connection has not acknowledged; a line that only looks like one is harmless."""
    with socket.create_server(("127.0.0.1", 0)) as listener:  # never accepts, never reads
        client = socket.create_connection(listener.getsockname())
        with client:
            client.setblocking(False)
            try:
                while True:
                    client.send(b"x" * 65536)
            except BlockingIOError:
                pass  # the peer's buffers are full: the rest waits, unacknowledged
            local, peer = client.getsockname(), client.getpeername()
            pair = (local[0], local[1], peer[0], peer[1])
            watch = window_module.AnswerWatch({pair: client.fileno()})
            assert watch.prereq(peer[0], local[0], peer[1], local[1]) == pycurl.PREREQFUNC_OK
            for line in (b"HTTP/1.1 100 Continue\r\n", b"HTTP/x: y\r\n", b"Server: n\r\n"):
                watch.header(line)
            assert watch.unacknowledged == 0
            watch.header(b"HTTP/1.1 201 Created\r\n")
            assert watch.unacknowledged > 0
            watch.reset()
            assert watch.unacknowledged == 0
            watch.header(b"HTTP/1.1 201 Created\r\n")  # no connection named since the reset
            assert watch.unacknowledged == 0
            other = window_module.AnswerWatch({})
            other.prereq(peer[0], local[0], peer[1], local[1])
            other.header(b"HTTP/1.1 204 No Content\r\n")  # a connection it does not know
            assert other.unacknowledged == 0


def test_the_twins_and_the_stub_name_the_same_things(window_module: ModuleType) -> None:
    """What the twin exports, each implementation has (every public method and attribute of
    every class), and the stub that types the compiled module declares."""
    stub = ast.parse(Path(_multi_py.__file__).with_name("_multi.pyi").read_text())
    assert {node.name for node in stub.body if isinstance(node, ast.ClassDef)} == set(
        _multi_py.__all__
    )
    for name in _multi_py.__all__:
        twin = getattr(_multi_py, name)
        public = {member for member in dir(twin) if not member.startswith("_")}
        assert public <= set(dir(getattr(window_module, name))), name


# -- the loop ------------------------------------------------------------------

MiB = 1024 * 1024


@pytest.fixture
def make_engine(
    window_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[list[str]], Engine]]:
    """Engines whose loop (and the answer watches it resets) are ``window_module``'s."""
    monkeypatch.setattr(engine_module, "Loop", window_module.Loop)
    monkeypatch.setattr(handles_module, "AnswerWatch", window_module.AnswerWatch)
    engines: list[Engine] = []

    def make(hosts: list[str]) -> Engine:
        engines.append(Engine(ReplicatorConfig(hosts=tuple(hosts), base_url="/media/")))
        return engines[-1]

    yield make
    for engine in engines:
        engine.close()


def targets(hosts: list[str], name: str) -> list[tuple[str, str]]:
    return [(host, f"http://{host}/media/{name}") for host in hosts]


def test_an_operation_knows_its_kind_and_has_no_results_until_every_host_is_done(
    window_module: ModuleType,
) -> None:
    Operation = window_module.Operation
    two = targets(["m1:80", "m2:80"], "x")
    small = Operation("PUT", "x", two, body=b"s" * FIRST_FLIGHT)
    assert (small.kind, small.pending, small.results) == (KINDS["PUT_SMALL"], 2, [None, None])
    assert Operation("PUT", "x", two, body=b"l" * (FIRST_FLIGHT + 1)).kind is KINDS["PUT_BODY"]
    window = window_module.ChunkWindow.of_buffer(b"w", readers=2)
    assert Operation("PUT", "x", two, window=window).kind is KINDS["PUT"]
    assert Operation("DELETE", "d", two, directory=True).kind is KINDS["DELETE_TREE"]
    assert Operation("DELETE", "x", two).kind is KINDS["DELETE"]
    with pytest.raises(ValueError, match="unsupported method 'PATCH'"):
        Operation("PATCH", "x", two)
    with pytest.raises(RestoError, match="'x' has not finished on every host"):
        small.host_results()


@pytest.mark.nginx
def test_the_loop_runs_every_kind_of_request_and_makes_its_results(
    window_module: ModuleType, make_engine: Callable[[list[str]], Engine], media: Nginx
) -> None:
    Operation = window_module.Operation
    engine = make_engine(media.hosts)
    hosts = media.hosts
    big = os.urandom(3 * MiB)
    window = window_module.ChunkWindow.of_buffer(big, readers=len(hosts))
    small = Operation("PUT", "small.bin", targets(hosts, "small.bin"), body=b"small")
    streamed = Operation("PUT", "big.bin", targets(hosts, "big.bin"), window=window)
    engine.run([small, streamed], concurrency=2)
    for op, size in ((small, 5), (streamed, len(big))):
        assert [(r.outcome, r.status, r.transferred) for r in op.host_results()] == [
            (Outcome.CREATED, 201, size)
        ] * len(hosts)
    assert all(media.path(i, "big.bin").read_bytes() == big for i in range(len(hosts)))

    got: list[io.BytesIO] = [io.BytesIO() for _ in hosts]
    head = Operation("HEAD", "small.bin", targets(hosts, "small.bin"))
    get = Operation("GET", "big.bin", targets(hosts, "big.bin"), sinks=[b.write for b in got])
    missing = Operation("HEAD", "none.bin", targets(hosts, "none.bin"))
    refused = Operation("GET", "x.bin", targets([media.status_host(500)], "x.bin"), sinks=[print])
    engine.run([head, get, missing, refused], concurrency=4)
    for result in head.host_results():
        assert (result.outcome, result.size) == (Outcome.FOUND, 5)
        assert result.modified is not None
    assert [r.transferred for r in get.host_results()] == [len(big)] * len(hosts)
    assert all(buffer.getvalue() == big for buffer in got)
    assert {r.outcome for r in missing.host_results()} == {Outcome.MISSING}
    (failure,) = refused.host_results()  # an answer the kind does not expect: the engine's
    assert failure.outcome is Outcome.FAILED
    assert isinstance(failure.error, UnexpectedStatusCode)
    assert failure.transferred == 0  # the error page never reached the sink

    delete = Operation("DELETE", "small.bin", targets(hosts, "small.bin"))
    engine.run_one(delete)
    assert {r.outcome for r in delete.host_results()} == {Outcome.DELETED}


@pytest.mark.nginx
def test_the_loop_waits_on_hundreds_of_sockets(
    window_module: ModuleType, make_engine: Callable[[list[str]], Engine], media: Nginx
) -> None:
    """Far more connections than the loop's first room for them: its set of sockets grows."""
    Operation = window_module.Operation
    engine = make_engine(media.hosts)
    here = media.path(0, "here.bin")
    here.parent.mkdir(parents=True, exist_ok=True)
    here.write_bytes(b"here")
    ops = [Operation("HEAD", "here.bin", targets(media.hosts[:1], "here.bin")) for _ in range(80)]
    ops += [Operation("HEAD", "gone.bin", targets(media.hosts, "gone.bin")) for _ in range(80)]
    engine.run(ops, concurrency=160)
    assert {r.outcome for op in ops[:80] for r in op.host_results()} == {Outcome.FOUND}
    assert {r.outcome for op in ops[80:] for r in op.host_results()} == {Outcome.MISSING}
    assert max(r.new_connections for op in ops for r in op.host_results()) == 1


class Interrupted(Exception):
    pass


@pytest.mark.nginx
def test_a_signal_during_the_wait_reaches_the_caller_and_the_engine_stays_usable(
    window_module: ModuleType, make_engine: Callable[[list[str]], Engine], media: Nginx
) -> None:
    """The wait is poll(2) without the GIL: a signal handler's exception must come out of
    it (as it does out of select.poll), with every transfer aborted."""
    Operation = window_module.Operation

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    engine = make_engine(media.hosts)
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        with BlackHole() as hole:
            op = Operation("PUT", "hole.bin", targets([hole.host], "hole.bin"), body=b"x")
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            with pytest.raises(Interrupted):
                engine.run([op])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    (aborted,) = op.host_results()
    assert aborted.outcome is Outcome.FAILED
    assert aborted.error is not None
    again = Operation("PUT", "after.bin", targets(media.hosts, "after.bin"), body=b"after")
    engine.run_one(again)
    assert {r.outcome for r in again.host_results()} == {Outcome.CREATED}
