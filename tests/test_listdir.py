"""Replicator.listdir: WebDAV PROPFIND against nginx (dav-ext) and the embedded server."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from resto_fast import (
    InvalidNameError,
    InvalidResponseError,
    NotFoundError,
    ReplicationError,
    Replicator,
    TransportError,
    UnexpectedStatusCode,
)
from resto_fast._webdav import PROPFIND_BODY
from resto_fast.http_server import TestHttpServer
from testbed import FixedAnswer, Nginx, free_port, running

TREE = [
    "top.txt",
    "photos/b.jpg",
    "photos/a.jpg",
    "photos/2024/c.jpg",
    "photos/2024/deep/d.jpg",
    "photos/2025/e.jpg",
    "été/a b.txt",
    "😀 x/ü.png",
    "odd/100%.txt",
    "odd/x+y (1)&<z>.txt",
    "odd/q?#.txt",
    "odd/space dir/f",
]


@dataclass
class Served:
    """A replicator on one kind of media server, and the requests that server logged."""

    replicator: Replicator
    hosts: list[str]
    logged: Callable[[], list[tuple[str, str, int]]]

    def propfinds(self) -> list[tuple[str, str, int]]:
        return [request for request in self.logged() if request[0] == "PROPFIND"]


@pytest.fixture(params=["nginx", "memory", "directory"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """The same tests on nginx with dav-ext and on both of TestHttpServer's stores."""
    if request.param == "nginx":
        media: Nginx = request.getfixturevalue("dav_media")
        with Replicator(media.hosts, "/media/") as replicator:
            yield Served(
                replicator,
                media.hosts,
                lambda: [(q.method, q.uri, q.status) for q in media.requests()],
            )
        return
    root = tmp_path / "root" if request.param == "directory" else None
    with (
        TestHttpServer("127.0.0.1", 0, root=root) as server,
        Replicator([server.host], "/media/") as replicator,
    ):
        yield Served(replicator, [server.host], lambda: list(server.log))


def put_tree(served: Served) -> None:
    for name in TREE:
        served.replicator.put(name, name.encode()).raise_for_failures()


def test_the_root_and_subdirectories(served: Served) -> None:
    put_tree(served)
    listdir = served.replicator.listdir
    assert listdir() == (["odd", "photos", "été", "😀 x"], ["top.txt"])
    assert listdir("photos") == (["2024", "2025"], ["a.jpg", "b.jpg"])
    assert listdir("photos/2024/") == (["deep"], ["c.jpg"])
    assert listdir("photos/2024/deep") == ([], ["d.jpg"])
    assert served.propfinds() == [
        ("PROPFIND", "/media/", 207),
        ("PROPFIND", "/media/photos/", 207),
        ("PROPFIND", "/media/photos/2024/", 207),
        ("PROPFIND", "/media/photos/2024/deep/", 207),
    ]


def test_unicode_spaces_and_url_syntax_in_names(served: Served) -> None:
    put_tree(served)
    listdir = served.replicator.listdir
    assert listdir("été") == ([], ["a b.txt"])
    assert listdir("😀 x") == ([], ["ü.png"])
    assert listdir("odd") == (["space dir"], ["100%.txt", "q?#.txt", "x+y (1)&<z>.txt"])
    assert listdir("odd/space dir") == ([], ["f"])
    assert [path for _, path, _ in served.propfinds()] == [
        "/media/été/",
        "/media/😀 x/",
        "/media/odd/",
        "/media/odd/space dir/",
    ]


def test_a_missing_directory_or_a_file_is_not_found(served: Served) -> None:
    put_tree(served)
    with pytest.raises(NotFoundError) as caught:
        served.replicator.listdir("photos/1999")
    assert caught.value.name == "photos/1999"
    assert caught.value.host in served.hosts
    with pytest.raises(NotFoundError):
        served.replicator.listdir("top.txt")  # nginx: 207 saying it is no collection; ours: 404
    assert served.propfinds()[0] == ("PROPFIND", "/media/photos/1999/", 404)


def test_a_server_that_received_nothing_lists_an_empty_root(served: Served) -> None:
    assert served.replicator.listdir() == ([], [])
    assert served.propfinds() == [("PROPFIND", "/media/", 404)]  # not created yet


def test_invalid_paths_are_refused_before_any_request(served: Served) -> None:
    for path in ("/", "/abs", "../up", "a//", "a/../b", "nul\x00"):
        with pytest.raises(InvalidNameError):
            served.replicator.listdir(path)
    assert served.logged() == []


# -- nginx only --------------------------------------------------------------------


def test_listing_one_chosen_host(dav_media: Nginx) -> None:
    first, _, third = dav_media.hosts
    with Replicator(dav_media.hosts, "/media/") as replicator:
        replicator.put("only-here.txt", b"x", hosts=[third]).raise_for_failures()
        replicator.put("everywhere.txt", b"x").raise_for_failures()
        assert replicator.listdir(host=third) == ([], ["everywhere.txt", "only-here.txt"])
        assert replicator.listdir(host=first) == ([], ["everywhere.txt"])
        assert replicator.listdir(host=first) == ([], ["everywhere.txt"])
    first_requests = [q for q in dav_media.requests(first) if q.method == "PROPFIND"]
    assert [(q.uri, q.status) for q in first_requests] == [("/media/", 207)] * 2
    assert {(q.content_length, q.expect) for q in first_requests} == {(str(len(PROPFIND_BODY)), "")}
    # The body was read to its end: the next request went over the same connection.
    assert first_requests[0].connection == first_requests[1].connection


def test_a_host_without_propfind_fails_with_405(
    media: Nginx, caplog: pytest.LogCaptureFixture
) -> None:
    """nginx without the dav-ext module (what a storage turns into NotImplementedError)."""
    plain = media.plain_host
    with (
        Replicator([plain], "/media/") as replicator,
        caplog.at_level(logging.ERROR, logger="resto_fast"),
        pytest.raises(ReplicationError) as caught,
    ):
        replicator.listdir("photos")
    error = caught.value
    assert (error.method, error.name, list(error.failures)) == ("PROPFIND", "photos", [plain])
    failure = error.failures[plain]
    assert isinstance(failure, UnexpectedStatusCode)
    assert (failure.code, failure.method) == (405, "PROPFIND")
    assert [(q.method, q.uri, q.status) for q in media.requests(plain)] == [
        ("PROPFIND", "/media/photos/", 405)
    ]
    assert [r.getMessage() for r in caplog.records] == [
        f"PROPFIND 'photos' on {plain} failed: HTTP 405"
    ]


def test_a_405_is_an_answer_not_worth_another_host(
    dav_media: Nginx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("resto_fast._replicator.random.shuffle", lambda hosts: None)
    with (
        Replicator([dav_media.plain_host, dav_media.hosts[0]], "/media/") as replicator,
        pytest.raises(ReplicationError) as caught,
    ):
        replicator.listdir()
    assert list(caught.value.failures) == [dav_media.plain_host]
    assert dav_media.requests(dav_media.hosts[0]) == []


def test_fails_over_on_transport_errors_and_5xx(
    dav_media: Nginx, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    broken = dav_media.status_host(500)
    good = dav_media.hosts[1]
    monkeypatch.setattr("resto_fast._replicator.random.shuffle", lambda hosts: None)
    with Replicator([dead, broken, good], "/media/") as replicator:
        replicator.put("d/f.txt", b"x", hosts=[good]).raise_for_failures()
        assert replicator.listdir("d") == ([], ["f.txt"])
    assert [(q.method, q.uri, q.status) for q in dav_media.requests(broken)] == [
        ("PROPFIND", "/media/d/", 500)
    ]
    assert [q.status for q in dav_media.requests(good) if q.method == "PROPFIND"] == [207]


def test_no_host_answering_raises_one_error_naming_each(dav_media: Nginx) -> None:
    dead = f"127.0.0.1:{free_port()}"
    broken = dav_media.status_host(500)
    with Replicator([dead, broken], "/media/") as replicator, pytest.raises(ReplicationError) as e:
        replicator.listdir()
    assert set(e.value.failures) == {dead, broken}
    assert isinstance(e.value.failures[dead], TransportError)


# -- the embedded server ---------------------------------------------------------


def test_501_from_every_host_is_in_the_failures() -> None:
    """A server that does not know PROPFIND at all; 5xx, so each host is tried."""
    with TestHttpServer("127.0.0.1", 0) as one, TestHttpServer("127.0.0.1", 0) as two:
        one.override_code = two.override_code = 501
        with (
            Replicator([one.host, two.host], "/media/") as replicator,
            pytest.raises(ReplicationError) as caught,
        ):
            replicator.listdir("x")
    failures = caught.value.failures
    assert set(failures) == {one.host, two.host}
    assert all(isinstance(f, UnexpectedStatusCode) and f.code == 501 for f in failures.values())
    assert one.log == two.log == [("PROPFIND", "/media/x/", 501)]


def test_a_207_that_is_no_multistatus_is_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    with (
        running(FixedAnswer(207, b"<html>It works!</html>")) as peer,
        Replicator([peer.host], "/media/") as replicator,
        caplog.at_level(logging.ERROR, logger="resto_fast"),
        pytest.raises(ReplicationError) as caught,
    ):
        replicator.listdir("d")
    failure = caught.value.failures[peer.host]
    assert isinstance(failure, InvalidResponseError)
    assert failure.url == f"http://{peer.host}/media/d/"
    assert "not DAV: multistatus" in str(failure)
    (record,) = caplog.records
    assert record.getMessage().startswith(f"PROPFIND 'd' on {peer.host} failed: unreadable")
