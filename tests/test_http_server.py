"""The embedded media server: django-resto's TestHttpServer API, as a real HTTP/1.1 server."""

from __future__ import annotations

import http.client
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from resto_fast import Outcome, Replicator
from resto_fast.http_server import TestHttpServer


@pytest.fixture(params=["memory", "directory"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestHttpServer]:
    root = tmp_path / "root" if request.param == "directory" else None
    with TestHttpServer("127.0.0.1", 0, root=root) as server:
        yield server


def test_put_get_head_delete_through_the_replicator(server: TestHttpServer) -> None:
    data = os.urandom(300_000)
    with Replicator([server.host], "/media/") as replicator:
        assert replicator.put("d/été.bin", data).hosts[0].outcome is Outcome.CREATED
        assert replicator.put("d/été.bin", data).hosts[0].outcome is Outcome.REPLACED
        assert server.get_file("media/d/été.bin") == data
        stat = replicator.stat("d/été.bin")
        assert stat is not None
        assert stat.size == len(data)
        assert stat.modified is not None
        assert replicator.get("d/été.bin") == data
        assert replicator.delete("d/été.bin").hosts[0].outcome is Outcome.DELETED
        assert replicator.delete("d/été.bin").hosts[0].outcome is Outcome.ALREADY_GONE
        assert not replicator.exists("d/été.bin")
        reused = replicator.put("again", b"x").hosts[0]
    assert reused.new_connections == 0  # keep-alive across all of the above
    assert server.log == [
        ("PUT", "/media/d/été.bin", 201),
        ("PUT", "/media/d/été.bin", 204),
        ("HEAD", "/media/d/été.bin", 200),
        ("GET", "/media/d/été.bin", 200),
        ("DELETE", "/media/d/été.bin", 204),
        ("DELETE", "/media/d/été.bin", 404),
        ("HEAD", "/media/d/été.bin", 404),
        ("PUT", "/media/again", 201),
    ]


def test_chunked_request_bodies(server: TestHttpServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request(
        "PUT", "/chunked.txt", body=iter([b"hello ", b"chunked ", b"world"]), encode_chunked=True
    )
    assert connection.getresponse().status == 201
    connection.close()
    assert server.get_file("chunked.txt") == b"hello chunked world"


def test_a_put_without_length_is_refused(server: TestHttpServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.putrequest("PUT", "/nolength")
    connection.endheaders()
    assert connection.getresponse().status == 411
    connection.close()
    assert not server.has_file("nolength")


def test_file_api(server: TestHttpServer) -> None:
    server.create_file("a/b.txt", b"content")
    assert server.has_file("a/b.txt")
    assert server.get_file("a/b.txt") == b"content"
    assert list(server.files) == ["a/b.txt"]
    server.delete_file("a/b.txt")
    assert not server.has_file("a/b.txt")
    with pytest.raises(KeyError):
        server.get_file("a/b.txt")
    with pytest.raises(KeyError):
        server.delete_file("a/b.txt")


def test_override_code_answers_it_and_stores_nothing(server: TestHttpServer) -> None:
    server.override_code = 500
    with Replicator([server.host], "/media/") as replicator:
        result = replicator.put("x", b"x")
        assert result.hosts[0].status == 500
        server.override_code = 202
        assert replicator.delete("x").hosts[0].status == 202
    assert not server.has_file("media/x")
    assert server.log == [("PUT", "/media/x", 500), ("DELETE", "/media/x", 202)]


def test_readonly_refuses_writes(server: TestHttpServer) -> None:
    server.readonly = True
    server.create_file("media/kept", b"k")
    with Replicator([server.host], "/media/") as replicator:
        assert replicator.put("x", b"x").hosts[0].status == 403
        assert replicator.delete("kept").hosts[0].status == 403
        assert replicator.get("kept") == b"k"
    assert server.has_file("media/kept")


@pytest.mark.parametrize("path", ["/a/../b", "/%2e%2e/b", "/a%00b", "/", "/a//b", "/%ff"])
def test_dangerous_paths_are_refused(server: TestHttpServer, path: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("PUT", path, body=b"x")
    assert connection.getresponse().status == 400
    connection.close()
    assert list(server.files) == []


def test_directory_uploads_are_atomic_and_leave_no_temporaries(tmp_path: Path) -> None:
    with (
        TestHttpServer("127.0.0.1", 0, root=tmp_path) as server,
        Replicator([server.host]) as replicator,
    ):
        replicator.put("deep/path/file.bin", os.urandom(2_000_000)).raise_for_failures()
    assert sorted(p.name for p in (tmp_path / "deep/path").iterdir()) == ["file.bin"]


def test_port_zero_picks_a_free_port_and_stop_closes_connections() -> None:
    server = TestHttpServer("127.0.0.1", 0).start()
    assert server.port > 0
    assert server.host == f"127.0.0.1:{server.port}"
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/missing")
    assert connection.getresponse().read() == b""
    server.stop()
    connection.request("GET", "/missing")  # the request may still go out into the closed socket
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        connection.getresponse()
    connection.close()


def test_many_connections_at_once_are_taken_without_waiting_to_be_accepted() -> None:
    """The listen backlog holds what a replicator opens at once: 64 connections complete
    their handshakes before the server accepts any (with socketserver's backlog of 5,
    the rest waited a second for the kernel to send their SYN again)."""
    server = TestHttpServer("127.0.0.1", 0)  # listening, not serving: nothing is accepted
    clients: list[socket.socket] = []
    try:
        for _ in range(64):
            client = socket.create_connection(("127.0.0.1", server.port), timeout=0.5)
            clients.append(client)
        assert len(clients) == 64
    finally:
        for client in clients:
            client.close()
        server.server_close()


def test_run_blocks_until_stop_from_another_thread() -> None:
    import threading

    server = TestHttpServer("127.0.0.1", 0)
    thread = threading.Thread(target=server.run)
    thread.start()
    with Replicator([server.host]) as replicator:
        replicator.put("x", b"1").raise_for_failures()
    server.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()


def propfind(
    server: TestHttpServer, path: str, depth: str | None = "1", body: bytes = b""
) -> tuple[int, str, bytes]:
    """One PROPFIND on a fresh connection, then a GET on the same one (the body was read)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    headers = {} if depth is None else {"Depth": depth}
    connection.request("PROPFIND", path, body=body, headers=headers)
    response = connection.getresponse()
    answer = (response.status, response.getheader("Content-Type", ""), response.read())
    connection.request("GET", "/after")
    assert connection.getresponse().read() == b""  # an answer, on the same connection
    connection.close()
    return answer


def hrefs(body: bytes) -> list[tuple[str, bool]]:
    root = ElementTree.fromstring(body)
    assert root.tag == "{DAV:}multistatus"
    return [
        (
            response.findtext("{DAV:}href", ""),
            response.find("{DAV:}propstat/{DAV:}prop/{DAV:}resourcetype/{DAV:}collection")
            is not None,
        )
        for response in root.iter("{DAV:}response")
    ]


def test_propfind_lists_a_directory_as_webdav_does(server: TestHttpServer) -> None:
    for name in ("m/a b/x.txt", "m/a b/é/y", "m/a b/z", "m/top"):
        server.create_file(name, b"data")
    asked = b'<?xml version="1.0"?><propfind xmlns="DAV:"><allprop/></propfind>'
    status, content_type, body = propfind(server, "/m/a%20b/", body=asked)
    assert (status, content_type) == (207, 'application/xml; charset="utf-8"')
    assert hrefs(body) == [
        ("/m/a%20b/", True),
        ("/m/a%20b/%C3%A9/", True),
        ("/m/a%20b/x.txt", False),
        ("/m/a%20b/z", False),
    ]
    assert hrefs(propfind(server, "/m/a%20b", depth="0")[2]) == [("/m/a%20b/", True)]
    assert hrefs(propfind(server, "/")[2]) == [("/", True), ("/m/", True)]
    assert server.log == [
        ("PROPFIND", "/m/a b/", 207),
        ("GET", "/after", 404),
        ("PROPFIND", "/m/a b", 207),
        ("GET", "/after", 404),
        ("PROPFIND", "/", 207),
        ("GET", "/after", 404),
    ]


@pytest.mark.parametrize(
    ("path", "depth", "status"),
    [
        ("/missing/", "1", 404),
        ("/m/file/", "1", 404),  # a file is no directory
        ("/m/", "infinity", 403),
        ("/m/", None, 403),  # no Depth means infinity
        ("/m/../etc/", "1", 400),
        ("/%ff/", "1", 400),
    ],
)
def test_propfind_refusals(
    server: TestHttpServer, path: str, depth: str | None, status: int
) -> None:
    server.create_file("m/file", b"x")
    assert propfind(server, path, depth=depth)[0] == status
    assert server.log[0][2] == status


def test_propfind_answers_the_override_code(server: TestHttpServer) -> None:
    server.create_file("m/file", b"x")
    server.override_code = 405
    assert propfind(server, "/m/")[0] == 405


def test_on_disk_empty_directories_exist_and_uploads_in_progress_are_hidden(
    tmp_path: Path,
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / ".resto-upload-abc").write_bytes(b"half")
    with TestHttpServer("127.0.0.1", 0, root=tmp_path) as server:
        assert hrefs(propfind(server, "/")[2]) == [("/", True), ("/empty/", True)]
        assert hrefs(propfind(server, "/empty/")[2]) == [("/empty/", True)]


def test_a_client_gone_mid_upload_stores_nothing_and_prints_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with TestHttpServer("127.0.0.1", 0, root=tmp_path).start() as server:
        with socket.create_connection(("127.0.0.1", server.port)) as conn:
            conn.sendall(b"PUT /half.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n12345")
        time.sleep(0.2)  # the handler sees the end of the connection
        assert not server.has_file("half.bin")
    assert list(tmp_path.iterdir()) == []  # no temporary left either
    assert capfd.readouterr().err == ""  # a client that went away is not a server error
