"""Resyncing media servers from a master copy: ``resto-fast sync`` to three hosts, against rsync.

One source tree on tmpfs, 10,000 files of 4 KiB in 100 directories, and two
cases: a fresh host (every destination empty), and a 1% drift (every
destination in sync, then 1% of the files given new content of the same
size and a newer date), where listing dominates.  Contenders:

* ``resto-fast p2``, ``resto-fast p1``: ``python -m resto_fast sync SRC
  --hosts H1,H2,H3 --base-url /media/ --processes 2|1 --quiet`` to three nginx
  hosts (WebDAV on tmpfs, PROPFIND from the dav-ext module);
* ``rsync x3 in turn``: ``rsync -a SRC/ rsync://127.0.0.1:PORT/modN/`` to
  three modules of an rsync daemon on loopback (on tmpfs), one after
  another, as operators repair hosts today: the sum of the three;
* ``rsync x1``: one of them, the stretch goal's reference.

Every command runs to its end as a child of its own, Python's start-up
included, as an operator runs it.  Wall time runs from its start to its
exit; client CPU is user + system time of it and of every process it
started (see :func:`timed`); what the servers spend (nginx, the rsync
daemon's per-connection processes) is not counted.  Each round runs every
contender once, in a rotated order; after each run the destinations it
filled are checked against the source (file count, and the content of the
changed files and a sample of the others), so a contender that silently did
nothing cannot win.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import math
import os
import random
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.conftest import ROOT, SMOKE, rotated, rounds_for
from benchmarks.measure import Rounds
from benchmarks.rsync import RsyncDaemon, find_rsync
from testbed import Nginx, scratch_dir

SIZE = 4096
DIRECTORIES = 4 if SMOKE else 100
FILES = 200 if SMOKE else 10_000
DRIFTED = max(1, FILES // 100)  # files changed before each drift run
HOSTS = 3
ROUNDS = 1 if SMOKE else 5
SAMPLE = 20 if SMOKE else 100  # unchanged files whose content is checked after each run
CASES = {"fresh": f"sync fresh {FILES}x4KiB", "drift": f"sync 1% drift {FILES}x4KiB"}
# The first is compared with the others in the summary: --processes defaults to the CPU
# count, 2 on the machines these figures come from.
CONTENDERS = ["resto-fast p2", "resto-fast p1", "rsync x3 in turn", "rsync x1"]


# -- timing a command with everything it started ------------------------------------------


_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
_REAP_WAIT = 30.0  # seconds the processes a command left behind get to end


def _adopt_orphans(adopt: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, int(adopt), 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(error)}")


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds
    cpu: float  # user + system seconds

    def __add__(self, other: Timing) -> Timing:
        return Timing(self.wall + other.wall, self.cpu + other.cpu)


def timed(argv: list[str]) -> Timing:
    """Run a command to its end: its wall time, and the CPU time of it and of every process
    it started.

    ``--processes 2`` forks its workers from multiprocessing's forkserver,
    which the command leaves running when it exits (it ends a moment later,
    with the resource tracker): their CPU would reach neither the command's
    own rusage nor this process's RUSAGE_CHILDREN (seen: 0.17 s counted of
    2.5 s).  So the command runs in a process group of its own, this process
    adopts orphans while it runs (``PR_SET_CHILD_SUBREAPER``), and the
    group's leftovers are waited for here: each one's rusage carries the
    processes it reaped itself (the forkserver's, its workers).

    Peak RSS is not measured: a child's ``ru_maxrss`` starts at its parent's
    when it execs (fork or vfork alike), so each would read as the test
    runner's 60 MiB, whatever rsync or resto-fast used.
    """
    with tempfile.TemporaryFile() as output:
        _adopt_orphans(True)
        try:
            started = time.perf_counter()
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
            process.returncode = os.waitstatus_to_exitcode(status)
            usages = [usage, *_reap_group(process.pid)]
        finally:
            _adopt_orphans(False)
        if process.returncode:
            output.seek(0)
            said = output.read().decode(errors="replace")
            raise RuntimeError(f"{shlex.join(argv)} exited with {process.returncode}:\n{said}")
    return Timing(wall, sum(usage.ru_utime + usage.ru_stime for usage in usages))


def _reap_group(group: int) -> Iterator[resource.struct_rusage]:
    """Wait for this process's children in process group ``group``; each one's rusage."""
    deadline = time.monotonic() + _REAP_WAIT
    while True:
        try:
            pid, _, usage = os.wait4(-group, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            yield usage
            continue
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        time.sleep(0.005)


# -- the source tree and the destinations -------------------------------------------------


@dataclass(frozen=True)
class Tree:
    root: Path
    names: list[str]  # every file, relative to the root


def _make_tree(root: Path) -> Tree:
    names = []
    per_directory = FILES // DIRECTORIES
    for directory in range(DIRECTORIES):
        (root / f"d{directory:03}").mkdir(parents=True)
        for index in range(per_directory):
            name = f"d{directory:03}/f{index:04}.bin"
            (root / name).write_bytes(os.urandom(SIZE))
            names.append(name)
    return Tree(root, names)


_last_drift = 0.0


def drift(tree: Tree, rng: random.Random) -> list[str]:
    """New content (same size) for 1% of the files, dated 2 s ahead so a size-and-date comparison
    sees them whatever the resolution of the clock and of HTTP dates; the names changed.

    Each drift is dated a whole second after the last one: a file changed twice within one
    second, to the same size, is the same file for a date read to the second (HTTP's
    ``Last-Modified``, and rsync's quick check alike); rounds run faster than that.
    """
    global _last_drift
    changed = rng.sample(tree.names, DRIFTED)
    ahead = _last_drift = max(time.time() + 2, _last_drift + 1)
    for name in changed:
        path = tree.root / name
        path.write_bytes(os.urandom(SIZE))
        os.utime(path, (ahead, ahead))
    return changed


def mirror(tree: Tree, destination: Path) -> None:
    """Make ``destination`` hold the tree, dates included (untimed: the drift case's start)."""
    for name in tree.names:
        source = (tree.root / name).stat()
        target = destination / name
        with contextlib.suppress(FileNotFoundError):
            held = target.stat()
            if (held.st_size, held.st_mtime_ns) == (source.st_size, source.st_mtime_ns):
                continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(tree.root / name, target)


def check_holds(tree: Tree, destination: Path, names: list[str]) -> None:
    """``destination`` has as many files as the tree, and ``names`` with the source's content."""
    count = sum(len(files) for _, _, files in os.walk(destination))
    assert count == len(tree.names), f"{destination} holds {count} files, not {len(tree.names)}"
    for name in names:
        held = (destination / name).read_bytes()
        assert held == (tree.root / name).read_bytes(), f"{destination / name} differs"


# -- the contenders -----------------------------------------------------------------------


@dataclass(frozen=True)
class Contender:
    name: str
    commands: list[list[str]]  # run one after another; timed as one
    destinations: list[Path]  # what they fill

    def run(self) -> Timing:
        timings = [timed(command) for command in self.commands]
        return sum(timings[1:], timings[0])


@pytest.fixture(scope="session")
def rsync_daemon() -> Iterator[RsyncDaemon]:
    if find_rsync() is None:
        pytest.fail("rsync is not installed (scripts/bench installs it)")
    workdir = scratch_dir("resto-bench-rsync-")
    try:
        with RsyncDaemon(workdir, count=HOSTS) as daemon:
            yield daemon
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def tree(source_dir: Path) -> Tree:
    # A directory of its own: the large-file benchmark leaves its file in source_dir.
    return _make_tree(source_dir / "sync-tree")


@pytest.fixture(scope="module")
def contenders(bench_nginx: Nginx, rsync_daemon: RsyncDaemon, tree: Tree) -> dict[str, Contender]:
    if not bench_nginx.propfind:
        pytest.fail("nginx cannot list (PROPFIND): install libnginx-mod-http-dav-ext")
    rsync = find_rsync()
    assert rsync is not None

    def resto_fast(processes: int) -> list[list[str]]:
        hosts = ",".join(bench_nginx.hosts[:HOSTS])
        command = [sys.executable, "-m", "resto_fast", "sync", str(tree.root), "--hosts", hosts]
        command += ["--base-url", "/media/", "--processes", str(processes), "--quiet"]
        return [command]

    def rsync_to(count: int) -> list[list[str]]:
        return [[rsync, "-a", f"{tree.root}/", rsync_daemon.url(index)] for index in range(count)]

    nginx_roots = [bench_nginx.root(index) / "media" for index in range(HOSTS)]
    modules = [rsync_daemon.path(index) for index in range(HOSTS)]
    found = [
        Contender("resto-fast p2", resto_fast(2), nginx_roots),
        Contender("resto-fast p1", resto_fast(1), nginx_roots),
        Contender("rsync x3 in turn", rsync_to(HOSTS), modules),
        Contender("rsync x1", rsync_to(1), modules[:1]),
    ]
    assert [contender.name for contender in found] == CONTENDERS
    return {contender.name: contender for contender in found}


# -- the cases ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(CASES))
def test_sync(
    benchmark,
    bench_nginx: Nginx,
    rsync_daemon: RsyncDaemon,
    tree: Tree,
    contenders: dict[str, Contender],
    kind: str,
) -> None:
    case = CASES[kind]
    sent = FILES if kind == "fresh" else DRIFTED  # files each host receives
    rounds = {
        name: rounds_for(
            case,
            name,
            copies=len(contender.destinations) * sent,
            files=FILES,
            nbytes=SIZE,
        )
        for name, contender in contenders.items()
    }
    every_destination = [bench_nginx.root(index) / "media" for index in range(HOSTS)]
    every_destination += [rsync_daemon.path(index) for index in range(HOSTS)]
    rng = random.Random(case)
    order = itertools.count()

    def one_round() -> None:
        for name in rotated(CONTENDERS, next(order)):
            contender = contenders[name]
            if kind == "fresh":
                bench_nginx.clear()
                rsync_daemon.clear()
                changed: list[str] = []
            else:
                for destination in every_destination:
                    mirror(tree, destination)
                changed = drift(tree, rng)
            timing = contender.run()
            rounds[name].add(timing.wall, timing.cpu, math.nan)  # peak RSS: see timed
            checked = changed + rng.sample(tree.names, SAMPLE)
            for destination in contender.destinations:
                check_holds(tree, destination, checked)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(_figures(rounds))


def _figures(rounds: dict[str, Rounds]) -> dict[str, object]:
    """Each contender's medians (client CPU in seconds too) and rounds, and the ratios the goal
    is about: resto-fast's wall time over rsync's to three hosts in turn, and to one."""
    figures: dict[str, object] = {
        name: {
            **r.as_dict(),
            "cpu_s_median": statistics.median(r.cpu),
            "wall_s": r.wall,
            "cpu_s": r.cpu,
        }
        for name, r in rounds.items()
    }
    for name in ("resto-fast p2", "resto-fast p1"):
        wall = statistics.median(rounds[name].wall)
        for reference in ("rsync x3 in turn", "rsync x1"):
            figures[f"{name} / {reference} (wall)"] = wall / statistics.median(
                rounds[reference].wall
            )
    return figures
