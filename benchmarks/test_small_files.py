"""Many 4 KiB files saved one after another: the engine against the threaded baseline.

Each round runs every contender once, in a rotated order, so bursts of load
on these shared machines fall on all of them alike (see ``test_large_file``).
``pycurl-bare`` is the floor: libcurl and the kernel alone, with nothing of
the engine around them.  Child processes of 1,000 puts move by several µs
per copy between runs; ``test_against_pycurl_bare_in_process`` gives the
steady ratio: both in this process, rounds interleaved, each round with
fresh connections warmed untimed, and a third contender, the same requests
on libcurl's socket interface as the engine drives it (``pycurl-sockets``):
the floor of that design.
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
WARM_SAVES = 2 if SMOKE else 20  # per contender and round: its fresh connections made
# Each round draws the connections' workers afresh: eleven draws give a steady median.
IN_PROCESS_ROUNDS = 1 if SMOKE else 11
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
    """The engine's ``put`` and the bare loops in this process, rounds interleaved.

    Every round makes each contender afresh (a new Replicator, new handles),
    warms its connections untimed, then times it.  Which of nginx's two
    workers serves each connection moves the client's CPU per copy (the
    client shares 2 cores with them): contenders kept for the whole run drew
    once, and at 12 hosts runs of the same code gave ratios near 1.00 or near
    1.25-1.35 by that draw alone.  A fresh draw every round makes the median
    the typical case's.
    """
    hosts, files = CASES[case]
    targets = bench_nginx.hosts[:hosts]
    data = bytes(range(256)) * (SIZE // 256)
    engine, bare = "engine, in process", "pycurl-bare, in process"
    sockets = "pycurl-sockets, in process"
    rounds = {
        name: rounds_for(
            case + " (in process)", name, copies=hosts * files, files=files, nbytes=SIZE
        )
        for name in (engine, bare, sockets)
    }
    ratios: list[float] = []
    socket_ratios: list[float] = []
    order = itertools.count()

    def contenders() -> tuple[Replicator, dict[str, Callable[[str], object]]]:
        replicator = Replicator(targets, "/media/", timeout=30)
        saves: dict[str, Callable[[str], object]] = {
            engine: lambda name: replicator.put(name, data),
            bare: bare_pycurl(targets, data),
            sockets: socket_pycurl(targets, data),
        }
        return replicator, saves

    def one(save: Callable[[str], object], name: str, prefix: str) -> float:
        for warm in range(WARM_SAVES):  # its connections, untimed
            save(f"{prefix}/warm-{warm}.bin")
        bench_nginx.clear()
        started, clock = cpu_seconds(), time.perf_counter()
        for index in range(files):
            save(f"{prefix}/{index}.bin")
        spent = cpu_seconds() - started
        rounds[name].add(time.perf_counter() - clock, spent, math.nan)  # no RSS of its own
        return spent

    def one_round() -> None:
        index = next(order)
        replicator, saves = contenders()
        try:
            spent = {
                name: one(saves[name], name, f"p{index}-{n}")
                for n, name in enumerate(rotated(list(saves), index))
            }
        finally:
            replicator.close()
        ratios.append(spent[engine] / spent[bare])
        socket_ratios.append(spent[engine] / spent[sockets])

    replicator, saves = contenders()  # the interpreter's caches, libcurl's first use
    for n, save in enumerate(saves.values()):
        for warm in range(min(files, 200)):
            save(f"warm/{n}-{warm}.bin")
    replicator.close()
    benchmark.pedantic(one_round, rounds=IN_PROCESS_ROUNDS, iterations=1)
    benchmark.extra_info["engine_over_bare_cpu"] = round(statistics.median(ratios), 3)
    benchmark.extra_info["engine_over_sockets_cpu"] = round(statistics.median(socket_ratios), 3)
    benchmark.extra_info["round_ratios"] = [round(ratio, 3) for ratio in ratios]
