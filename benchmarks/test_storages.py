"""The Django storages: resto_fast's transport against django-resto's way, same storage code.

``hybrid-engine`` and ``hybrid-threads`` are the same HybridStorage with two
transports (the engine's fan-out; a thread and a urllib PUT per host, as
django-resto 1.x), so the difference is the replication alone;
``filesystem`` is Django's local save with no replication, the floor.  The
large case streams one upload through DistributedStorage: peak RSS is the
figure to watch (django-resto read the whole file into memory).

``test_hybrid_storage_glue`` asks what HybridStorage adds to its two halves,
in process: Django's ``FileSystemStorage.save`` and ``Replicator.put`` of
the master copy, each alone, the two called one after the other by hand,
and ``HybridStorage.save``.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from benchmarks.conftest import SMOKE, rotated, rounds_for, run_child
from benchmarks.measure import cpu_seconds, peak_rss_mib
from resto_fast import Replicator
from resto_fast.storage import HybridStorage
from testbed import Nginx, scratch_dir

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


def test_hybrid_storage_glue(benchmark, bench_nginx: Nginx, source_dir: Path) -> None:
    """HybridStorage.save against its halves, alone and back to back, CPU per save."""
    hosts = bench_nginx.hosts[:HOSTS]
    data = os.urandom(SIZE)
    master = source_dir / "glue"
    local = FileSystemStorage(str(master / "local"))
    by_hand = FileSystemStorage(str(master / "by-hand"))
    hybrid = HybridStorage(hosts, "/media/", str(master / "hybrid"))
    replicator = Replicator(hosts, "/media/")
    source = master / "source.bin"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(data)

    def save_by_hand(name: str) -> None:
        saved = by_hand.save(name, ContentFile(data))
        replicator.put(saved, by_hand.path(saved)).raise_for_failures()

    contenders: dict[str, Callable[[str], object]] = {
        "FileSystemStorage.save": lambda name: local.save(name, ContentFile(data)),
        "Replicator.put": lambda name: replicator.put(name, source).raise_for_failures(),
        "the two by hand": save_by_hand,
        "HybridStorage.save": lambda name: hybrid.save(name, ContentFile(data)),
    }
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    rounds = {
        name: rounds_for("Hybrid glue 4KiB", name, copies=HOSTS * FILES, files=FILES, nbytes=SIZE)
        for name in contenders
    }
    order = itertools.count()

    def one_round() -> None:
        index = next(order)
        for name in rotated(list(contenders), index):
            bench_nginx.clear()
            save = contenders[name]
            started, clock = cpu_seconds(), time.perf_counter()
            for file in range(FILES):
                save(f"g{index}/{file}.bin")
            wall, spent = time.perf_counter() - clock, cpu_seconds() - started
            cpu[name].append(spent / FILES * 1e6)
            rounds[name].add(wall, spent, peak_rss_mib())

    for warm in range(20):  # connections, handles, Django's imports
        for save in contenders.values():
            save(f"warm/{warm}.bin")
    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    replicator.close()
    per_save = {name: statistics.median(values) for name, values in cpu.items()}
    halves = per_save["FileSystemStorage.save"] + per_save["Replicator.put"]
    benchmark.extra_info.update(
        {
            "cpu_per_save_us": {name: round(value, 1) for name, value in per_save.items()},
            "hybrid_over_halves_alone": round(per_save["HybridStorage.save"] / halves, 3),
            "hybrid_over_by_hand": round(
                per_save["HybridStorage.save"] / per_save["the two by hand"], 3
            ),
            "by_hand_over_halves_alone": round(per_save["the two by hand"] / halves, 3),
        }
    )
