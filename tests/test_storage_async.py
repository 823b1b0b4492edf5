"""AsyncStorage: replication in the background, in order, errors logged and never raised."""

from __future__ import annotations

import gc
import itertools
import json
import logging
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile

from resto_fast import _background
from resto_fast.storage import AsyncStorage, MasterCopy
from testbed import Staller, free_port, running
from tests.media_sets import BASE_URL, MediaSet


@pytest.fixture
def master(tmp_path: Path) -> str:
    return str(tmp_path / "master")


def test_save_returns_at_once_and_flush_waits_for_every_host(
    servers: MediaSet, master: str
) -> None:
    storage = AsyncStorage(servers.hosts, BASE_URL, master)
    name = storage.save("a/b.txt", ContentFile(b"async"))
    assert Path(storage.path(name)).read_bytes() == b"async"
    assert storage.flush(timeout=10)
    assert storage.pending == 0
    for host in servers.hosts:
        assert servers.hits(host) == [("PUT", "/media/a/b.txt", 201)]
        assert servers.read(host, name) == b"async"


def test_order_is_kept_between_a_put_and_a_delete(
    servers: MediaSet, master: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = AsyncStorage(servers.hosts, BASE_URL, master)
    with caplog.at_level(logging.WARNING, logger="resto_fast"):
        for round_ in range(3):
            storage.save("x.txt", ContentFile(b"%d" % round_))
            storage.delete("x.txt")
        storage.save("x.txt", ContentFile(b"last"))
        assert storage.flush(timeout=10)
    for host in servers.hosts:
        hits = servers.hits(host)
        # A PUT that runs after its file was deleted locally is skipped (with a warning):
        # what reaches a host is always a PUT then its DELETE, never the other way round.
        assert hits[-1] == ("PUT", "/media/x.txt", 201)
        for before, after in itertools.pairwise(hits):
            if before[0] == "PUT":
                assert after == ("DELETE", "/media/x.txt", 204)
        assert servers.read(host, "x.txt") == b"last"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_master_copy_deleted_just_before_its_upload_is_only_a_warning(
    nginx3: MediaSet, master: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the test above can meet: the local delete lands after the worker looked for
    the master copy and before the upload opens it.  Still a warning, never an ERROR."""
    storage = AsyncStorage(nginx3.hosts, BASE_URL, master)
    monkeypatch.setattr("resto_fast.storage.os.path.exists", lambda path: True)  # looked: there
    with caplog.at_level(logging.WARNING, logger="resto_fast"):
        storage.execute(storage.transport.create, "vanished.txt", MasterCopy(f"{master}/gone"))
        assert storage.flush(timeout=10)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "the master copy of 'vanished.txt' is gone" in caplog.records[0].getMessage()
    assert all(nginx3.hits(host) == [] for host in nginx3.hosts)


def test_errors_are_logged_never_raised(
    nginx3: MediaSet, master: str, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"127.0.0.1:{free_port()}"
    storage = AsyncStorage([*nginx3.hosts, down], BASE_URL, master, fatal_exceptions=True)
    with caplog.at_level(logging.ERROR, logger="resto_fast"):
        name = storage.save("e.txt", ContentFile(b"e"))
        assert storage.flush(timeout=10)
    (error,) = caplog.records
    assert "'e.txt'" in error.getMessage()
    assert down in error.getMessage()
    for host in nginx3.hosts:
        assert nginx3.read(host, name) == b"e"


def test_pending_counts_and_flush_times_out_on_a_stalled_host(master: str) -> None:
    with running(Staller()) as staller:
        storage = AsyncStorage([staller.host], BASE_URL, master, timeout=1)
        storage.save("slow.txt", ContentFile(b"s"))
        storage.save("slow2.txt", ContentFile(b"s"))
        assert storage.pending == 2
        assert storage.flush(timeout=0.05) is False
        assert storage.flush(timeout=10) is True  # the stalled host times out, then it is done
        assert storage.pending == 0


def test_a_forked_child_starts_with_an_empty_queue(nginx3: MediaSet, master: str) -> None:
    storage = AsyncStorage(nginx3.hosts, BASE_URL, master)
    storage.save("parent.txt", ContentFile(b"p"))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            if storage.pending == 0:
                storage.save("child.txt", ContentFile(b"c"))
                code = 0 if storage.flush(timeout=10) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert storage.flush(timeout=10)
    for host in nginx3.hosts:
        assert nginx3.read(host, "parent.txt") == b"p"
        assert nginx3.read(host, "child.txt") == b"c"


class PickledQueueStorage(AsyncStorage):
    """Stands in for a task queue: each job is pickled, as rq does, and run elsewhere later."""

    jobs: list[bytes]

    def execute_one(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        self.__dict__.setdefault("jobs", []).append(pickle.dumps((func, args, kwargs)))


RUN_JOBS = textwrap.dedent(
    """
    import pickle, sys
    import django
    django.setup()
    for job in pickle.load(sys.stdin.buffer):
        func, args, kwargs = pickle.loads(job)
        print(func.__name__, func(*args, **kwargs))
    """
)


def test_execute_one_jobs_pickle_and_run_in_another_process(nginx3: MediaSet, master: str) -> None:
    storage = PickledQueueStorage(nginx3.hosts, BASE_URL, master)
    storage.save("queued.txt", ContentFile(b"q"))
    storage.delete("gone.txt")
    assert len(storage.jobs) == 6
    _, args, _ = pickle.loads(storage.jobs[0])
    assert args[:2] == (nginx3.hosts[0], "queued.txt")
    assert isinstance(args[2], MasterCopy)
    assert os.fspath(args[2]) == storage.path("queued.txt")
    out = subprocess.run(
        [sys.executable, "-c", RUN_JOBS],
        input=pickle.dumps(storage.jobs),
        capture_output=True,
        check=True,
        timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.django_settings"},
    ).stdout.decode()
    assert out.split("\n")[:6] == ["create False"] * 3 + ["delete False"] * 3
    for host in nginx3.hosts:
        assert nginx3.read(host, "queued.txt") == b"q"
        assert nginx3.hits(host) == [
            ("PUT", "/media/queued.txt", 201),
            ("DELETE", "/media/gone.txt", 404),
        ]


def test_a_job_that_fails_before_any_request_is_logged(
    nginx3: MediaSet, master: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = AsyncStorage(nginx3.hosts, BASE_URL, master)
    with caplog.at_level(logging.ERROR, logger="resto_fast"):
        storage.execute(storage.transport.create, "bad\x01name.txt", b"x")
        assert storage.flush(timeout=10)
    # Only this file's lines: another test's worker thread may still be logging.
    (error,) = [r for r in caplog.records if getattr(r, "resto_name", None) == "bad\x01name.txt"]
    assert error.levelno == logging.ERROR
    assert "'bad\\x01name.txt'" in error.getMessage()
    assert "not replicated" in error.getMessage()
    for hits in nginx3.all_hits().values():
        assert not [hit for hit in hits if "bad" in hit[1]]


EXIT_WITHOUT_FLUSH = textwrap.dedent(
    """
    import json, sys
    import django
    django.setup()
    from django.core.files.base import ContentFile
    from resto_fast.storage import AsyncStorage, DefaultTransport

    class Transport(DefaultTransport):
        def create(self, host, name, content):  # per host, on threads
            return super().create(host, name, content)

    class Storage(AsyncStorage):
        transport_class = Transport

    hosts, master = json.loads(sys.argv[1]), sys.argv[2]
    default, custom = AsyncStorage(hosts, "/media/", master), Storage(hosts, "/media/", master)
    for index in range(3):
        default.save(f"exit/default-{index}.txt", ContentFile(b"d"))
        custom.save(f"exit/custom-{index}.txt", ContentFile(b"c"))
    # No flush: the interpreter's exit must finish the queue, even what is queued while
    # exiting (a handler registered later runs first; on 3.12+ no thread starts then).
    import atexit
    atexit.register(lambda: default.save("exit/late.txt", ContentFile(b"late")))
    """
)


def test_what_is_queued_is_replicated_at_exit(nginx3: MediaSet, master: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", EXIT_WITHOUT_FLUSH, json.dumps(nginx3.hosts), master],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.django_settings"},
    )
    assert completed.returncode == 0, completed.stderr
    assert "not replicated" not in completed.stderr
    for host in nginx3.hosts:
        for index in range(3):
            assert nginx3.read(host, f"exit/default-{index}.txt") == b"d"
            assert nginx3.read(host, f"exit/custom-{index}.txt") == b"c"
        assert nginx3.read(host, "exit/late.txt") == b"late"


def test_a_dropped_storage_takes_its_worker_thread_with_it(
    nginx3: MediaSet, master: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_background, "IDLE_SECONDS", 0.05)
    storage = AsyncStorage(nginx3.hosts, BASE_URL, master)
    storage.save("dropped.txt", ContentFile(b"x"))
    assert storage.flush(timeout=10)
    gone = weakref.ref(storage)
    del storage
    gc.collect()
    assert gone() is None
    deadline = time.monotonic() + 5
    while any(t.name == "resto-async" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the worker thread outlived its storage"
        time.sleep(0.02)
