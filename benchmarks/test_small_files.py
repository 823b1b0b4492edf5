"""Many 4 KiB files saved one after another: the engine against the threaded baseline.

Each round runs every contender once, in a rotated order, so bursts of load
on these shared machines fall on all of them alike (see ``test_large_file``).
``pycurl-bare`` is the floor: libcurl and the kernel alone, with nothing of
the engine around them.  Child processes of 1,000 puts move by several µs
per copy between runs; ``test_against_pycurl_bare_in_process`` gives the
steady ratio: both in this process, warm, rounds interleaved, with a third
contender, the same requests on libcurl's socket interface as the engine
drives it (``pycurl-sockets``): the floor of that design.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import time
from collections.abc import Callable

import pytest

from benchmarks.conftest import SMOKE, rotated, rounds_for, run_child
from benchmarks.contenders import bare_pycurl, socket_pycurl
from benchmarks.measure import cpu_seconds
from resto_fast import Replicator
from testbed import Nginx

SIZE = 4096
CASES = {
    f"4KiB x {files} -> {hosts} hosts": (hosts, files)
    for hosts, files in ((3, 20 if SMOKE else 1000), (12, 10 if SMOKE else 300))
}
ROUNDS = 1 if SMOKE else 5
CONTENDERS = ["engine-cython", "engine-python", "threads-urllib", "pycurl-bare"]
_prefixes = itertools.count()


@pytest.mark.parametrize("case", list(CASES))
def test_small_files(benchmark, bench_nginx: Nginx, case: str) -> None:
    hosts, files = CASES[case]
    targets = json.dumps(bench_nginx.hosts[:hosts])
    rounds = {
        name: rounds_for(case, name, copies=hosts * files, files=files, nbytes=SIZE)
        for name in CONTENDERS
    }
    order = itertools.count()

    def one_round() -> None:
        for contender in rotated(CONTENDERS, next(order)):
            bench_nginx.clear()
            prefix = f"small-{next(_prefixes)}"
            report = run_child(contender, "small", targets, str(files), str(SIZE), prefix)
            rounds[contender].add(report["wall"], report["cpu"], report["rss"])
            landed = bench_nginx.requests(bench_nginx.hosts[0])
            assert sum(r.method == "PUT" and r.status == 201 for r in landed) >= files

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update({name: r.as_dict() for name, r in rounds.items()})


@pytest.mark.parametrize("case", list(CASES))
def test_against_pycurl_bare_in_process(benchmark, bench_nginx: Nginx, case: str) -> None:
    """The engine's ``put`` and the bare loop in this process, warm, rounds interleaved."""
    hosts, files = CASES[case]
    targets = bench_nginx.hosts[:hosts]
    data = bytes(range(256)) * (SIZE // 256)
    replicator = Replicator(targets, "/media/", timeout=30)
    engine, bare = "engine, in process", "pycurl-bare, in process"
    sockets = "pycurl-sockets, in process"
    saves: dict[str, Callable[[str], object]] = {
        engine: lambda name: replicator.put(name, data),
        bare: bare_pycurl(targets, data),
        sockets: socket_pycurl(targets, data),
    }
    rounds = {
        name: rounds_for(
            case + " (in process)", name, copies=hosts * files, files=files, nbytes=SIZE
        )
        for name in saves
    }
    ratios: list[float] = []
    socket_ratios: list[float] = []
    order = itertools.count()

    def one(name: str, prefix: str) -> float:
        save = saves[name]
        bench_nginx.clear()
        started, clock = cpu_seconds(), time.perf_counter()
        for index in range(files):
            save(f"{prefix}/{index}.bin")
        spent = cpu_seconds() - started
        rounds[name].add(time.perf_counter() - clock, spent, math.nan)  # no RSS of its own
        return spent

    def one_round() -> None:
        index = next(order)
        spent = {
            name: one(name, f"p{index}-{n}") for n, name in enumerate(rotated(list(saves), index))
        }
        ratios.append(spent[engine] / spent[bare])
        socket_ratios.append(spent[engine] / spent[sockets])

    for n, save in enumerate(saves.values()):  # connections, handles, the interpreter's caches
        for warm in range(min(files, 200)):
            save(f"warm/{n}-{warm}.bin")
    benchmark.pedantic(one_round, rounds=ROUNDS + 2, iterations=1)
    replicator.close()
    benchmark.extra_info["engine_over_bare_cpu"] = round(statistics.median(ratios), 3)
    benchmark.extra_info["engine_over_sockets_cpu"] = round(statistics.median(socket_ratios), 3)
