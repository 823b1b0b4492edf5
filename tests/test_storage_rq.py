"""The docs' rq example, as written: AsyncStorage jobs go through Redis to an rq worker.

A real redis-server (installed by scripts/test) on a free loopback port, and
a real ``rq worker --burst`` in another process, which is where the pickled
transport and master-copy reference must come back to life.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile

from tests.media_sets import BASE_URL, MediaSet

redis = pytest.importorskip("redis")
rq = pytest.importorskip("rq")


def make_storage_class(connection: Any) -> type:
    # From the docs, word for word but for the connection (a free port, not 6379).
    from rq import Queue

    from resto_fast.storage import AsyncStorage

    queue = Queue(connection=connection)

    class RqAsyncStorage(AsyncStorage):
        def execute_one(self, func, *args, **kwargs):
            return queue.enqueue(func, *args, **kwargs)

    return RqAsyncStorage


def test_the_rq_example_replicates_through_a_worker(
    nginx3: MediaSet, redis_url: str, tmp_path: Path
) -> None:
    connection = redis.Redis.from_url(redis_url)
    storage = make_storage_class(connection)(nginx3.hosts, BASE_URL, str(tmp_path / "master"))
    name = storage.save("queued/ü.txt", ContentFile(b"through redis"))
    storage.delete("never-there.txt")
    assert rq.Queue(connection=connection).count == 6
    for host in nginx3.hosts:
        assert nginx3.read(host, name) is None  # nothing happens until a worker runs the jobs
    subprocess.run(
        [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", redis_url],
        check=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.django_settings"},
    )
    for host in nginx3.hosts:
        assert nginx3.read(host, name) == b"through redis"
        assert nginx3.hits(host) == [
            ("PUT", "/media/queued/ü.txt", 201),
            ("DELETE", "/media/never-there.txt", 404),
        ]
