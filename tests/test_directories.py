"""make_directories: MKCOL for servers that make no directories (lighttpd, Apache, wsgidav).

``"auto"`` (the default) reacts to the 409 such a server answers a PUT into a
missing directory: tested against real lighttpd, and with nginx hosts in the
same operations, which must not be asked twice.  ``True`` makes them before
the PUT: tested against the Nginx fixture's ``strict_host`` (WebDAV without
create_full_put_path, which answers 500, not 409, until MKCOL made them),
whose access log shows every request.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from resto_fast import Outcome, Replicator, UnexpectedStatusCode
from resto_fast.storage import HybridStorage
from testbed import Nginx
from testbed.dav import DavServer, Lighttpd, started

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def lighttpd_server() -> Iterator[DavServer]:
    with started(Lighttpd) as server:
        yield server


@pytest.fixture
def lighttpd(lighttpd_server: DavServer) -> DavServer:
    lighttpd_server.clear()
    return lighttpd_server


class Unseekable(io.RawIOBase):
    """A stream that can only be read (a pipe, an upload relayed as it arrives)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        return self._data.readinto(buffer)


@pytest.mark.parametrize(
    "kind", ["bytes", "streamed file", "unseekable stream"], ids=lambda kind: kind
)
def test_auto_makes_them_after_a_409_and_sends_the_put_again_to_that_host_only(
    lighttpd: DavServer, media: Nginx, tmp_path: Path, kind: str
) -> None:
    data = os.urandom(3 * MiB + 5)
    source: object = data
    if kind == "streamed file":
        (tmp_path / "source").write_bytes(data)
        source = (tmp_path / "source").open("rb")
        source.seek(0)
    elif kind == "unseekable stream":
        source = Unseekable(data)
    options = {"chunk_size": MiB, "window_size": 2 * MiB} if kind != "bytes" else {}
    hosts = [lighttpd.host, *media.hosts[:2]]
    with Replicator(hosts, "/media/", **options) as replicator:  # make_directories="auto"
        result = replicator.put("y2026/m11/deep/file.bin", source)  # type: ignore[arg-type]
    if kind == "streamed file":
        source.close()  # type: ignore[attr-defined]
    assert result.ok, result
    assert result[lighttpd.host].outcome is Outcome.CREATED
    assert result[lighttpd.host].transferred == len(data)
    assert lighttpd.path("y2026/m11/deep/file.bin").read_bytes() == data
    for index in (0, 1):
        assert media.path(index, "y2026/m11/deep/file.bin").read_bytes() == data
    # The nginx hosts took the first PUT: no MKCOL, no second PUT.
    assert [r.method for r in media.requests(media.hosts[0])] == ["PUT"]


def test_auto_in_a_batch_each_file_once_per_host(lighttpd: DavServer, media: Nginx) -> None:
    names = [f"batch/{d}/{i}.txt" for d in ("a", "b", "a/c") for i in range(4)]
    seen: list[str] = []
    with Replicator([lighttpd.host, media.hosts[0]], "/media/", concurrency=4) as replicator:
        results = replicator.put_many(
            [(name, name.encode()) for name in names], on_result=lambda r: seen.append(r.name)
        )
    assert [r.name for r in results] == names
    assert sorted(seen) == sorted(names)  # each file's result reported once
    assert all(result.ok for result in results), [r for r in results if not r.ok]
    for name in names:
        assert lighttpd.path(name).read_bytes() == name.encode()
        assert media.path(0, name).read_bytes() == name.encode()
    assert [r.method for r in media.requests(media.hosts[0])] == ["PUT"] * len(names)


def test_auto_sends_again_once_and_reports_a_409_mkcol_cannot_cure(
    lighttpd: DavServer, caplog: pytest.LogCaptureFixture
) -> None:
    lighttpd.path("taken").write_bytes(b"a file where a directory would go")
    with (
        Replicator([lighttpd.host], "/media/") as replicator,
        caplog.at_level(logging.WARNING, logger="resto_fast"),
    ):
        (result,) = replicator.put("taken/inside.txt", b"x")
    assert isinstance(result.error, UnexpectedStatusCode)
    assert result.error.code == 409
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # the PUT, once: its first 409 was not reported
    assert "'taken/inside.txt'" in errors[0]
    assert lighttpd.host in errors[0]
    assert lighttpd.path("taken").read_bytes() == b"a file where a directory would go"


def test_never_leaves_a_409_as_the_hosts_failure(lighttpd: DavServer) -> None:
    with Replicator([lighttpd.host], "/media/", make_directories=False) as replicator:
        (result,) = replicator.put("new/file.txt", b"x")
    assert isinstance(result.error, UnexpectedStatusCode)
    assert result.error.code == 409
    assert not lighttpd.path("new").exists()


def hits(media: Nginx, host: str) -> list[tuple[str, str, int]]:
    return [(r.method, r.uri, r.status) for r in media.requests(host)]


def test_auto_leaves_a_500_alone_so_strict_nginx_needs_true(media: Nginx) -> None:
    with Replicator([media.strict_host], "/media/") as replicator:
        (result,) = replicator.put("new/file.txt", b"x")
    assert result.outcome is Outcome.FAILED
    assert hits(media, media.strict_host) == [("PUT", "/media/new/file.txt", 500)]


def test_directories_are_made_top_down_once(media: Nginx) -> None:
    host = media.strict_host
    with Replicator([host], "/media/", make_directories=True) as replicator:
        replicator.put("2026/11/a.txt", b"a").raise_for_failures()
        replicator.put("2026/11/b.txt", b"b").raise_for_failures()
        replicator.put("2026/12/c.txt", b"c").raise_for_failures()
    assert hits(media, host) == [
        ("MKCOL", "/media/", 201),
        ("MKCOL", "/media/2026/", 201),
        ("MKCOL", "/media/2026/11/", 201),
        ("PUT", "/media/2026/11/a.txt", 201),
        ("PUT", "/media/2026/11/b.txt", 201),  # known directory: no MKCOL
        ("MKCOL", "/media/2026/12/", 201),
        ("PUT", "/media/2026/12/c.txt", 201),
    ]
    assert media.path(0, "2026/12/c.txt").read_bytes() == b"c"


def test_existing_directories_are_found_and_remembered(media: Nginx) -> None:
    media.path(0, "old/dir").mkdir(parents=True)
    host = media.strict_host
    with Replicator([host, *media.hosts[1:]], "/media/", make_directories=True) as replicator:
        results = replicator.put_many([("old/dir/x.bin", b"x"), ("old/dir/y.bin", b"y")])
    assert [r.ok for r in results] == [True, True]
    assert hits(media, host) == [
        ("MKCOL", "/media/", 405),
        ("MKCOL", "/media/old/", 405),
        ("MKCOL", "/media/old/dir/", 405),
        ("PUT", "/media/old/dir/x.bin", 201),
        ("PUT", "/media/old/dir/y.bin", 201),
    ]
    # nginx hosts with create_full_put_path: MKCOL works there too, then the PUTs.
    assert [hit[0] for hit in hits(media, media.hosts[1])] == ["MKCOL"] * 3 + ["PUT"] * 2


def test_a_failed_mkcol_is_logged_and_the_put_reports_the_failure(
    media: Nginx, caplog: pytest.LogCaptureFixture
) -> None:
    forbidden = media.status_host(403)
    with (
        Replicator([forbidden], "/media/", make_directories=True) as replicator,
        caplog.at_level(logging.WARNING, logger="resto_fast"),
    ):
        (result,) = replicator.put("d/e.txt", b"e")
    assert result.outcome is Outcome.FAILED
    messages = [r.getMessage() for r in caplog.records]
    assert any("MKCOL" in m and forbidden in m for m in messages)
    assert any(m.startswith("PUT 'd/e.txt'") and forbidden in m for m in messages)


def test_the_storage_option(media: Nginx, tmp_path) -> None:
    storage = HybridStorage([media.strict_host], "/media/", str(tmp_path), make_directories=True)
    name = storage.save("uploads/2026/11/photo.jpg", ContentFile(b"jpeg"))
    assert media.path(0, name).read_bytes() == b"jpeg"


def test_a_host_that_lost_its_directories_gets_them_again(media: Nginx) -> None:
    host = media.strict_host
    with Replicator([host], "/media/", make_directories=True) as replicator:
        replicator.put("photos/a.jpg", b"a").raise_for_failures()
        media.clear()  # the host's root is wiped: /media/photos/ is gone
        (failed,) = replicator.put("photos/b.jpg", b"b")  # the directory was known: no MKCOL
        assert failed.outcome is Outcome.FAILED
        replicator.put("photos/c.jpg", b"c").raise_for_failures()  # forgotten, made again
    assert hits(media, host) == [
        ("PUT", "/media/photos/b.jpg", 500),
        ("MKCOL", "/media/", 201),
        ("MKCOL", "/media/photos/", 201),
        ("PUT", "/media/photos/c.jpg", 201),
    ]
