"""The replication task on real queues, run by real workers in processes of their own.

A site (tests/queue_driver.py) saves and deletes files through an AsyncStorage
whose queue is Django's Tasks framework (the database backend on SQLite, run
by ``manage.py db_worker``), rq (``rq worker``) or Celery (``celery worker``),
the last two on a real redis-server; then the hosts must hold what the
master copy holds.  The settings of every process: tests/worker_settings.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from resto_fast.http_server import TestHttpServer
from testbed import Nginx
from tests.media_sets import running_embedded
from tests.queue_driver import content
from tests.sync_support import host_tree, tree

pytestmark = pytest.mark.nginx

ROOT = Path(__file__).resolve().parent.parent
Operation = list[Any]


class Site:
    """One site's settings (as the environment of its processes) and its processes."""

    def __init__(self, workdir: Path, options: dict[str, Any]) -> None:
        self.master = workdir / "master"
        self.master.mkdir(parents=True)
        settings = {
            "database": str(workdir / "site.sqlite3"),
            "master": str(self.master),
            "options": {"base_url": "/media/", **options},
        }
        self.env = {
            **os.environ,
            "RESTO_TEST_SITE": json.dumps(settings),
            "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
            "PYTHONPATH": str(ROOT),
        }
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            argv, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    def django(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-m", "django", *argv, timeout=timeout)

    def drive(self, operations: list[Operation]) -> None:
        script = self.workdir / f"operations-{len(self.processes)}-{time.monotonic_ns()}.json"
        script.write_text(json.dumps(operations))
        self.run(sys.executable, "-m", "tests.queue_driver", str(script))

    def start(self, *argv: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"worker-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.processes.append(process)
        return process

    def logs(self) -> str:
        return "".join(path.read_text() for path in sorted(self.workdir.glob("worker-*.log")))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Callable[..., Site]]:
    made: list[Site] = []

    def make(**options: Any) -> Site:
        made.append(Site(tmp_path / f"site{len(made)}", options))
        return made[-1]

    yield make
    for one in made:
        one.stop()


def wait_for(check: Callable[[], bool], site: Site, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not in step after {timeout} s; the workers said:\n{site.logs()[-4000:]}")
        time.sleep(0.1)


def expected(operations: list[Operation]) -> dict[str, bytes]:
    """What the master copy holds after the operations, by name."""
    files: dict[str, bytes] = {}
    for operation in operations:
        if operation[0] == "save":
            files[operation[1]] = content(operation[2], operation[3])
        else:
            files.pop(operation[1], None)
    return files


OPERATIONS: list[Operation] = [
    ["save", "a/one.bin", 5000, 1],
    ["save", "a/two.bin", 0, 2],
    ["save", "b/été 😀.bin", 300_000, 3],
    ["save", "a/one.bin", 7000, 4],  # overwritten
    ["delete", "a/two.bin"],
    ["delete", "never/there.bin"],
]


def in_step(media: Nginx, site: Site) -> bool:
    return tree(site.master) == expected(OPERATIONS) and all(
        host_tree(media, index) == expected(OPERATIONS) for index in range(3)
    )


def tasks_framework() -> None:
    from resto_fast.tasks import replicate_task

    if replicate_task is None:
        pytest.skip("no Tasks framework here (Django 6, or django-tasks on Django 5.2)")
    pytest.importorskip("django_tasks_db")


def test_a_db_worker_runs_the_tasks(media: Nginx, site: Callable[..., Site]) -> None:
    tasks_framework()
    one = site(hosts=media.hosts, queue="tasks")
    one.django("migrate", "-v0")
    one.drive(OPERATIONS)
    assert all(host_tree(media, index) == {} for index in range(3))  # queued, not run
    one.django("db_worker", "--batch", "--no-startup-delay", "--interval", "0")
    assert in_step(media, one)
    # One task per save or delete, each as the master copy was when it ran: the first save
    # of a/one.bin already sent the second version, so 4 PUTs per host at most.
    for host in media.hosts:
        puts = [r.uri for r in media.requests(host) if r.method == "PUT"]
        assert set(puts) == {"/media/a/one.bin", "/media/b/été 😀.bin"}


def test_an_rq_worker_runs_the_tasks(
    media: Nginx, site: Callable[..., Site], redis_url: str
) -> None:
    one = site(hosts=media.hosts, queue="rq", redis_url=redis_url, rq_queue="media")
    one.drive(OPERATIONS)
    assert all(host_tree(media, index) == {} for index in range(3))
    one.run(sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", redis_url, "media")
    assert in_step(media, one)


def test_a_celery_worker_runs_the_tasks(
    media: Nginx, site: Callable[..., Site], redis_url: str
) -> None:
    pytest.importorskip("celery")
    one = site(
        hosts=media.hosts,
        queue="celery",
        redis_url=redis_url,
        celery_app="tests.celery_app.app",
        celery_queue="media",
    )
    one.drive(OPERATIONS)
    assert all(host_tree(media, index) == {} for index in range(3))
    one.start(
        *(sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker"),
        *("--pool", "solo", "--queues", "media", "--loglevel", "WARNING", "--without-gossip"),
    )
    wait_for(lambda: in_step(media, one), one)


@pytest.fixture
def flaky() -> Iterator[TestHttpServer]:
    """An embedded media server, here in the test's process, failing (500) until told."""
    with running_embedded(1) as (server,):
        server.override_code = 500
        yield server


def _held(server: TestHttpServer, name: str) -> bytes | None:
    return server.files.get(f"media/{name}")


@pytest.mark.parametrize("queue", ["tasks", "rq", "celery"])
def test_a_host_that_failed_is_retried_by_the_worker_until_it_is_back(
    media: Nginx,
    site: Callable[..., Site],
    redis_url: str,
    flaky: TestHttpServer,
    queue: str,
) -> None:
    options: dict[str, Any] = {"queue": queue, "retry_delay": 0.5, "retry_max_delay": 1}
    if queue == "tasks":
        tasks_framework()
    elif queue == "rq":
        options |= {"redis_url": redis_url, "rq_queue": "retries"}
    else:
        pytest.importorskip("celery")
        options |= {"redis_url": redis_url, "celery_app": "tests.celery_app.app"}
        options |= {"celery_queue": "retries"}
    one = site(hosts=[media.hosts[0], flaky.host], **options)
    if queue == "tasks":
        one.django("migrate", "-v0")
        one.start(sys.executable, "-m", "django", "db_worker", "--interval", "0.1")
    elif queue == "rq":
        one.start(
            *(sys.executable, "-m", "rq.cli", "worker", "--with-scheduler", "--url", redis_url),
            "retries",
        )
    else:
        one.start(
            *(sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker"),
            *("--pool", "solo", "--queues", "retries", "--loglevel", "INFO", "--without-gossip"),
        )
    one.drive([["save", "r/late.bin", 2000, 9]])
    wait_for(lambda: media.path(0, "r/late.bin").exists(), one)
    wait_for(lambda: any(method == "PUT" for method, _, _ in flaky.log), one)
    assert _held(flaky, "r/late.bin") is None  # it failed there
    flaky.override_code = None  # back: the next retry brings it in step
    wait_for(lambda: _held(flaky, "r/late.bin") == content(2000, 9), one)
    assert "attempt 2 for" in one.logs()
