"""The Django storages: resto_fast's transport against django-resto's way, same storage code.

``hybrid-engine`` and ``hybrid-threads`` are the same HybridStorage with two
transports (the engine's fan-out; a thread and a urllib PUT per host, as
django-resto 1.x), so the difference is the replication alone;
``filesystem`` is Django's local save with no replication, the floor.  The
large case streams one upload through DistributedStorage: peak RSS is the
figure to watch (django-resto read the whole file into memory).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from pathlib import Path

import pytest

from benchmarks.conftest import SMOKE, rotated, rounds_for, run_child
from tests.servers import Nginx, scratch_dir

SIZE = 4096
FILES = 20 if SMOKE else 500
HOSTS = 3
LARGE = (4 if SMOKE else 256) * 1024 * 1024
ROUNDS = 1 if SMOKE else 5
MODULE = "benchmarks.storage_contenders"


def test_hybrid_storage_small_files(benchmark, bench_nginx: Nginx) -> None:
    contenders = ["hybrid-engine", "hybrid-threads", "filesystem"]
    case = f"Hybrid 4KiB x {FILES} -> {HOSTS}"
    hosts = json.dumps(bench_nginx.hosts[:HOSTS])
    rounds = {
        name: rounds_for(case, name, copies=HOSTS * FILES, files=FILES, nbytes=SIZE)
        for name in contenders
    }
    order = itertools.count()

    def one_round() -> None:
        for contender in rotated(contenders, next(order)):
            bench_nginx.clear()
            workdir = scratch_dir("resto-bench-master-")
            try:
                report = run_child(
                    contender, "small", hosts, str(FILES), str(SIZE), str(workdir), module=MODULE
                )
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            rounds[contender].add(report["wall"], report["cpu"], report["rss"])
            if contender != "filesystem":
                landed = bench_nginx.requests(bench_nginx.hosts[0])
                assert sum(r.method == "PUT" and r.status == 201 for r in landed) == FILES + 1

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update({name: r.as_dict() for name, r in rounds.items()})


@pytest.fixture(scope="module")
def upload(source_dir: Path) -> Path:
    path = source_dir / "upload.bin"
    with path.open("wb") as file:
        for _ in range(LARGE // (1024 * 1024)):
            file.write(os.urandom(1024 * 1024))
    return path


def test_distributed_storage_large_upload(benchmark, bench_nginx: Nginx, upload: Path) -> None:
    contenders = ["distributed-engine", "distributed-threads"]
    case = f"Distributed {LARGE // 2**20}MiB -> {HOSTS}"
    hosts = json.dumps(bench_nginx.hosts[:HOSTS])
    rounds = {
        name: rounds_for(case, name, copies=HOSTS, files=1, nbytes=LARGE) for name in contenders
    }
    order = itertools.count()

    def one_round() -> None:
        for contender in rotated(contenders, next(order)):
            bench_nginx.clear()
            report = run_child(contender, "large", hosts, str(upload), "big.bin", module=MODULE)
            rounds[contender].add(report["wall"], report["cpu"], report["rss"])
            for index in range(HOSTS):
                assert bench_nginx.path(index, "big.bin").stat().st_size == LARGE

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update({name: r.as_dict() for name, r in rounds.items()})
