"""Media servers for the storage tests: nginx or the embedded server, seen the same way.

A :class:`MediaSet` is some hosts, the requests each received (method,
decoded path, status) and the files each holds under ``/media/``, so one
storage test runs unchanged against both kinds of server.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import pytest

from resto_fast.http_server import TestHttpServer
from testbed import Nginx

Hit = tuple[str, str, int]
BASE_URL = "/media/"


class MediaSet:
    kind = ""

    def __init__(self, hosts: list[str]) -> None:
        self.hosts = hosts

    def hits(self, host: str) -> list[Hit]:
        raise NotImplementedError

    def read(self, host: str, name: str) -> bytes | None:
        raise NotImplementedError

    def write(self, host: str, name: str, content: bytes) -> None:
        raise NotImplementedError

    def all_hits(self) -> dict[str, list[Hit]]:
        return {host: self.hits(host) for host in self.hosts}

    def __repr__(self) -> str:
        return f"<{self.kind} x{len(self.hosts)}>"


class NginxSet(MediaSet):
    kind = "nginx"

    def __init__(self, nginx: Nginx, count: int) -> None:
        super().__init__(nginx.hosts[:count])
        self.nginx = nginx

    def hits(self, host: str) -> list[Hit]:
        return [(r.method, r.uri, r.status) for r in self.nginx.requests(host)]

    def read(self, host: str, name: str) -> bytes | None:
        path = self.nginx.path(self.nginx.hosts.index(host), name)
        return path.read_bytes() if path.is_file() else None

    def write(self, host: str, name: str, content: bytes) -> None:
        path = self.nginx.path(self.nginx.hosts.index(host), name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


class EmbeddedSet(MediaSet):
    kind = "embedded"

    def __init__(self, servers: list[TestHttpServer], count: int) -> None:
        self.servers = {server.host: server for server in servers[:count]}
        super().__init__(list(self.servers))
        for server in servers:
            server.files.clear()
            server.log.clear()

    def hits(self, host: str) -> list[Hit]:
        return list(self.servers[host].log)

    def read(self, host: str, name: str) -> bytes | None:
        files = self.servers[host].files
        key = BASE_URL.lstrip("/") + name
        return files.get(key)

    def write(self, host: str, name: str, content: bytes) -> None:
        self.servers[host].create_file(BASE_URL.lstrip("/") + name, content)
        self.servers[host].log.clear()


def in_threads(count: int, work: Callable[[int], object]) -> list[BaseException]:
    """Run ``work(index)`` on ``count`` threads at once; what they raised."""
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@contextlib.contextmanager
def running_embedded(count: int) -> Iterator[list[TestHttpServer]]:
    """``count`` embedded media servers on free loopback ports, stopped afterwards."""
    servers = [TestHttpServer("127.0.0.1", 0).start() for _ in range(count)]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def embedded_servers() -> Iterator[list[TestHttpServer]]:
    with running_embedded(3) as servers:
        yield servers


@pytest.fixture(params=["nginx-1", "nginx-3", "embedded-1", "embedded-3"])
def servers(request: pytest.FixtureRequest) -> MediaSet:
    """Every kind of media server, with one host and with several."""
    kind, count = request.param.split("-")
    if kind == "nginx":
        nginx: Nginx = request.getfixturevalue("media")
        return NginxSet(nginx, int(count))
    return EmbeddedSet(request.getfixturevalue("embedded_servers"), int(count))


@pytest.fixture
def nginx3(media: Nginx) -> MediaSet:
    """Three nginx hosts: for tests whose subject is not the kind of server."""
    return NginxSet(media, 3)


def forget_storages() -> None:
    """Storages are built again from the settings in force (Django 5.0+ does it on a change
    of STORAGES; 4.2 keeps the ones it built)."""
    from django.core.files.storage import storages

    with contextlib.suppress(AttributeError):
        del storages.backends
    storages._backends = None  # type: ignore[attr-defined]
    storages._storages = {}  # type: ignore[attr-defined]
