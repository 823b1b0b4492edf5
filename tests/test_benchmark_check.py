"""benchmarks/check.py: a regression of CPU per copy fails the comparison, noise does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.check import main


def run_file(path: Path, **cpu: float) -> Path:
    path.write_text(
        json.dumps(
            {
                "benchmarks": [
                    {
                        "fullname": f"benchmarks/test_regression.py::{name}",
                        "extra_info": {"cpu_per_copy_us": value},
                    }
                    for name, value in cpu.items()
                ]
                + [{"fullname": "benchmarks/test_sync.py::wall_only", "extra_info": {}}]
            }
        )
    )
    return path


def test_a_regression_past_the_threshold_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = run_file(tmp_path / "saved.json", put=40.0, save=100.0, gone=5.0)
    steady = run_file(tmp_path / "steady.json", put=43.0, save=95.0, new=1.0)
    slower = run_file(tmp_path / "slower.json", put=47.0, save=95.0)
    assert main([str(saved), str(steady)]) == 0  # +7.5%: within 10%
    out = capsys.readouterr().out
    assert "OK: no regression" in out
    assert any(
        line.split()[:1] == ["gone"] and "only in the saved run" in line
        for line in out.splitlines()
    )
    assert main([str(saved), str(slower)]) == 1  # +17.5%
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines() if "REGRESSED" in line] == ["put"]
    assert main([str(saved), str(slower), "--threshold", "0.2"]) == 0
