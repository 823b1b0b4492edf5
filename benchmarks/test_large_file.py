"""One large file to 3 hosts: the engine against the threaded baseline and curl --parallel.

Two cases.  Against nginx (WebDAV on tmpfs), the servers do most of the work
and their CPU cost swings from round to round on these shared machines, so
throughput there says more about nginx than about the client.  Against
discard sinks (a process each, dropping the body), the client is the
bottleneck: that case compares clients.  CPU per copy and peak RSS are the
client's own in both.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.conftest import ROOT, SMOKE, rotated, rounds_for, run_child
from benchmarks.measure import child_wait
from testbed import Nginx, free_port

MiB = 1024 * 1024
SIZE = (8 if SMOKE else 512) * MiB
HOSTS = 3
ROUNDS = 1 if SMOKE else 7
CONTENDERS = ["engine-cython", "engine-python", "threads-urllib", "curl-parallel"]


@pytest.fixture(scope="module")
def large_file(source_dir: Path) -> Path:
    path = source_dir / "large.bin"
    block = os.urandom(MiB)
    with path.open("wb") as file:
        for index in range(SIZE // MiB):
            file.write(index.to_bytes(8, "big") + block[8:])
    return path


@pytest.fixture(scope="module")
def sinks() -> Iterator[list[str]]:
    ports = [free_port() for _ in range(HOSTS)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.sink", str(port)], cwd=ROOT, stdout=subprocess.PIPE
        )
        for port in ports
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == b"ready"
        yield [f"127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()


def curl_round(hosts: list[str], path: Path, name: str) -> dict[str, float]:
    """``curl --parallel -T``: libcurl's own tool, reading the file once per host."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed (scripts/bench installs it)")
    args = [curl, "--silent", "--show-error", "--fail", "--parallel"]
    args += ["--parallel-max", str(len(hosts)), "--header", "Expect:"]  # no 100-continue wait
    for host in hosts:
        args += ["--upload-file", str(path), f"http://{host}/media/{name}", "--output", "/dev/null"]
    started = time.perf_counter()
    process = subprocess.Popen(args)
    status, cpu, rss = child_wait(process.pid)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"curl failed with {process.returncode}")
    return {"wall": wall, "cpu": cpu, "rss": rss}


def _run(benchmark, case: str, hosts: list[str], path: Path, setup, check) -> None:
    """Rounds of every contender, interleaved: round k runs each once, in a rotated order.

    The servers' cost swings in bursts longer than one upload; interleaving
    spreads them over all contenders, so their medians stay comparable.
    pytest-benchmark times one whole round (all contenders); each
    contender's own figures are in ``extra_info`` and in the summary.
    """
    rounds = {
        contender: rounds_for(case, contender, copies=HOSTS, files=1, nbytes=SIZE)
        for contender in CONTENDERS
    }
    order = itertools.count()

    def one_round() -> None:
        for contender in rotated(CONTENDERS, next(order)):
            setup()
            name = f"large-{time.monotonic_ns()}.bin"
            if contender == "curl-parallel":
                report = curl_round(hosts, path, name)
            else:
                report = run_child(contender, "large", json.dumps(hosts), str(path), name)
            rounds[contender].add(report["wall"], report["cpu"], report["rss"])
            check(name)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update({name: r.as_dict() for name, r in rounds.items()})


def test_large_file_to_nginx(benchmark, bench_nginx: Nginx, large_file: Path) -> None:
    hosts = bench_nginx.hosts[:HOSTS]

    def check(name: str) -> None:
        for index in range(HOSTS):
            assert bench_nginx.path(index, name).stat().st_size == SIZE

    case = f"{SIZE // MiB} MiB -> {HOSTS} nginx"
    _run(benchmark, case, hosts, large_file, bench_nginx.clear, check)


def test_large_file_to_sinks(benchmark, sinks: list[str], large_file: Path) -> None:
    case = f"{SIZE // MiB} MiB -> {HOSTS} sinks"
    _run(benchmark, case, sinks, large_file, lambda: None, lambda name: None)
