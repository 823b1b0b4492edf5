"""A 1 GiB file streams to every host with the replicating process's memory bounded.

Peak RSS is read in a child process (VmHWM from /proc), before and after the
upload, so nothing else of the test run weighs on it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testbed import Nginx

pytestmark = [pytest.mark.nginx, pytest.mark.slow]

GiB = 1024**3
MiB = 1024**2
MARKERS = [0, 4096 + 3, 123 * MiB + 5, 512 * MiB - 1, GiB - 16]

CHILD = textwrap.dedent(
    """
    import json, sys
    from resto_fast import Replicator

    def peak_kib():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    hosts, path = json.loads(sys.argv[1]), sys.argv[2]
    with Replicator(hosts, "/media/") as replicator:
        replicator.put("warm-up", b"x" * 100_000).raise_for_failures()
        before = peak_kib()
        result = replicator.put("big/sparse.bin", path)
        after = peak_kib()
    print(json.dumps({"before": before, "after": after,
                      "outcomes": [h.outcome.value for h in result],
                      "sent": [h.transferred for h in result]}))
    """
)


def test_a_1_gib_upload_keeps_peak_rss_bounded(media: Nginx, scratch: Path) -> None:
    source = scratch / "sparse.bin"
    with source.open("wb") as file:
        file.truncate(GiB)
        for offset in MARKERS:
            file.seek(offset)
            file.write(b"MARK" * 4)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(media.hosts), str(source)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    report = json.loads(out)
    assert report["outcomes"] == ["created"] * 3
    assert report["sent"] == [GiB] * 3
    growth_mib = (report["after"] - report["before"]) / 1024
    # The window (8 MiB) and libcurl's upload buffers (1 MiB per host), not the file.
    assert growth_mib < 32, f"peak RSS grew by {growth_mib:.1f} MiB"
    for index in range(3):
        copy = media.path(index, "big/sparse.bin")
        assert copy.stat().st_size == GiB
        with copy.open("rb") as file:
            for offset in MARKERS:
                file.seek(offset)
                assert file.read(16) == b"MARK" * 4
        copy.unlink()  # three GiB of tmpfs: give it back now
