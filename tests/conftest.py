"""Shared fixtures: nginx media servers, a replicator on them, both chunk windows."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from resto_fast import Replicator, _multi_py
from resto_fast._breaker import BREAKERS
from testbed import Nginx, RedisServer, find_nginx, find_redis, scratch_dir, unavailable
from tests.media_sets import embedded_servers, nginx3, servers

__all__ = ["embedded_servers", "nginx3", "servers"]  # storage fixtures, see tests/media_sets.py


@pytest.fixture(autouse=True)
def no_host_down() -> Iterator[None]:
    """Each test starts with every host's breaker closed: the state is process-wide."""
    BREAKERS.clear()
    yield
    BREAKERS.clear()


@pytest.fixture(scope="session")
def nginx() -> Iterator[Nginx]:
    if find_nginx() is None:
        unavailable("nginx is not installed (scripts/test installs it)")
    workdir = scratch_dir("resto-nginx-")
    try:
        with Nginx(workdir, count=3, tls=True, private=True) as server:
            yield server
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A redis-server of the session's own, on a free loopback port (rq's and Celery's broker)."""
    if find_redis() is None:
        unavailable("redis-server is not installed (scripts/test installs it)")
    workdir = scratch_dir("resto-redis-")
    try:
        with RedisServer(workdir) as server:
            yield server.url
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def media(nginx: Nginx) -> Nginx:
    """The session's nginx, with empty roots and a fresh request log."""
    nginx.clear()
    return nginx


@pytest.fixture
def dav_media(media: Nginx) -> Nginx:
    """``media`` whose hosts answer PROPFIND: nginx with its dav-ext module loaded."""
    if not media.propfind:
        unavailable("nginx's dav-ext module is missing (scripts/test installs it)")
    return media


@pytest.fixture
def replicator(media: Nginx) -> Iterator[Replicator]:
    with Replicator(media.hosts, "/media/", timeout=2) as replicator:
        yield replicator


def _compiled() -> ModuleType:
    try:
        from resto_fast import _multi
    except ImportError:
        pytest.skip("the compiled chunk window is not built")
    return _multi


@pytest.fixture(params=["python", pytest.param("cython", marks=pytest.mark.compiled)])
def window_module(request: pytest.FixtureRequest) -> ModuleType:
    """Each buffer test runs on both implementations of the chunk window."""
    return _multi_py if request.param == "python" else _compiled()


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A temp dir on tmpfs when there is one (large source files)."""
    path = scratch_dir("resto-scratch-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
