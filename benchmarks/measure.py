"""What the benchmarks measure besides wall time: CPU time of the replicating process, peak RSS.

CPU time is user + system time of this process (every thread) or of a child
that has exited; it is what replication costs the application server, and it
is steadier than wall time on a shared machine.  Peak RSS is VmHWM, reset
before each round through /proc/self/clear_refs where the kernel allows it.
"""

from __future__ import annotations

import os
import resource
import statistics
from dataclasses import dataclass, field
from pathlib import Path


def reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Rounds:
    """Per-round figures of one contender; the report takes medians."""

    name: str
    copies: int  # host-copies made per round
    files: int  # files per round
    nbytes: int  # bytes per host-copy
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)

    def add(self, wall: float, cpu: float, rss: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)
        self.rss.append(rss)

    @property
    def files_per_s(self) -> float:
        return self.files / statistics.median(self.wall)

    @property
    def mb_per_s(self) -> float:
        """Megabytes delivered per second, summed over hosts."""
        return self.copies * self.nbytes / 1e6 / statistics.median(self.wall)

    @property
    def cpu_per_copy_us(self) -> float:
        return statistics.median(self.cpu) / self.copies * 1e6

    @property
    def peak_rss(self) -> float:
        return max(self.rss)

    def as_dict(self) -> dict[str, float | str]:
        return {
            "name": self.name,
            "rounds": len(self.wall),
            "wall_s_median": statistics.median(self.wall),
            "files_per_s": self.files_per_s,
            "mb_per_s": self.mb_per_s,
            "cpu_per_copy_us": self.cpu_per_copy_us,
            "peak_rss_mib": self.peak_rss,
        }


def child_wait(pid: int) -> tuple[int, float, float]:
    """Wait for a child; its exit status, CPU seconds and peak RSS in MiB."""
    _, status, usage = os.wait4(pid, 0)
    return status, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
