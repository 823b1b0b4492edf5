"""Convergence under faults: a thousand random saves, overwrites and deletes, and every host ends
byte for byte equal to the master copy.

Seeded and repeatable.  Fifty names get 1,000 operations (sizes 0 B to 3 MiB)
from a site process, through an AsyncStorage to four hosts: three nginx hosts
(the first behind a relay that goes down for a while, then comes back, as a
stopped and restarted server) and an embedded server that answers 500 at
random.  With the ``tasks`` queue, two db_worker processes run the
replication; one is SIGKILLed mid-run and started again.  When the queue has
drained, every host's tree equals the master copy.  The same run on the
``thread`` queue (the site process itself replicating, killed mid-run and
started again with the operations it had left) ends with ``resto-fast sync``,
to the same result.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from resto_fast import BUFFER_IMPLEMENTATION
from testbed import FlakyServer, Nginx, Relay
from tests.sync_support import tree
from tests.test_queue_workers import Site, tasks_framework

pytestmark = [
    pytest.mark.nginx,
    pytest.mark.slow,
    pytest.mark.skipif(
        BUFFER_IMPLEMENTATION == "python", reason="the queues, not the buffer: the compiled run"
    ),
]

SEED = 20261129
OPERATIONS = 1000
NAMES = [f"n{index // 10}/file-{index:02}.bin" for index in range(50)]
MiB = 1024 * 1024


def operations(seed: int) -> list[list[Any]]:
    """Saves (new or overwriting) and deletes of 50 names, sizes 0 B to 3 MiB, mostly small."""
    rng = random.Random(seed)
    chosen: list[list[Any]] = []
    for index in range(OPERATIONS):
        name = rng.choice(NAMES)
        if rng.random() < 0.25:
            chosen.append(["delete", name])
        else:
            size = rng.choice([0, rng.randrange(1, 64 * 1024), rng.randrange(1, 3 * MiB + 1)])
            chosen.append(["save", name, size, seed * 10_000 + index])
    return chosen


class Faults:
    """The hosts of one run, and what they did to it."""

    def __init__(self, nginx: Nginx, workdir: Path) -> None:
        self.relay = Relay(nginx.hosts[0])  # host 0, stopped and restarted through it
        self.flaky = FlakyServer(workdir / "flaky", rate=0.1, seed=SEED)
        self.flaky.start()
        self.hosts = [self.relay.host, nginx.hosts[1], nginx.hosts[2], self.flaky.host]
        self.roots = [nginx.root(index) / "media" for index in range(3)]
        self.roots.append(workdir / "flaky" / "media")
        self.downtime = 0.0

    def trees(self) -> list[dict[str, bytes]]:
        return [tree(root) for root in self.roots]

    def close(self) -> None:
        self.relay.close()
        self.flaky.stop()


@pytest.fixture
def faults(media: Nginx, tmp_path: Path) -> Iterator[Faults]:
    made = Faults(media, tmp_path)
    try:
        yield made
    finally:
        made.close()


def drive_in_parts(
    site: Site, chosen: list[list[Any]], during: Callable[[int], None], parts: int = 10
) -> None:
    """The site runs the operations in parts, and ``during(part)`` injects faults between."""
    size = -(-len(chosen) // parts)
    for part in range(parts):
        site.drive(chosen[part * size : (part + 1) * size])
        during(part)


def divergences(faults: Faults, master: Path) -> int:
    """Files that differ, are missing or are extra, summed over the hosts."""
    truth = tree(master)
    found = 0
    for held in faults.trees():
        found += sum(1 for name in truth.keys() | held.keys() if truth.get(name) != held.get(name))
    return found


def busy(database: Path, worker: str, timeout: float = 60) -> None:
    """Wait until ``worker`` is running a task (the database backend records who claimed it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(database, timeout=60) as db:
            running = db.execute(
                "SELECT worker_ids FROM django_tasks_database_dbtaskresult WHERE status = 'RUNNING'"
            ).fetchall()
        if any(worker in json.loads(ids) for (ids,) in running):
            return
        time.sleep(0.005)
    pytest.fail(f"{worker} never ran a task")


def pending_tasks(database: Path) -> int:
    with sqlite3.connect(database, timeout=60) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM django_tasks_database_dbtaskresult"
            " WHERE status IN ('READY', 'RUNNING')"
        ).fetchone()
    return int(count)


def test_the_tasks_queue_converges_through_a_host_down_random_500s_and_a_killed_worker(
    faults: Faults, tmp_path: Path
) -> None:
    tasks_framework()
    site = Site(
        tmp_path / "site",
        {
            "hosts": faults.hosts,
            "queue": "tasks",
            "retries": 40,
            "retry_delay": 0.2,
            "retry_max_delay": 1.0,
            "task_lease": 3.0,  # a task of the killed worker is taken for lost after 3 s
            "host_cooldown": 0.5,
            "timeout": 2,
        },
    )
    site.django("migrate", "-v0")
    worker = ["-m", "django", "db_worker", "--interval", "0.05", "--no-startup-delay"]
    workers = [site.start(sys.executable, *worker, "--worker-id", f"w{n}") for n in range(2)]
    database = Path(json.loads(site.env["RESTO_TEST_SITE"])["database"])
    chosen = operations(SEED)
    kills = 0

    def during(part: int) -> None:
        nonlocal kills
        if part == 2:
            faults.relay.cut()  # host 0 stops ...
            faults.downtime = time.monotonic()
        if part == 4:
            busy(database, "w0")  # a worker dies in the middle of a task ...
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait()
            kills += 1
            workers[0] = site.start(sys.executable, *worker, "--worker-id", "w2")  # ... and one
            # starts again
        if part == 6:
            faults.relay.restore()  # ... and host 0 is back
            faults.downtime = time.monotonic() - faults.downtime

    drive_in_parts(site, chosen, during)
    deadline = time.monotonic() + 240
    while pending_tasks(database) or divergences(faults, site.master):
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    found = divergences(faults, site.master)
    print(
        f"\n{len(chosen)} operations on {len(NAMES)} names, 4 hosts; faults: host 0 down "
        f"{faults.downtime:.1f} s, {faults.flaky.failures} answers of 500, {kills} worker "
        f"killed; divergences: {found}; files in the master copy: {len(tree(site.master))}"
    )
    site.stop()
    assert found == 0, site.logs()[-5000:]
    assert faults.flaky.failures > 0
    assert kills == 1
    assert "was lost (its worker gone for 3 s): queued again" in site.logs()  # and recovered


def test_the_thread_queue_ended_by_resto_sync_converges_too(faults: Faults, tmp_path: Path) -> None:
    site = Site(
        tmp_path / "site",
        {"hosts": faults.hosts, "timeout": 2, "host_cooldown": 0.5},  # queue: thread
    )
    chosen = operations(SEED)
    half = len(chosen) // 2
    site.drive(chosen[:100])  # then host 0 stops
    faults.relay.cut()
    started = time.monotonic()
    # The site itself replicates (its worker thread), and is SIGKILLed half-way: what it had
    # queued is lost.  Started again, it runs the operations it had left.
    script = tmp_path / "first-half.json"
    script.write_text(json.dumps(chosen[100:half]))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.queue_driver", str(script)],
        env=site.env,
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert child.stdout is not None
    done = 0
    for _ in child.stdout:
        done += 1
        if done == (half - 100) // 2:
            child.send_signal(signal.SIGKILL)
            break
    child.wait()
    child.stdout.close()
    site.drive(chosen[100 + done :])
    faults.relay.restore()  # back only now: what it missed, nothing will send it but a resync
    downtime = time.monotonic() - started
    before = divergences(faults, site.master)
    faults.flaky.rate = 0.0  # the resync itself on a quiet night
    sync = site.run(
        *(sys.executable, "-m", "resto_fast", "sync", str(site.master)),
        *("--hosts", ",".join(faults.hosts), "--base-url", "/media/", "--delete", "--quiet"),
    )
    after = divergences(faults, site.master)
    print(
        f"\n{len(chosen)} operations; host 0 down {downtime:.1f} s, {faults.flaky.failures} "
        f"answers of 500, the site killed once; divergences before the resync: {before}, "
        f"after: {after}"
    )
    assert sync.returncode == 0
    assert after == 0
    assert before > 0  # the thread queue alone does not converge: that is what resync is for
