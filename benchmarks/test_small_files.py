"""Many 4 KiB files saved one after another: the engine against the threaded baseline.

Each round runs every contender once, in a rotated order, so bursts of load
on these shared machines fall on all of them alike (see ``test_large_file``).
``pycurl-bare`` is the floor: libcurl and the kernel alone, with nothing of
the engine around them.
"""

from __future__ import annotations

import itertools
import json

import pytest

from benchmarks.conftest import SMOKE, rotated, rounds_for, run_child
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
