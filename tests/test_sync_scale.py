"""Scale: a million names are compared directory by directory, never held at once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from resto_fast import BUFFER_IMPLEMENTATION
from testbed import SyntheticTree

# The command in a child of its own, which then says its peak RSS (VmHWM: this process's own
# high-water mark; a wait4() figure would also count the parent it was forked from).
CHILD = """
import sys
from resto_fast._cli import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read()
peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
print(f"peak-kib {peak}", file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.slow
@pytest.mark.skipif(
    BUFFER_IMPLEMENTATION == "python", reason="no upload here: the compiled run covers it"
)
def test_a_million_names_are_verified_in_bounded_memory() -> None:
    with SyntheticTree(1000, 1000) as source, SyntheticTree(1000, 1000) as target:
        argv = ["verify", "--source-host", source.host, "--hosts", target.host]
        argv += ["--base-url", "/media/", "--processes", "1", "--json"]
        child = subprocess.run(
            [sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, check=False
        )
    summary = json.loads(child.stdout)
    assert child.returncode == 0, child.stderr
    assert summary["files"] == 1_000_000
    assert summary["directories"] == 1001
    assert summary["hosts"][target.host]["listed"] == 1_000_000
    peak_mib = int(child.stderr.split("peak-kib ")[1].split()[0]) / 1024
    assert peak_mib < 200, f"peak RSS {peak_mib:.0f} MiB"
