"""The engine on the wire: failing hosts, timeouts, pausing for a slow host, never spinning."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
from pathlib import Path

import pytest

from resto_fast import Outcome, ReplicationError, Replicator, ReplicatorConfig, TransportError
from resto_fast import _engine as engine_module
from resto_fast._buffer import ChunkWindow, Loop
from resto_fast._engine import Engine
from resto_fast._operation import Operation
from testbed import (
    Answering,
    BlackHole,
    EarlyAnswer,
    Nginx,
    Resetter,
    SlowSink,
    Staller,
    free_port,
)

pytestmark = pytest.mark.nginx

MiB = 1024 * 1024


def failed_reason(result: object, host: str) -> str:
    error = result[host].error  # type: ignore[index]
    assert isinstance(error, TransportError), error
    return error.reason


def test_a_refused_host_fails_at_once_and_the_others_succeed(media: Nginx) -> None:
    dead = f"127.0.0.1:{free_port()}"
    with Replicator([*media.hosts, dead], "/media/", timeout=2) as replicator:
        started = time.monotonic()
        result = replicator.put("r.txt", b"data")
        elapsed = time.monotonic() - started
    assert failed_reason(result, dead) == "refused"
    assert result.succeeded == tuple(media.hosts)
    assert elapsed < 1.5  # refused is immediate: nobody waits for the timeout


@pytest.mark.parametrize("size", [100, 4 * MiB])
def test_a_black_hole_is_given_up_within_the_timeout(media: Nginx, size: int) -> None:
    with (
        BlackHole() as hole,
        Replicator([media.hosts[0], hole.host], "/media/", timeout=0.5) as replicator,
    ):
        started = time.monotonic()
        result = replicator.put("bh.bin", os.urandom(size))
        elapsed = time.monotonic() - started
    assert failed_reason(result, hole.host) in ("stalled", "timeout")
    assert result[media.hosts[0]].outcome is Outcome.CREATED
    assert 0.4 < elapsed < 2.0


def test_a_host_that_stops_reading_is_given_up_and_the_others_finish(media: Nginx) -> None:
    data = os.urandom(24 * MiB)
    config = ReplicatorConfig(
        hosts=(*media.hosts,),
        base_url="/media/",
        timeout=0.5,
        window_size=2 * MiB,
        chunk_size=256 * 1024,
    )
    with Staller() as staller, Replicator.from_config(config) as replicator:
        started = time.monotonic()
        result = replicator.put("stall.bin", data, hosts=[*media.hosts, staller.host])
        elapsed = time.monotonic() - started
    assert failed_reason(result, staller.host) == "stalled"
    assert "no progress for" in str(result[staller.host].error)
    assert result.succeeded == tuple(media.hosts)
    assert all(media.path(i, "stall.bin").read_bytes() == data for i in range(3))
    assert elapsed < 10


def test_a_connection_reset_mid_upload_fails_that_host_only(media: Nginx) -> None:
    data = os.urandom(6 * MiB)
    with Resetter(after=MiB) as resetter, Replicator(media.hosts, "/media/") as replicator:
        result = replicator.put("reset.bin", data, hosts=[*media.hosts, resetter.host])
    assert failed_reason(result, resetter.host) == "reset"
    assert result.succeeded == tuple(media.hosts)
    assert all(media.path(i, "reset.bin").read_bytes() == data for i in range(3))


def test_a_slow_transfer_that_keeps_moving_is_not_cut_off(media: Nginx) -> None:
    data = os.urandom(3 * MiB)  # about 1.5 s at 2 MiB/s: three times the timeout
    with (
        SlowSink(rate=2 * MiB) as slow,
        Replicator([media.hosts[0], slow.host], "/media/", timeout=0.5) as replicator,
    ):
        result = replicator.put("slow.bin", data).raise_for_failures()
    assert result[slow.host].elapsed > 1.0
    assert slow.received["/media/slow.bin"] == data


def test_the_total_timeout_caps_an_operation_however_fast_it_moves(media: Nginx) -> None:
    with (
        SlowSink(rate=2 * MiB) as slow,
        Replicator([slow.host], "/media/", timeout=2, total_timeout=0.5) as replicator,
    ):
        started = time.monotonic()
        result = replicator.put("capped.bin", os.urandom(4 * MiB))
        elapsed = time.monotonic() - started
    assert failed_reason(result, slow.host) == "timeout"
    assert elapsed < 2.0


def test_fast_hosts_pause_for_a_slow_one_and_memory_stays_in_the_window(
    media: Nginx, tmp_path: Path
) -> None:
    data = os.urandom(12 * MiB)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    config = ReplicatorConfig(hosts=tuple(media.hosts), base_url="/media/", timeout=5)
    engine = Engine(config)
    pauses: list[int] = []
    with SlowSink(rate=16 * MiB) as slow, source.open("rb", buffering=0) as file:
        targets = [(h, f"http://{h}/media/big.bin") for h in [*media.hosts, slow.host]]
        window = ChunkWindow(
            len(data), file.readinto, readers=4, chunk_size=256 * 1024, max_chunks=4
        )
        op = Operation("PUT", "big.bin", targets, window=window)
        engine.run([op], on_tick=lambda: pauses.append(window.paused_count))
        results = op.host_results()
        received = slow.received["/media/big.bin"]
    engine.close()
    assert [r.outcome for r in results] == [Outcome.CREATED] * 4
    assert max(pauses) >= 1  # fast hosts were seen waiting for the slow one
    assert window.bytes_read == len(data)  # the file was read once
    assert window.memory <= 1 * MiB  # four chunks of 256 KiB, whatever the file size
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()
    assert all(media.path(i, "big.bin").read_bytes() == data for i in range(3))


def test_the_loop_never_spins_while_waiting(media: Nginx, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = 0

    class CountingLoop(Loop):  # the one in use, compiled or not
        def step(self, wake_by: float) -> float:
            nonlocal steps
            steps += 1
            return super().step(wake_by)

    monkeypatch.setattr(engine_module, "Loop", CountingLoop)
    with BlackHole() as hole, Replicator([hole.host], "/media/", timeout=1.0) as replicator:
        result = replicator.put("wait.bin", b"x")
    assert failed_reason(result, hole.host) in ("stalled", "timeout")
    # One second of waiting is a few dozen wake-ups (stall checks, libcurl timers), not thousands.
    assert steps < 100


def test_an_interrupted_run_aborts_its_transfers_and_the_engine_stays_usable(media: Nginx) -> None:
    config = ReplicatorConfig(hosts=tuple(media.hosts), base_url="/media/")
    engine = Engine(config)

    def interrupt() -> None:
        raise KeyboardInterrupt

    with SlowSink(rate=4 * MiB) as slow:  # a two-second upload: the first tick interrupts it
        hosts = [*media.hosts, slow.host]
        window = ChunkWindow.of_buffer(os.urandom(8 * MiB), readers=4)
        op = Operation(
            "PUT", "int.bin", [(h, f"http://{h}/media/int.bin") for h in hosts], window=window
        )
        with pytest.raises(KeyboardInterrupt):
            engine.run([op], on_tick=interrupt)
        interrupted = op.results[3]
        assert interrupted is not None
        assert interrupted.outcome is Outcome.FAILED
        assert "/media/int.bin" not in slow.received
    again = Operation(
        "PUT",
        "ok.bin",
        [(h, f"http://{h}/media/ok.bin") for h in media.hosts],
        window=ChunkWindow.of_buffer(b"fine", readers=3),
    )
    engine.run([again])
    assert [r.outcome for r in again.host_results()] == [Outcome.CREATED] * 3
    engine.close()


def test_a_tiny_window_keeps_every_host_moving(media: Nginx) -> None:
    """Two chunks for three hosts: hosts pause and resume hundreds of times per file.

    A resume that is missed leaves every host paused until the servers give
    up; the total timeout turns such a deadlock into a failure here.
    """
    data = os.urandom(16 * MiB)
    config = ReplicatorConfig(
        hosts=tuple(media.hosts),
        base_url="/media/",
        window_size=512 * 1024,
        chunk_size=256 * 1024,
        total_timeout=20,
    )
    with Replicator.from_config(config) as replicator:
        for round_ in range(4):
            replicator.put(f"tiny-{round_}.bin", data).raise_for_failures()
    assert all(media.path(i, "tiny-3.bin").read_bytes() == data for i in range(3))


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_a_success_answered_before_the_body_went_out_is_a_failure(
    media: Nginx, streamed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    data = os.urandom(8 * MiB)
    with (
        EarlyAnswer() as early,
        Replicator(
            [media.hosts[0], early.host],
            "/media/",
            timeout=1,
            chunk_size=MiB if streamed else 16 * MiB,
            window_size=16 * MiB,
        ) as replicator,
        caplog.at_level(logging.ERROR, logger="resto_fast"),
    ):
        result = replicator.put("early.bin", io.BytesIO(data))
    assert failed_reason(result, early.host) == "incomplete"
    lying = result[early.host]
    assert lying.status == 201
    assert not lying.ok
    assert lying.transferred < len(data)  # what libcurl sent, not the file's size
    assert result[media.hosts[0]].outcome is Outcome.CREATED
    assert result[media.hosts[0]].transferred == len(data)
    assert media.path(0, "early.bin").read_bytes() == data
    (line,) = [r.getMessage() for r in caplog.records]
    assert early.host in line
    assert "'early.bin'" in line
    assert "partial copy" in line


def test_an_early_success_is_caught_when_the_kernel_took_the_whole_body() -> None:
    """On loopback the kernel takes a 1 MiB body at once, so libcurl counts it all sent
    before an answer that waits a moment arrives (libcurl's counter and timers alone said
    ok, every time): the bytes the server has not acknowledged tell the truth."""
    with (
        EarlyAnswer(delay=0.05) as early,
        Replicator([early.host], "/media/", timeout=1, host_cooldown=0) as replicator,
    ):
        results = [replicator.put("e.bin", os.urandom(MiB))[early.host] for _ in range(10)]
    assert [result.ok for result in results] == [False] * 10
    assert {failed_reason_of(result) for result in results} == {"incomplete"}
    assert all(result.transferred < MiB for result in results)


def failed_reason_of(result: object) -> str:
    error = result.error  # type: ignore[attr-defined]
    assert isinstance(error, TransportError), error
    return error.reason


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_an_answer_that_trickles_is_cut_off_within_the_timeout(method: str) -> None:
    answer = b"HTTP/1.1 201 Created\r\nContent-Length: 1000\r\n\r\n"  # 1000 bytes, 2 a second
    with (
        Answering(answer, trickle=1000, pause=0.1) as slow,
        Replicator([slow.host], "/media/", timeout=0.5) as replicator,
    ):
        started = time.monotonic()
        if method == "PUT":
            result = replicator.put("t.bin", b"x" * 100)
        else:
            result = replicator.delete("t.bin")
        elapsed = time.monotonic() - started
    assert failed_reason(result, slow.host) == "stalled"  # the trickle is no progress
    assert elapsed < 2.0


def test_an_answer_too_large_for_a_verdict_fails() -> None:
    answer = b"HTTP/1.1 201 Created\r\nContent-Length: 50000000\r\n\r\n" + b"x" * 65536
    with (
        Answering(answer) as talkative,
        Replicator([talkative.host], "/media/", timeout=1) as replicator,
    ):
        result = replicator.put("big-answer.bin", b"x")
    assert failed_reason(result, talkative.host) == "answer"


def test_a_line_that_is_no_status_line_is_an_error_of_the_tree(
    capfd: pytest.CaptureFixture[str],
) -> None:
    answer = b"HTTP/x: y\r\nContent-Length: 2\r\n\r\nhi"
    with (
        Answering(answer) as odd,
        Replicator([odd.host], "/media/", timeout=1) as replicator,
    ):
        with pytest.raises(ReplicationError) as raised:
            replicator.get("g.bin")
        listing_error = None
        try:
            replicator.listdir("")
        except ReplicationError as exc:
            listing_error = exc
    (error,) = raised.value.failures.values()
    assert isinstance(error, TransportError)
    assert error.reason == "protocol"
    assert listing_error is not None
    assert "Traceback" not in capfd.readouterr().err  # no callback printed one
