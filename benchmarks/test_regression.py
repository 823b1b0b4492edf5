"""Regression runs: the engine's steady cases, in process, timed by pytest-benchmark.

Each benchmark's measured function is the replication itself (pedantic rounds
after a warm-up round), so ``scripts/bench --save NAME`` and ``--compare
NAME`` work as pytest-benchmark's own storage does.  Wall time on a shared
2-core machine is too noisy to gate on; every case also records its CPU time
per host-copy (user + system of this process, median of the rounds) in
``extra_info["cpu_per_copy_us"]``, which ``benchmarks/check.py`` compares
against a saved run (see docs/benchmarks.md).
"""

from __future__ import annotations

import itertools
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile

from benchmarks.conftest import SMOKE
from benchmarks.measure import cpu_seconds, peak_rss_mib, reset_peak_rss
from resto_fast import Replicator
from resto_fast.storage import HybridStorage
from testbed import Nginx

KiB = 1024
MiB = 1024 * KiB
SMALL = 4 * KiB
ROUNDS = 3 if SMOKE else 9
FILES = 20 if SMOKE else 300  # per round, for the small-file cases
LARGE = 4 * MiB if SMOKE else 128 * MiB
_runs = itertools.count()


def measured(
    benchmark: Any,
    work: Callable[[str], None],
    *,
    copies: int,
    files: int,
    nbytes: int,
    clear: Callable[[], None],
) -> None:
    """Run ``work(prefix)`` as pytest-benchmark's pedantic rounds; its steady figures
    (CPU per host-copy, files/s, peak RSS) go to ``extra_info``."""
    cpu: list[float] = []
    wall: list[float] = []
    rss: list[float] = []

    def one_round() -> None:
        prefix = f"r{next(_runs)}"
        reset_peak_rss()
        started = cpu_seconds()
        clock = time.perf_counter()
        work(prefix)
        wall.append(time.perf_counter() - clock)
        cpu.append(cpu_seconds() - started)
        rss.append(peak_rss_mib())

    benchmark.pedantic(one_round, setup=clear, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    # The warm-up round is measured here too (pytest-benchmark only leaves it out of its own
    # figures): the steady figures leave it out as well.
    steady_cpu = statistics.median(cpu[1:] or cpu)
    steady_wall = statistics.median(wall[1:] or wall)
    benchmark.extra_info.update(
        {
            "cpu_per_copy_us": round(steady_cpu / copies * 1e6, 2),
            "files_per_s": round(files / steady_wall, 1),
            "mb_per_s": round(copies * nbytes / steady_wall / 1e6, 1),
            "peak_rss_mib": round(max(rss), 1),
            "copies": copies,
        }
    )


@pytest.fixture
def three(bench_nginx: Nginx) -> Iterator[Replicator]:
    with Replicator(bench_nginx.hosts[:3], "/media/") as replicator:
        yield replicator


@pytest.mark.parametrize("hosts", [3, 12])
def test_put_small_files(benchmark: Any, bench_nginx: Nginx, hosts: int) -> None:
    """``Replicator.put`` of 4 KiB, one file after another: the per-copy bookkeeping."""
    data = os.urandom(SMALL)
    with Replicator(bench_nginx.hosts[:hosts], "/media/") as replicator:

        def work(prefix: str) -> None:
            for index in range(FILES):
                replicator.put(f"{prefix}/{index}.bin", data)

        measured(
            benchmark,
            work,
            copies=FILES * hosts,
            files=FILES,
            nbytes=SMALL,
            clear=bench_nginx.clear,
        )


@pytest.mark.parametrize("threads", [1, 16])
def test_put_from_threads(
    benchmark: Any, bench_nginx: Nginx, three: Replicator, threads: int
) -> None:
    """One Replicator shared by a threaded WSGI server's request threads, each saving 4 KiB
    files one after another: with company, they hand their operations to one loop."""
    data = os.urandom(SMALL)
    count = FILES * 4
    per_thread = count // threads

    def work(prefix: str) -> None:
        def save(thread: int) -> None:
            for index in range(per_thread):
                three.put(f"{prefix}/{thread}/{index}.bin", data)

        workers = [threading.Thread(target=save, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    copies = per_thread * threads * 3
    measured(
        benchmark, work, copies=copies, files=copies // 3, nbytes=SMALL, clear=bench_nginx.clear
    )


def test_put_many_small_files(benchmark: Any, bench_nginx: Nginx, three: Replicator) -> None:
    """``put_many`` of 4 KiB files to 3 hosts: several files in flight in one loop."""
    data = os.urandom(SMALL)
    count = FILES * 4

    def work(prefix: str) -> None:
        three.put_many((f"{prefix}/{index}.bin", data) for index in range(count))

    measured(benchmark, work, copies=count * 3, files=count, nbytes=SMALL, clear=bench_nginx.clear)


def test_hybrid_storage_save(benchmark: Any, bench_nginx: Nginx, source_dir: Path) -> None:
    """``HybridStorage.save`` of 4 KiB to 3 hosts: the master copy, then the fan-out."""
    storage = HybridStorage(bench_nginx.hosts[:3], "/media/", str(source_dir / "master"))
    data = os.urandom(SMALL)

    def work(prefix: str) -> None:
        for index in range(FILES):
            storage.save(f"{prefix}/{index}.bin", ContentFile(data))

    measured(benchmark, work, copies=FILES * 3, files=FILES, nbytes=SMALL, clear=bench_nginx.clear)


def test_put_large_file(
    benchmark: Any, bench_nginx: Nginx, three: Replicator, source_dir: Path
) -> None:
    """One large file to 3 hosts, streamed through the window: throughput and memory."""
    path = source_dir / "regression-large.bin"
    if not path.exists() or path.stat().st_size != LARGE:
        with path.open("wb") as out:
            for _ in range(LARGE // MiB):
                out.write(os.urandom(MiB))

    def work(prefix: str) -> None:
        three.put(f"{prefix}/large.bin", str(path)).raise_for_failures()

    measured(benchmark, work, copies=3, files=1, nbytes=LARGE, clear=bench_nginx.clear)
