"""put_many against the servers' own limit: wrk (C, a Lua script doing 4 KiB PUTs) on the
same nginx hosts, in the same run, rounds interleaved.

wrk keeps 8 connections busy on each of the 3 hosts at once, every PUT to a
new name, as put_many's are: the host-copies a second it reaches is what
nginx (and this machine, which runs client and servers on 2 cores) can take.
The figure that matters is the ratio, put_many's host-copies a second over
wrk's; the target is 0.7.

Each round opens fresh connections for both, and the hosts listen with
``reuseport`` (each nginx worker has its own accept queue, and the kernel
spreads connections over them).  On 2 cores shared by the client and
nginx's two workers, how the connections fall between the workers moves
either client's rate by a quarter.  With one shared accept queue, the
workers took them unevenly, at times all on one: a replicator kept across
rounds drew once for the whole run (ratios of 0.59-0.63 in some runs,
0.78-0.88 in others, the same code), and even with fresh connections every
round, single rounds ran from 0.58 to 1.05.  Spread by the kernel, rounds
fall within 0.68-0.83.  The median of five rounds is what is compared.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.conftest import SMOKE
from resto_fast import Replicator
from testbed import Nginx

SIZE = 4096
FILES = 300 if SMOKE else 10_000
ROUNDS = 1 if SMOKE else 5
SECONDS = 1 if SMOKE else 4
CONNECTIONS = 8  # per host
_runs = itertools.count()

_SCRIPT = f"""
local counter = 0
local prefix = "wrk"
function init(args) prefix = args[1] end
wrk.method = "PUT"
wrk.body = string.rep("x", {SIZE})
function request()
  counter = counter + 1
  return wrk.format(nil, "/media/" .. prefix .. "/" .. counter .. ".bin")
end
"""


def wrk_copies_per_second(hosts: list[str], script: Path) -> float:
    """wrk on every host at once; the sum of their requests a second."""
    prefix = f"wrk{next(_runs)}"
    runs = [
        subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{CONNECTIONS}",
                f"-d{SECONDS}s",
                "-s",
                str(script),
                f"http://{host}/",
                "--",
                f"{prefix}-{index}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for index, host in enumerate(hosts)
    ]
    total = 0.0
    for run in runs:
        out, _ = run.communicate(timeout=SECONDS + 30)
        match = re.search(r"Requests/sec:\s*([0-9.]+)", out)
        assert run.returncode == 0, out
        assert match is not None, out
        assert "Non-2xx" not in out, out
        total += float(match[1])
    return total


def test_put_many_against_the_servers_limit(
    benchmark: Any, bench_nginx: Nginx, tmp_path: Path
) -> None:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed (scripts/bench installs it)")
    script = tmp_path / "put.lua"
    script.write_text(_SCRIPT)
    hosts = bench_nginx.hosts[:3]
    data = os.urandom(SIZE)
    ours: list[float] = []
    theirs: list[float] = []
    cpu: list[float] = []

    def one_round() -> None:
        bench_nginx.clear()
        theirs.append(wrk_copies_per_second(hosts, script))
        bench_nginx.clear()
        prefix = f"pm{next(_runs)}"
        with Replicator(hosts, "/media/") as replicator:  # fresh connections, as wrk's
            started, clock = time.process_time(), time.perf_counter()
            results = replicator.put_many((f"{prefix}/{i}.bin", data) for i in range(FILES))
            ours.append(FILES * len(hosts) / (time.perf_counter() - clock))
            cpu.append((time.process_time() - started) / (FILES * len(hosts)) * 1e6)
        assert all(result.ok for result in results)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(
        {
            "put_many_copies_per_s": round(statistics.median(ours)),
            "wrk_copies_per_s": round(statistics.median(theirs)),
            "ratio": round(statistics.median(ours) / statistics.median(theirs), 2),
            "round_ratios": [round(o / t, 2) for o, t in zip(ours, theirs, strict=True)],
            "put_many_cpu_per_copy_us": round(statistics.median(cpu), 1),
        }
    )
