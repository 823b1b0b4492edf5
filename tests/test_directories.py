"""make_directories: MKCOL before a PUT, for servers that make no directories (Apache, lighttpd).

The Nginx fixture's ``strict_host`` is one: WebDAV without create_full_put_path,
so a PUT into a missing directory fails there until MKCOL has made it.
"""

from __future__ import annotations

import logging

import pytest
from django.core.files.base import ContentFile

from resto_fast import Outcome, Replicator
from resto_fast.storage import HybridStorage
from tests.servers import Nginx


def hits(media: Nginx, host: str) -> list[tuple[str, str, int]]:
    return [(r.method, r.uri, r.status) for r in media.requests(host)]


def test_without_it_a_strict_server_refuses_a_put_into_a_new_directory(media: Nginx) -> None:
    with Replicator([media.strict_host], "/media/") as replicator:
        (result,) = replicator.put("new/file.txt", b"x")
    assert result.outcome is Outcome.FAILED


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
