"""The background worker: batches in order, flush, pending, and a batch that raises."""

from __future__ import annotations

import logging
import threading

import pytest

from resto_fast._background import BackgroundWorker


def test_jobs_run_in_order_in_batches_and_flush_waits() -> None:
    gate = threading.Event()
    batches: list[list[int]] = []

    def process(batch: list[int]) -> None:
        gate.wait(10)
        batches.append(batch)

    worker: BackgroundWorker[int] = BackgroundWorker(process, name="test-worker")
    worker.submit(1)
    for job in range(2, 6):
        worker.submit(job)
    assert worker.pending == 5
    assert worker.flush(timeout=0.05) is False
    gate.set()
    assert worker.flush(timeout=10) is True
    assert worker.pending == 0
    assert [job for batch in batches for job in batch] == [1, 2, 3, 4, 5]
    assert len(batches) <= 2  # what queued up while the first batch ran came as one


def test_a_batch_that_raises_is_logged_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[str] = []

    def process(batch: list[str]) -> None:
        if "bad" in batch:
            raise RuntimeError("boom")
        done.extend(batch)

    worker: BackgroundWorker[str] = BackgroundWorker(process, name="test-worker")
    with caplog.at_level(logging.ERROR, logger="resto_fast"):
        worker.submit("bad")
        assert worker.flush(timeout=10)
        worker.submit("good")
        assert worker.flush(timeout=10)
    assert done == ["good"]
    assert "boom" in caplog.text


def test_flush_with_nothing_queued_returns_at_once() -> None:
    worker: BackgroundWorker[int] = BackgroundWorker(lambda batch: None, name="test-worker")
    assert worker.flush(timeout=0) is True


def test_jobs_submitted_together_come_in_one_batch() -> None:
    batches: list[list[int]] = []
    worker: BackgroundWorker[int] = BackgroundWorker(batches.append, name="test-worker")
    for start in range(0, 60, 3):
        worker.submit_all([start, start + 1, start + 2])
    assert worker.flush(timeout=10)
    assert [job for batch in batches for job in batch] == list(range(60))
    assert all(len(batch) % 3 == 0 for batch in batches)
