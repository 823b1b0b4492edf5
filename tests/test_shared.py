"""Threads saving at once share one loop: results to the thread that asked, files whole,
fork and close handled, the loop thread gone when idle."""

from __future__ import annotations

import io
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from resto_fast import ClosedError, OperationResult, Replicator, TransportError, _shared
from testbed import Nginx, free_port

pytestmark = pytest.mark.nginx

MiB = 1024 * 1024


def loop_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "resto_fast-loop"]


def in_threads(count: int, work: Callable[[int], object]) -> list[BaseException]:
    """Run ``work(i)`` in ``count`` threads started together; the exceptions they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        try:
            work(index)
        except BaseException as exc:
            errors.append(exc)

    # Daemon threads, joined with a bound: a deadlock fails the test instead of hanging it.
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "threads still waiting: a deadlock"
    return errors


class Held(io.BytesIO):
    """A large source that holds its put after the first chunk: ``inside`` is set then, and
    the read goes on once ``release`` is (a put that stays running while a test acts)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.inside, self.release = threading.Event(), threading.Event()

    def readinto(self, buffer: Any) -> int:
        if self.tell():
            self.inside.set()
            self.release.wait(30)
        return super().readinto(buffer)


@pytest.fixture
def quick_idle(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_shared, "IDLE_SECONDS", 0.2)
    yield
    deadline = time.monotonic() + 5
    while loop_threads() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_sixteen_threads_share_one_loop_and_each_gets_its_own_results(
    media: Nginx, quick_idle: None
) -> None:
    seen_loop: list[bool] = []
    results: dict[str, OperationResult] = {}
    with Replicator(media.hosts, "/media/") as replicator:

        def work(index: int) -> None:
            for round_ in range(20):
                name = f"t{index}/{round_}.bin"
                results[name] = replicator.put(name, name.encode() * 100)
                seen_loop.append(bool(loop_threads()))

        assert in_threads(16, work) == []
    assert any(seen_loop)  # the threads did hand over
    assert len(results) == 16 * 20
    for name, result in results.items():
        assert result.name == name
        assert result.ok, result
        for host in range(3):
            assert media.path(host, name).read_bytes() == name.encode() * 100


def test_a_thread_alone_runs_inline(media: Nginx, quick_idle: None) -> None:
    with Replicator(media.hosts, "/media/") as replicator:
        for index in range(20):
            replicator.put(f"alone/{index}.txt", b"x").raise_for_failures()
            assert loop_threads() == []


def test_failures_and_large_files_reach_the_thread_that_asked(
    media: Nginx, quick_idle: None
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    data = {index: os.urandom(3 * MiB + index) for index in range(6)}
    results: dict[int, OperationResult] = {}
    with Replicator([media.hosts[0], dead], "/media/", host_cooldown=0) as replicator:

        def work(index: int) -> None:
            results[index] = replicator.put(f"big/{index}.bin", io.BytesIO(data[index]))

        assert in_threads(6, work) == []
    for index, result in results.items():
        assert result.name == f"big/{index}.bin"
        assert result[media.hosts[0]].ok
        error = result[dead].error
        assert isinstance(error, TransportError)
        assert error.reason == "refused"
        assert media.path(0, f"big/{index}.bin").read_bytes() == data[index]


def test_a_bad_source_in_one_thread_leaves_the_others_alone(media: Nginx, quick_idle: None) -> None:
    class Failing(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return True

        def seek(self, offset: int, whence: int = 0) -> int:
            return 0 if whence == 0 else 4 * MiB

        def tell(self) -> int:
            return 0

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            raise OSError("the disk said no")

    results: dict[int, OperationResult] = {}
    with Replicator(media.hosts, "/media/") as replicator:

        def work(index: int) -> None:
            source = Failing() if index == 0 else io.BytesIO(b"fine" * MiB)
            results[index] = replicator.put(f"mixed/{index}.bin", source)

        assert in_threads(8, work) == []
    assert results[0].source_error is not None
    assert not results[0].ok
    assert all(results[index].ok for index in range(1, 8))


def test_a_forked_child_runs_its_own_loop(media: Nginx, quick_idle: None) -> None:
    with Replicator(media.hosts, "/media/") as replicator:
        assert in_threads(4, lambda i: replicator.put(f"p/{i}", b"p").raise_for_failures()) == []
        pid = os.fork()
        if pid == 0:  # the child: two threads at once, then report
            try:
                errors = in_threads(
                    4, lambda i: replicator.put(f"c/{i}", b"c").raise_for_failures()
                )
                os._exit(1 if errors else 0)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert in_threads(4, lambda i: replicator.put(f"q/{i}", b"q").raise_for_failures()) == []
    for index in range(4):
        assert media.path(1, f"c/{index}").read_bytes() == b"c"


def test_a_fork_while_a_thread_runs_alone_leaves_the_child_free_to_replicate(
    media: Nginx, quick_idle: None
) -> None:
    """The parent's lone thread holds its engine, and the lock that says so, across the
    fork: the child must neither wait for that lock nor send on the parent's connections."""
    source = Held(b"h" * 4 * MiB)
    with Replicator(media.hosts, "/media/") as replicator:
        replicator.put("before.txt", b"p").raise_for_failures()  # the lone engine connects
        held = threading.Thread(target=replicator.put, args=("held.bin", source), daemon=True)
        held.start()
        assert source.inside.wait(10)
        with warnings.catch_warnings():  # 3.12+: a fork of a process with threads warns
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child
            try:
                result = replicator.put("child.txt", b"c")
                fresh = [r.new_connections for r in result] == [1, 1, 1]
                os._exit(0 if result.ok and fresh and loop_threads() == [] else 1)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        source.release.set()
        held.join(30)
        assert os.waitstatus_to_exitcode(status) == 0
        after = replicator.put("after.txt", b"p").raise_for_failures()
    assert [r.new_connections for r in after] == [0, 0, 0]  # the parent's connections survived
    assert media.path(2, "child.txt").read_bytes() == b"c"
    assert media.path(2, "held.bin").read_bytes() == b"h" * 4 * MiB


def test_a_close_during_a_lone_put_lets_it_finish_then_closes_its_engine(media: Nginx) -> None:
    source = Held(b"c" * 4 * MiB)
    replicator = Replicator(media.hosts, "/media/")
    results: list[OperationResult] = []
    held = threading.Thread(target=lambda: results.append(replicator.put("c.bin", source)))
    held.start()
    assert source.inside.wait(10)
    replicator.close()  # the put runs on the lone engine: closed when it lets go
    source.release.set()
    held.join(30)
    assert [result.ok for result in results] == [True]
    assert replicator._alone_engine is None
    with pytest.raises(ClosedError):
        replicator.put("after.bin", b"x")
    assert media.path(1, "c.bin").read_bytes() == b"c" * 4 * MiB


def test_after_close_threads_are_refused_and_the_loop_ends(media: Nginx, quick_idle: None) -> None:
    replicator = Replicator(media.hosts, "/media/")
    assert in_threads(4, lambda i: replicator.put(f"x/{i}", b"x").raise_for_failures()) == []
    replicator.close()
    errors = in_threads(4, lambda i: replicator.put(f"y/{i}", b"y").raise_for_failures())
    assert len(errors) == 4
    assert all(isinstance(error, ClosedError) for error in errors)
    deadline = time.monotonic() + 5
    while loop_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert loop_threads() == []


def test_an_idle_loop_ends_and_starts_again_on_demand(media: Nginx, quick_idle: None) -> None:
    with Replicator(media.hosts, "/media/") as replicator:
        for wave in range(2):
            prefix = f"w{wave}"

            def work(index: int, prefix: str = prefix) -> None:
                replicator.put(f"{prefix}/{index}", b"w").raise_for_failures()

            assert in_threads(8, work) == []
            deadline = time.monotonic() + 5
            while loop_threads() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert loop_threads() == []  # ended after IDLE_SECONDS without work
    assert media.path(2, "w1/7").read_bytes() == b"w"


def test_a_sink_that_replicates_does_not_wait_on_its_own_loop(
    media: Nginx, quick_idle: None
) -> None:
    """A GET's sink runs in the loop thread when threads share it; one that calls the
    replicator again runs that call inline instead of handing it to itself (a deadlock)."""
    with Replicator(media.hosts, "/media/") as replicator:
        replicator.put("source.txt", b"content").raise_for_failures()
        seen: list[bool] = []

        def work(index: int) -> None:
            def sink(data: bytes) -> None:
                seen.append(replicator.exists("source.txt"))

            replicator.get_into("source.txt", sink)

        assert in_threads(8, work) == []
    assert seen
    assert all(seen)


def test_where_no_thread_can_start_a_hand_over_runs_on_the_callers_thread(
    media: Nginx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.12+ refuses new threads at interpreter exit, when AsyncStorage flushes its
    queue: a save made then must not wait for a loop thread that never started (it did,
    and hung the interpreter's exit, once in CI)."""

    class NoThread(threading.Thread):
        def start(self) -> None:
            raise RuntimeError("can't create new thread at interpreter shutdown")

    fake = type(threading)("threading")
    fake.__dict__.update(vars(threading))
    fake.Thread = NoThread  # type: ignore[attr-defined]
    monkeypatch.setattr(_shared, "threading", fake)
    with Replicator(media.hosts, "/media/") as replicator:
        results: dict[str, OperationResult] = {}
        source = Held(b"b" * 4 * MiB)  # its put runs inline: it was alone
        held = threading.Thread(
            target=lambda: results.setdefault("held", replicator.put("held.bin", source)),
            daemon=True,
        )
        held.start()
        assert source.inside.wait(10)
        # Not alone now: this put is handed over, refused, and run here.
        results["second"] = replicator.put("second.bin", b"second")
        results["third"] = replicator.put("third.bin", b"third")  # refused again, not stuck
        source.release.set()
        held.join(30)
    assert not held.is_alive()
    assert all(result.ok for result in results.values())
    assert len(results) == 3
    assert loop_threads() == []
    for index in range(len(media.hosts)):
        assert media.path(index, "second.bin").read_bytes() == b"second"
        assert media.path(index, "held.bin").read_bytes() == b"b" * 4 * MiB
