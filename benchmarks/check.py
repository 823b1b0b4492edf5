"""Fail when a run's CPU per host-copy regressed against a saved run.

``python -m benchmarks.check SAVED.json CURRENT.json [--threshold 0.10]``:
both are pytest-benchmark JSON files (``scripts/bench --save NAME`` writes
the first, every run writes ``.benchmarks/latest.json``).  Each benchmark
that records ``cpu_per_copy_us`` in its ``extra_info`` is compared by name;
the exit status is 1 when any of them costs more than ``threshold`` above the
saved run.  CPU time rather than wall time: on a shared machine the wall
clock moves with the neighbours' load, the CPU a copy costs much less.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

METRIC = "cpu_per_copy_us"


def figures(path: Path) -> dict[str, dict[str, Any]]:
    """Each benchmark's ``extra_info``, by its full name."""
    data = json.loads(path.read_text())
    return {
        bench["fullname"]: bench.get("extra_info", {})
        for bench in data.get("benchmarks", [])
        if METRIC in bench.get("extra_info", {})
    }


def compare(saved: Path, current: Path, threshold: float) -> tuple[list[str], bool]:
    """The report's lines, and whether every shared benchmark stayed within ``threshold``."""
    before, after = figures(saved), figures(current)
    lines = [f"{'benchmark':<58}{'saved':>10}{'now':>10}{'change':>9}"]
    ok = True
    for name in sorted(before.keys() & after.keys()):
        old, new = before[name][METRIC], after[name][METRIC]
        change = new / old - 1 if old else 0.0
        regressed = change > threshold
        ok = ok and not regressed
        mark = "  REGRESSED" if regressed else ""
        short = name.split("::", 1)[-1]
        lines.append(f"{short:<58}{old:>8.1f}us{new:>8.1f}us{change:>+8.0%}{mark}")
    for name in sorted(before.keys() ^ after.keys()):
        where = "saved run" if name in before else "this run"
        lines.append(f"{name.split('::', 1)[-1]:<58}  only in the {where}")
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.check", description=__doc__)
    parser.add_argument("saved", type=Path)
    parser.add_argument("current", type=Path)
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.10,
        help="largest CPU increase per copy tolerated, as a fraction (default 0.10)",
    )
    args = parser.parse_args(argv)
    lines, ok = compare(args.saved, args.current, args.threshold)
    print(f"CPU per host-copy, {args.current.name} against {args.saved.name}:")
    print("\n".join(lines))
    print("OK: no regression" if ok else f"FAIL: CPU per copy up by more than {args.threshold:.0%}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
