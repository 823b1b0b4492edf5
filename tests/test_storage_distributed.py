"""DistributedStorage: files only on the media servers; reads ask one host, with failover."""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings

from resto_fast import ReplicationError, RestoError, TransportError, UnexpectedStatusCode
from resto_fast.storage import DefaultTransport, DistributedStorage
from testbed import Nginx, Peer, free_port, read_request_head, running
from tests.media_sets import BASE_URL, EmbeddedSet, MediaSet, in_threads

Factory = Callable[..., DistributedStorage]


@pytest.fixture
def make() -> Factory:
    def make(hosts: list[str], **options: Any) -> DistributedStorage:
        options.setdefault("base_url", BASE_URL)
        return DistributedStorage(hosts=hosts, **options)

    return make


def test_save_is_one_head_on_one_host_then_one_put_per_host(
    servers: MediaSet, make: Factory
) -> None:
    storage = make(servers.hosts)
    name = storage.save("dist/ünï code.txt", ContentFile(b"remote only"))
    assert name == "dist/ünï code.txt"
    heads = []
    for host in servers.hosts:
        hits = servers.hits(host)
        heads += [hit for hit in hits if hit[0] == "HEAD"]
        assert [hit for hit in hits if hit[0] != "HEAD"] == [
            ("PUT", "/media/dist/ünï code.txt", 201)
        ]
        if hits[0][0] == "HEAD":
            assert hits == [("HEAD", "/media/dist/ünï code.txt", 404), hits[1]]
        assert servers.read(host, name) == b"remote only"
    assert heads == [("HEAD", "/media/dist/ünï code.txt", 404)]


def test_reads_come_from_the_media_servers(servers: MediaSet, make: Factory) -> None:
    storage = make(servers.hosts)
    name = storage.save("r.bin", ContentFile(b"0123456789"))
    assert storage.exists(name)
    assert not storage.exists("nothing.bin")
    assert storage.size(name) == 10
    with storage.open(name) as file:
        assert file.read() == b"0123456789"
    with pytest.raises(FileNotFoundError):
        storage.open("nothing.bin")
    with pytest.raises(FileNotFoundError):
        storage.size("nothing.bin")
    modified = storage.get_modified_time(name)
    assert modified.tzinfo is not None
    assert abs((datetime.datetime.now(datetime.UTC) - modified).total_seconds()) < 60


def test_a_name_taken_on_the_servers_is_renamed(servers: MediaSet, make: Factory) -> None:
    storage = make(servers.hosts)
    for host in servers.hosts:
        servers.write(host, "taken.txt", b"first")
    name = storage.save("taken.txt", ContentFile(b"second"))
    assert name.startswith("taken_")
    for host in servers.hosts:
        assert servers.read(host, "taken.txt") == b"first"
        assert servers.read(host, name) == b"second"


def test_delete_is_one_delete_per_host(servers: MediaSet, make: Factory) -> None:
    storage = make(servers.hosts)
    name = storage.save("d.txt", ContentFile(b"d"))
    storage.delete(name)
    for host in servers.hosts:
        assert servers.hits(host)[-1] == ("DELETE", "/media/d.txt", 204)
        assert servers.read(host, name) is None


def test_reads_fail_over_from_a_host_that_is_down(nginx3: MediaSet, make: Factory) -> None:
    storage = make(nginx3.hosts)
    storage.save("f.txt", ContentFile(b"f"))
    down = f"127.0.0.1:{free_port()}"
    reader = make([down, nginx3.hosts[0]])
    for _ in range(6):  # the first host is chosen at random: both orders come up
        assert reader.exists("f.txt")
        assert reader.size("f.txt") == 1
        with reader.open("f.txt") as file:
            assert file.read() == b"f"
    with pytest.raises(TransportError) as caught:  # the host's own error, as django-resto
        make([down]).exists("f.txt")
    assert caught.value.failures == {down: caught.value}  # type: ignore[attr-defined]
    assert isinstance(caught.value, RestoError)


@pytest.mark.parametrize("read", ["exists", "size", "open", "get_modified_time"])
def test_a_read_no_host_answers_raises_the_last_hosts_error_as_django_resto_did(
    media: Nginx, make: Factory, read: str
) -> None:
    failing = [media.status_host(500), media.status_host(403)]
    storage = make(failing)
    with pytest.raises(UnexpectedStatusCode) as caught:  # what a django-resto site catches
        getattr(storage, read)("x.txt")
    error = caught.value
    assert isinstance(error, RestoError)
    assert error.code in (500, 403)
    assert error.host == list(error.failures)[-1]  # type: ignore[attr-defined]
    assert set(error.failures) <= set(failing)  # type: ignore[attr-defined]  # every one tried


def test_exists_on_a_directory_is_true_as_on_a_file_system(nginx3: MediaSet, make: Factory) -> None:
    storage = make(nginx3.hosts)
    storage.save("folder/inside.txt", ContentFile(b"i"))
    assert storage.exists("folder")  # nginx answers 301 to the name without its slash
    assert not storage.exists("nowhere")


def test_a_500_fails_over_but_a_404_is_an_answer(media: Nginx, make: Factory) -> None:
    storage = make([media.status_host(500), media.hosts[0]])
    assert not storage.exists("absent.txt")
    assert not storage.exists("absent.txt")
    assert [r.status for r in media.requests(media.hosts[0])] == [404, 404]


@pytest.mark.parametrize("fatal", [True, False], ids=["fatal", "not-fatal"])
def test_a_host_down_during_save(
    nginx3: MediaSet, make: Factory, fatal: bool, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"127.0.0.1:{free_port()}"
    hosts = [*nginx3.hosts, down]
    if fatal:
        storage = make(hosts)
    else:
        with pytest.warns(RuntimeWarning, match="without fatal exceptions"):
            storage = make(hosts, fatal_exceptions=False)
    with caplog.at_level(logging.WARNING, logger="resto_fast"):
        if fatal:
            with pytest.raises(ReplicationError) as caught:
                storage._save("p.txt", ContentFile(b"p"))
            assert list(caught.value.failures) == [down]
        else:
            storage._save("p.txt", ContentFile(b"p"))
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert down in error.getMessage()
    assert "'p.txt'" in error.getMessage()
    for host in nginx3.hosts:  # a save that raised leaves nothing behind: its copies removed
        assert nginx3.read(host, "p.txt") == (None if fatal else b"p")
    if fatal:
        (undone,) = [r for r in caplog.records if "was undone" in r.getMessage()]
        assert undone.levelno == logging.WARNING


def test_a_save_no_host_received_raises_even_without_fatal_exceptions(make: Factory) -> None:
    down = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    with pytest.warns(RuntimeWarning):
        storage = make(down, fatal_exceptions=False)
    with pytest.raises(ReplicationError) as caught:
        storage._save("lost.txt", ContentFile(b"lost"))
    assert sorted(caught.value.failures) == sorted(down)


def test_url_and_path(make: Factory) -> None:
    storage = make(["m1:8080"], base_url="https://media.example.com/m/")
    assert storage.url("a b/é.jpg") == "https://media.example.com/m/a%20b/%C3%A9.jpg"
    with pytest.raises(NotImplementedError):
        storage.path("a.jpg")
    with override_settings(MEDIA_URL="/uploads/"):
        assert DistributedStorage(hosts=["m1:8080"]).url("x.txt") == "/uploads/x.txt"


def test_open_refuses_writing_modes(make: Factory) -> None:
    for mode in ("wb", "r", "ab", "rb+"):
        with pytest.raises(OSError, match="'rb' only"):
            make(["m1:8080"]).open("a.txt", mode)


class NoLastModified(Peer):
    """Answers every request 200 with a body and no Last-Modified, as some servers do."""

    def serve(self, conn: socket.socket) -> None:
        pending = b""
        while (head := read_request_head(conn, pending)) is not None:
            _, _, pending = head
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def test_get_modified_time_without_last_modified_is_not_implemented(make: Factory) -> None:
    with running(NoLastModified()) as peer:
        storage = make([peer.host])
        with pytest.raises(NotImplementedError, match="Last-Modified"):
            storage.get_modified_time("a.txt")


def test_eight_threads_share_one_storage(nginx3: MediaSet, make: Factory) -> None:
    storage = make(nginx3.hosts)
    names: list[str] = []

    def save(index: int) -> None:
        for round_ in range(5):
            names.append(storage.save(f"same{round_}.txt", ContentFile(b"%d" % index)))

    assert in_threads(8, save) == []
    assert len(names) == 40
    for host in nginx3.hosts:
        puts = [hit for hit in nginx3.hits(host) if hit[0] == "PUT"]
        assert len(puts) == 40
        # Races on one name are documented: a save may land over another's (204).
        assert {status for _, _, status in puts} <= {201, 204}


GiB = 1024**3

CHILD = textwrap.dedent(
    """
    import json, sys
    import django
    django.setup()
    from django.core.files import File
    from django.core.files.base import ContentFile
    from resto_fast.storage import DistributedStorage

    def peak_kib():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    hosts, path = json.loads(sys.argv[1]), sys.argv[2]
    storage = DistributedStorage(hosts=hosts, base_url="/media/")
    storage.save("warm-up.bin", ContentFile(b"x" * 3_000_000))
    before = peak_kib()
    with open(path, "rb") as source:
        name = storage.save("big/upload.bin", File(source, "upload.bin"))
    after = peak_kib()
    print(json.dumps({"before": before, "after": after, "name": name}))
    """
)


@pytest.mark.slow
def test_a_1_gib_upload_streams_with_bounded_memory(media: Nginx, scratch: Path) -> None:
    source = scratch / "upload.bin"
    with source.open("wb") as file:
        file.truncate(GiB)
        file.seek(GiB - 8)
        file.write(b"THE END!")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(media.hosts), str(source)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.django_settings"},
    ).stdout
    report = json.loads(out)
    assert report["name"] == "big/upload.bin"
    growth_mib = (report["after"] - report["before"]) / 1024
    assert growth_mib < 32, f"peak RSS grew by {growth_mib:.1f} MiB"
    for index in range(3):
        copy = media.path(index, "big/upload.bin")
        assert copy.stat().st_size == GiB
        with copy.open("rb") as file:
            file.seek(GiB - 8)
            assert file.read() == b"THE END!"
        copy.unlink()


def test_listdir_asks_one_host_through_propfind(
    dav_media: Nginx, embedded_servers: list[Any], make: Factory
) -> None:
    embedded = EmbeddedSet(embedded_servers, 3)  # emptied
    for hosts in (dav_media.hosts, embedded.hosts):
        storage = make(hosts)
        for name in ("gallery/2026/a.jpg", "gallery/2026/b c.jpg", "gallery/ünï.txt", "top.txt"):
            storage.save(name, ContentFile(b"x"))
        assert storage.listdir("") == (["gallery"], ["top.txt"])
        assert storage.listdir("gallery") == (["2026"], ["ünï.txt"])
        assert storage.listdir("gallery/2026") == ([], ["a.jpg", "b c.jpg"])
        with pytest.raises(FileNotFoundError):
            storage.listdir("nowhere")


def test_listdir_on_servers_without_propfind_is_not_implemented(
    media: Nginx, make: Factory
) -> None:
    with pytest.raises(NotImplementedError, match="PROPFIND"):
        make([media.plain_host]).listdir("")


class FailingCreate(DefaultTransport):
    def create(self, host: str, name: str, content: Any) -> bool:
        raise ConnectionError(f"{host} is unreachable")


def test_an_overridden_create_that_reached_no_host_raises_even_without_fatal(
    make: Factory,
) -> None:
    class Storage(DistributedStorage):
        transport_class = FailingCreate

    with pytest.warns(RuntimeWarning):
        storage = Storage(["m1:8080", "m2:8080"], BASE_URL, fatal_exceptions=False)
    with pytest.raises(ReplicationError) as caught:
        storage._save("lost.txt", ContentFile(b"x"))
    assert sorted(caught.value.failures) == ["m1:8080", "m2:8080"]


def test_text_content_is_saved_as_utf8(nginx3: MediaSet, make: Factory) -> None:
    storage = make(nginx3.hosts)
    name = storage.save("text.txt", ContentFile("héllo"))
    for host in nginx3.hosts:
        assert nginx3.read(host, name) == "héllo".encode()


def test_a_save_with_no_host_configured_raises(make: Factory) -> None:
    class Overwriting(DistributedStorage):
        def get_available_name(self, name: str, max_length: int | None = None) -> str:
            return name  # the common "overwrite" subclass: no exists() to fail first

    with pytest.raises(ReplicationError, match="no media host"):
        Overwriting([], BASE_URL).save("nowhere.txt", ContentFile(b"x"))
