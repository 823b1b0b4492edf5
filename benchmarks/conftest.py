"""Benchmark fixtures: nginx on tmpfs with 12 media hosts, and the summary table.

Each case runs several rounds per contender in the same session, against
the same nginx, one after another; the summary at the end gives medians and
the ratios the targets are about.  ``RESTO_FAST_BENCH_SMOKE=1`` shrinks every
case to a quick check that the benchmarks still run (CI does that).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.measure import Rounds
from testbed import Nginx, find_nginx, scratch_dir

SMOKE = os.environ.get("RESTO_FAST_BENCH_SMOKE", "") == "1"
ROOT = Path(__file__).resolve().parent.parent
_RESULTS: dict[str, dict[str, Rounds]] = {}


@pytest.fixture(scope="session")
def bench_nginx() -> Iterator[Nginx]:
    if find_nginx() is None:
        pytest.fail("nginx is not installed (scripts/bench installs it)")
    workdir = scratch_dir("resto-bench-nginx-")
    try:
        with Nginx(
            workdir, count=12, workers=2, status_hosts=(), body_buffer="1m", reuseport=True
        ) as nginx:
            yield nginx
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def source_dir() -> Iterator[Path]:
    path = scratch_dir("resto-bench-src-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def rounds_for(case: str, contender: str, *, copies: int, files: int, nbytes: int) -> Rounds:
    rounds = Rounds(contender, copies=copies, files=files, nbytes=nbytes)
    _RESULTS.setdefault(case, {})[contender] = rounds
    return rounds


def rotated(contenders: list[str], round_index: int) -> list[str]:
    """Round k runs every contender once, starting with the k-th: load bursts on these
    shared machines fall on all of them alike."""
    start = round_index % len(contenders)
    return contenders[start:] + contenders[:start]


def run_child(*args: str, module: str = "benchmarks.contenders") -> dict[str, float]:
    """Run one round of a contender in a child process; its JSON report.

    ``engine-python`` runs with ``RESTO_FAST_NO_EXTENSIONS=1``: the pure-Python twin of
    the whole compiled module (window, answer watch, loop), whatever is built.
    """
    twin = {"RESTO_FAST_NO_EXTENSIONS": "1"} if args[:1] == ("engine-python",) else {}
    completed = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, **twin},
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode:
        raise RuntimeError(f"contender failed:\n{completed.stderr}")
    report: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return report


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator else "n/a"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _RESULTS:
        return
    write = terminalreporter.write_line
    write("")
    write("resto_fast benchmark summary (medians; CPU is user+sys of the replicating process)")
    # Columns as wide as their longest entry: the in-process cases have long names.
    shown = [(case, name) for case, contenders in _RESULTS.items() for name in contenders]
    case_width = max(len("case"), *(len(case) for case, _ in shown)) + 2
    name_width = max(len("contender"), *(len(name) for _, name in shown)) + 2
    header = (
        f"{'case':<{case_width}}{'contender':<{name_width}}"
        f"{'files/s':>10}{'MB/s':>10}{'CPU/copy':>12}{'peak RSS':>11}"
    )
    write(header)
    write("-" * len(header))
    summary: dict[str, object] = {}
    for case, contenders in _RESULTS.items():
        for name, rounds in contenders.items():
            if not rounds.wall:
                continue
            rss = "-" if math.isnan(rounds.peak_rss) else f"{rounds.peak_rss:.1f}MiB"
            write(
                f"{case:<{case_width}}{name:<{name_width}}{rounds.files_per_s:>10.0f}"
                f"{rounds.mb_per_s:>10.1f}{rounds.cpu_per_copy_us:>10.0f}us{rss:>11}"
            )
        summary[case] = {name: r.as_dict() for name, r in contenders.items() if r.wall}
        # Each case's first contender is resto_fast's: the others are compared with it.
        engine_name, engine = next(iter(contenders.items()))
        for other_name, other in contenders.items():
            if (
                other is engine
                or other_name == "engine-python"
                or not engine.wall
                or not other.wall
            ):
                continue
            files_ratio = _ratio(engine.files_per_s, other.files_per_s)
            write(
                f"{'':<{case_width}}{engine_name} vs {other_name}: files/s {files_ratio},"
                f" MB/s {_ratio(engine.mb_per_s, other.mb_per_s)},"
                f" CPU/copy {_ratio(engine.cpu_per_copy_us, other.cpu_per_copy_us)}"
            )
    out = ROOT / ".benchmarks" / "summary.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    write(f"(written to {out.relative_to(ROOT)})")
