"""Many 4 KiB files saved one after another: the engine against the threaded baseline."""

from __future__ import annotations

import itertools
import json

import pytest

from benchmarks.conftest import SMOKE, rounds_for, run_child
from tests.servers import Nginx

SIZE = 4096
CASES = {
    f"4KiB x {files} -> {hosts} hosts": (hosts, files)
    for hosts, files in ((3, 20 if SMOKE else 1000), (12, 10 if SMOKE else 300))
}
ROUNDS = 1 if SMOKE else 5
# pycurl-bare is the floor: libcurl and the kernel alone, no engine around them.
CONTENDERS = ["engine-cython", "engine-python", "threads-urllib", "pycurl-bare"]
_counter = itertools.count()


@pytest.mark.parametrize("contender", CONTENDERS)
@pytest.mark.parametrize("case", list(CASES))
def test_small_files(benchmark, bench_nginx: Nginx, case: str, contender: str) -> None:
    hosts, files = CASES[case]
    rounds = rounds_for(case, contender, copies=hosts * files, files=files, nbytes=SIZE)
    targets = json.dumps(bench_nginx.hosts[:hosts])

    def one_round() -> None:
        prefix = f"small-{next(_counter)}"
        report = run_child(contender, "small", targets, str(files), str(SIZE), prefix)
        rounds.add(report["wall"], report["cpu"], report["rss"])

    benchmark.pedantic(one_round, setup=bench_nginx.clear, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(rounds.as_dict())
    assert len(bench_nginx.requests(bench_nginx.hosts[0])) >= files  # the copies did land
