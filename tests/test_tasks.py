"""The replication task in this process: what it does, its retries, repairs and the quorum.

The queues with their own worker processes are in tests/test_queue_workers.py.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.test import override_settings

from resto_fast import ConfigurationError, ReplicationError
from resto_fast._queues import QueueConfig, backoff
from resto_fast.http_server import TestHttpServer
from resto_fast.storage import AsyncStorage, HybridStorage
from resto_fast.tasks import replicate
from testbed import Nginx
from tests.media_sets import forget_storages, running_embedded

pytestmark = pytest.mark.nginx


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def configure(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``configure(backend, hosts, **options)``: STORAGES["media"] (not "default": see
    tests/test_sync_commands.py), built anew; returns that storage."""
    overrides: list[Any] = []

    def configure(backend: str, hosts: list[str], **options: Any) -> Any:
        if backend != "DistributedStorage":
            options.setdefault("location", str(tmp_path / "master"))
        entry = {
            "BACKEND": f"resto_fast.storage.{backend}",
            "OPTIONS": {"hosts": hosts, "base_url": "/media/", **options},
        }
        static = {"BACKEND": "django.core.files.storage.InMemoryStorage"}
        override = override_settings(STORAGES={"media": entry, "staticfiles": static})
        override.enable()
        overrides.append(override)
        forget_storages()
        return storages["media"]

    yield configure
    for override in reversed(overrides):
        override.disable()
    forget_storages()


def test_replicate_sends_what_the_master_copy_has_and_deletes_what_it_lacks(
    media: Nginx, configure: Callable[..., Any]
) -> None:
    storage = configure("HybridStorage", media.hosts, fatal_exceptions=False)
    Path(storage.path("a/b.txt")).parent.mkdir(parents=True)
    Path(storage.path("a/b.txt")).write_bytes(b"master")
    done = replicate("media", "a/b.txt")
    assert done == {
        "name": "a/b.txt",
        "action": "PUT",
        "succeeded": media.hosts,
        "failed": {},
        "rounds": 1,
        "attempt": 1,
    }
    assert all(media.path(i, "a/b.txt").read_bytes() == b"master" for i in range(3))
    Path(storage.path("a/b.txt")).unlink()
    assert replicate("media", "a/b.txt", [media.hosts[2]])["action"] == "DELETE"
    assert [media.path(i, "a/b.txt").exists() for i in range(3)] == [True, True, False]


def test_replicate_refuses_a_storage_that_is_not_ours(configure: Callable[..., Any]) -> None:
    configure("HybridStorage", [])
    with pytest.raises(ImproperlyConfigured, match="InMemoryStorage, not a resto_fast storage"):
        replicate("staticfiles", "x")


@pytest.fixture
def flaky() -> Iterator[TestHttpServer]:
    """An embedded media server that fails every request (500) until told otherwise."""
    with running_embedded(1) as (server,):
        server.override_code = 500
        yield server


def test_a_failed_host_is_repaired_by_itself_once_it_is_back(
    media: Nginx, configure: Callable[..., Any], flaky: TestHttpServer, caplog: Any
) -> None:
    storage = configure(
        "HybridStorage",
        [media.hosts[0], flaky.host],
        fatal_exceptions=False,
        repair=True,  # the thread queue repairs only when asked
        retry_delay=0.2,
    )
    with caplog.at_level(logging.INFO, logger="resto_fast"):
        name = storage.save("r/e.txt", ContentFile(b"repaired"))
        assert not flaky.has_file(f"media/{name}")
        flaky.override_code = None  # it is back
        assert wait_for(lambda: flaky.has_file(f"media/{name}"))
    assert flaky.get_file(f"media/{name}") == b"repaired"
    attempts = [r.getMessage() for r in caplog.records if "attempt 2 for" in r.getMessage()]
    assert attempts == [f"'r/e.txt': attempt 2 for {flaky.host} in {attempts[0].split()[-2]} s"]
    assert [m for m, _, _ in flaky.log] == ["PUT", "PUT"]  # the save's, then the repair's


def test_retries_give_up_loudly_after_the_last_attempt(
    media: Nginx, configure: Callable[..., Any], flaky: TestHttpServer, caplog: Any
) -> None:
    storage = configure(
        "HybridStorage",
        [media.hosts[0], flaky.host],
        fatal_exceptions=False,
        repair=True,
        retries=2,
        retry_delay=0.05,
    )
    with caplog.at_level(logging.INFO, logger="resto_fast"):
        storage.save("g/u.txt", ContentFile(b"x"))
        assert wait_for(lambda: any("left for" in r.getMessage() for r in caplog.records))
    (last,) = [r for r in caplog.records if "left for" in r.getMessage()]
    assert last.levelno == logging.ERROR
    assert last.getMessage() == (
        f"'g/u.txt' is still not in step on {flaky.host} after 3 attempts: left for "
        "`manage.py resto_sync` (or resto-fast sync)"
    )
    assert last.name == "resto_fast.storage"
    assert [m for m, _, _ in flaky.log] == ["PUT", "PUT", "PUT"]  # the save and two retries


def test_without_repair_the_thread_queue_only_logs(
    media: Nginx, configure: Callable[..., Any], flaky: TestHttpServer
) -> None:
    storage = configure("HybridStorage", [media.hosts[0], flaky.host], fatal_exceptions=False)
    assert storage.resto_config.queue.repairs is False
    storage.save("n/o.txt", ContentFile(b"x"))
    flaky.override_code = None
    time.sleep(0.3)
    assert not flaky.has_file("media/n/o.txt")


def test_async_storage_hands_one_state_based_task_to_django_tasks(
    media: Nginx, configure: Callable[..., Any]
) -> None:
    tasks = pytest.importorskip("resto_fast.tasks").replicate_task
    if tasks is None:
        pytest.skip("no Tasks framework (Django 6, or django-tasks on 5.2)")
    immediate = {"default": {"BACKEND": _backend("immediate.ImmediateBackend")}}
    with override_settings(TASKS=immediate):
        storage = configure("AsyncStorage", media.hosts, queue="tasks")
        name = storage.save("t/now.txt", ContentFile(b"by a task"))
        assert all(media.path(i, name).read_bytes() == b"by a task" for i in range(3))
        storage.delete(name)
        assert not any(media.path(i, name).exists() for i in range(3))
    assert [r.method for r in media.requests(media.hosts[0])] == ["PUT", "DELETE"]


def test_the_task_carries_json_only(media: Nginx, configure: Callable[..., Any]) -> None:
    tasks = pytest.importorskip("resto_fast.tasks").replicate_task
    if tasks is None:
        pytest.skip("no Tasks framework (Django 6, or django-tasks on 5.2)")
    dummy = {"default": {"BACKEND": _backend("dummy.DummyBackend")}}
    with override_settings(TASKS=dummy):
        storage = configure("AsyncStorage", media.hosts, queue="tasks")
        storage.save("j/s.txt", ContentFile(b"x"))
        (result,) = tasks.get_backend().results
    assert (list(result.args), result.kwargs) == (["media", "j/s.txt", None, 1], {})
    assert media.requests() == []  # nothing ran: the dummy backend only keeps it


def _backend(name: str) -> str:
    try:
        import django.tasks  # noqa: F401
    except ImportError:
        return f"django_tasks.backends.{name}"
    return f"django.tasks.backends.{name}"


def test_a_storage_outside_storages_cannot_queue(media: Nginx, tmp_path: Path) -> None:
    storage = AsyncStorage(media.hosts, "/media/", str(tmp_path), queue="rq")
    with pytest.raises(ImproperlyConfigured, match="not in STORAGES"):
        storage.save("x.txt", ContentFile(b"x"))


def test_a_write_quorum_saves_once_enough_hosts_have_it_and_repairs_the_rest(
    media: Nginx, configure: Callable[..., Any], flaky: TestHttpServer
) -> None:
    storage = configure(
        "DistributedStorage",
        [media.hosts[0], media.hosts[1], flaky.host],
        write_quorum=2,
        repair=True,
        retry_delay=0.2,
    )
    name = storage.save("q/two.txt", ContentFile(b"two of three"))
    assert not flaky.has_file(f"media/{name}")
    flaky.override_code = None
    assert wait_for(lambda: flaky.has_file(f"media/{name}"))  # copied from a host that has it
    assert flaky.get_file(f"media/{name}") == b"two of three"


def test_below_the_quorum_a_save_fails(
    media: Nginx, configure: Callable[..., Any], flaky: TestHttpServer
) -> None:
    storage = configure(
        "DistributedStorage", [media.hosts[0], flaky.host], write_quorum=2, fatal_exceptions=False
    )
    with pytest.raises(ReplicationError, match="failed on 1 of 2 hosts"):
        storage.save("q/one.txt", ContentFile(b"x"))


def test_a_quorum_larger_than_the_hosts_is_refused(configure: Callable[..., Any]) -> None:
    with pytest.raises(ConfigurationError, match="write_quorum must be a number of hosts, 1 to 2"):
        configure("DistributedStorage", ["a:1", "b:1"], write_quorum=3)


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    config = QueueConfig(retry_delay=2, retry_max_delay=30)
    random.seed(7)
    for attempt, base in ((1, 2), (2, 4), (3, 8), (4, 16), (5, 30), (9, 30)):
        delays = [backoff(config, attempt) for _ in range(50)]
        assert base * 0.5 <= min(delays) < max(delays) <= base * 1.5


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"queue": "sqs"}, "queue must be one of thread, tasks, rq, celery"),
        ({"queue": "celery"}, "needs celery_app"),
        ({"retries": -1}, "retries must be"),
        ({"retry_delay": 0}, "retry_delay must be"),
        ({"repair": "yes"}, "repair must be True or False"),
    ],
)
def test_queue_options_are_checked(options: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        QueueConfig(**options)


def test_queue_options_come_from_settings_too(tmp_path: Path) -> None:
    with override_settings(RESTO_QUEUE="rq", RESTO_RETRIES=3, RESTO_REDIS_URL="redis://r:1/2"):
        storage = HybridStorage([], "/media/", str(tmp_path), rq_queue="media")
    queue = storage.resto_config.queue
    assert (queue.queue, queue.retries, queue.redis_url, queue.rq_queue) == (
        "rq",
        3,
        "redis://r:1/2",
        "media",
    )
    assert queue.repairs is True  # on by default with a durable queue


def test_a_backend_that_cannot_defer_still_retries_after_the_delay(
    media: Nginx, configure: Callable[..., Any], flaky: TestHttpServer
) -> None:
    tasks = pytest.importorskip("resto_fast.tasks").replicate_task
    if tasks is None:
        pytest.skip("no Tasks framework (Django 6, or django-tasks on 5.2)")
    immediate = {"default": {"BACKEND": _backend("immediate.ImmediateBackend")}}
    with override_settings(TASKS=immediate):
        assert tasks.get_backend().supports_defer is False
        storage = configure(
            "AsyncStorage", [media.hosts[0], flaky.host], queue="tasks", retry_delay=0.2
        )
        name = storage.save("d/later.txt", ContentFile(b"waited for"))
        assert media.path(0, name).read_bytes() == b"waited for"  # ran at once, failed on one
        assert not flaky.has_file(f"media/{name}")
        flaky.override_code = None  # the retry waits on a timer here, then runs the task
        assert wait_for(lambda: flaky.has_file(f"media/{name}"))
