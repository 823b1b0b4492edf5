"""HybridStorage: the master copy first, then exactly one request per host, on every server kind."""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile

from resto_fast import (
    InvalidNameError,
    ReplicationError,
    SourceError,
    TransportError,
    UnexpectedStatusCode,
)
from resto_fast.storage import DefaultTransport, HybridStorage, MasterCopy
from testbed import Nginx, free_port
from tests.media_sets import BASE_URL, MediaSet, in_threads

Factory = Callable[..., HybridStorage]


@pytest.fixture
def make(tmp_path: Path) -> Factory:
    def make(hosts: list[str], **options: Any) -> HybridStorage:
        options.setdefault("location", str(tmp_path / "master"))
        options.setdefault("base_url", BASE_URL)
        return HybridStorage(hosts=hosts, **options)

    return make


@pytest.fixture(params=[True, False], ids=["fatal", "not-fatal"])
def fatal(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_save_puts_the_master_copy_once_on_every_host(
    servers: MediaSet, make: Factory, fatal: bool
) -> None:
    storage = make(servers.hosts, fatal_exceptions=fatal)
    name = storage.save("photos/cat.jpg", ContentFile(b"meow" * 1000))
    assert name == "photos/cat.jpg"
    assert Path(storage.path(name)).read_bytes() == b"meow" * 1000
    for host in servers.hosts:
        assert servers.hits(host) == [("PUT", "/media/photos/cat.jpg", 201)]
        assert servers.read(host, name) == b"meow" * 1000


def test_delete_is_local_then_one_delete_per_host(servers: MediaSet, make: Factory) -> None:
    storage = make(servers.hosts)
    name = storage.save("gone.txt", ContentFile(b"bye"))
    storage.delete(name)
    assert not storage.exists(name)
    for host in servers.hosts:
        assert servers.hits(host) == [
            ("PUT", "/media/gone.txt", 201),
            ("DELETE", "/media/gone.txt", 204),
        ]
        assert servers.read(host, name) is None


def test_unicode_and_spaces_reach_the_same_name(servers: MediaSet, make: Factory) -> None:
    storage = make(servers.hosts)
    name = storage.save("été/naïve file €.txt", ContentFile("ünïcode".encode()))
    assert name == "été/naïve file €.txt"
    for host in servers.hosts:
        assert servers.hits(host) == [("PUT", "/media/été/naïve file €.txt", 201)]
        assert servers.read(host, name) == "ünïcode".encode()


def test_a_name_django_renames_is_replicated_under_the_new_name(
    servers: MediaSet, make: Factory
) -> None:
    storage = make(servers.hosts)
    first = storage.save("doc.txt", ContentFile(b"one"))
    second = storage.save("doc.txt", ContentFile(b"two"))
    assert first == "doc.txt"
    assert second != first
    assert second.startswith("doc_")
    assert second.endswith(".txt")
    for host in servers.hosts:
        # exists() is asked of the master copy: no HEAD reaches a media server.
        assert servers.hits(host) == [
            ("PUT", "/media/doc.txt", 201),
            ("PUT", f"/media/{second}", 201),
        ]
        assert servers.read(host, second) == b"two"


def test_a_save_over_a_file_a_host_already_has_warns(
    servers: MediaSet, make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    servers.write(servers.hosts[0], "old.txt", b"stale")
    storage = make(servers.hosts)
    with caplog.at_level(logging.WARNING, logger="resto_fast"):
        storage.save("old.txt", ContentFile(b"fresh"))
    assert servers.read(servers.hosts[0], "old.txt") == b"fresh"
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "'old.txt'" in warning.getMessage()
    assert servers.hosts[0] in warning.getMessage()
    assert "replaced" in warning.getMessage()


def test_deleting_a_file_hosts_do_not_have_warns_per_host(
    servers: MediaSet, make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    storage = make(servers.hosts)
    with caplog.at_level(logging.WARNING, logger="resto_fast"):
        storage.delete("never-saved.txt")
    warned = sorted(r.resto_host for r in caplog.records if r.levelno == logging.WARNING)  # type: ignore[attr-defined]
    assert warned == sorted(servers.hosts)
    for host in servers.hosts:
        assert servers.hits(host) == [("DELETE", "/media/never-saved.txt", 404)]


def test_a_host_down_during_save(
    servers: MediaSet, make: Factory, fatal: bool, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"127.0.0.1:{free_port()}"
    storage = make([*servers.hosts, down], fatal_exceptions=fatal)
    with caplog.at_level(logging.ERROR, logger="resto_fast"):
        if fatal:
            with pytest.raises(ReplicationError) as caught:
                storage.save("report.pdf", ContentFile(b"%PDF"))
            assert list(caught.value.failures) == [down]
            assert isinstance(caught.value.failures[down], TransportError)
            assert caught.value.failures[down].reason == "refused"  # type: ignore[attr-defined]
            name = "report.pdf"
        else:
            name = storage.save("report.pdf", ContentFile(b"%PDF"))
    if fatal:  # a save that raised leaves nothing behind, and the name can be saved again
        assert not Path(storage.path(name)).exists()
        for host in servers.hosts:
            assert servers.read(host, name) is None
        again = make(servers.hosts, fatal_exceptions=True).save(name, ContentFile(b"%PDF"))
        assert again == name  # not a suffixed name for a file that never was
    else:  # the master copy stays, and the live hosts have their copy
        assert Path(storage.path(name)).read_bytes() == b"%PDF"
        for host in servers.hosts:
            assert servers.read(host, name) == b"%PDF"
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "'report.pdf'" in error.getMessage()
    assert down in error.getMessage()
    assert error.exc_info is None  # show_traceback is off


def test_show_traceback_logs_the_failure_with_its_traceback(
    nginx3: MediaSet, make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"127.0.0.1:{free_port()}"
    storage = make([down], fatal_exceptions=False, show_traceback=True)
    with caplog.at_level(logging.ERROR, logger="resto_fast"):
        storage.save("t.txt", ContentFile(b"t"))
    (error,) = caplog.records
    assert error.exc_info is not None
    assert isinstance(error.exc_info[1], TransportError)


def test_a_failing_host_is_named_with_its_status(media: Nginx, make: Factory) -> None:
    failing = media.status_host(500)
    storage = make([*media.hosts, failing])
    with pytest.raises(ReplicationError) as caught:
        storage.save("x.bin", ContentFile(b"x"))
    error = caught.value.failures[failing]
    assert isinstance(error, UnexpectedStatusCode)
    assert error.code == 500
    assert sorted(caught.value.succeeded) == sorted(media.hosts)
    assert failing in str(caught.value)


def test_eight_threads_share_one_storage(nginx3: MediaSet, make: Factory) -> None:
    storage = make(nginx3.hosts)

    def save(index: int) -> None:
        for round_ in range(5):
            data = os.urandom(1000) + b"%d" % index
            storage.save(f"t{index}/f{round_}.bin", ContentFile(data))

    assert in_threads(8, save) == []
    for host in nginx3.hosts:
        hits = nginx3.hits(host)
        assert len(hits) == 40
        assert {status for _, _, status in hits} == {201}
        for index in range(8):
            for round_ in range(5):
                name = f"t{index}/f{round_}.bin"
                assert nginx3.read(host, name) == Path(storage.path(name)).read_bytes()


def test_a_forked_child_saves_with_the_parents_storage(nginx3: MediaSet, make: Factory) -> None:
    storage = make(nginx3.hosts)
    storage.save("before-fork.txt", ContentFile(b"parent"))  # the parent's engine exists
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        try:
            storage.save("from-child.txt", ContentFile(b"child"))
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    storage.save("after-fork.txt", ContentFile(b"parent again"))
    for host in nginx3.hosts:
        assert nginx3.read(host, "from-child.txt") == b"child"
        assert nginx3.read(host, "after-fork.txt") == b"parent again"


def test_a_used_storage_pickles_without_its_connections(nginx3: MediaSet, make: Factory) -> None:
    storage = make(nginx3.hosts)
    storage.save("a.txt", ContentFile(b"a"))
    copy = pickle.loads(pickle.dumps(storage))
    assert copy.hosts == storage.hosts
    assert copy.transport._replicator is None
    copy.save("b.txt", ContentFile(b"b"))
    for host in nginx3.hosts:
        assert nginx3.read(host, "b.txt") == b"b"


def test_deconstruct_gives_the_class_path_and_arguments(tmp_path: Path) -> None:
    # django-resto's positional order: hosts, base_url, location.
    storage = HybridStorage(["m1:8080"], "/m/", str(tmp_path), timeout=5)
    assert (storage.hosts, storage.base_url, storage.location) == (
        ("m1:8080",),
        "/m/",
        str(tmp_path),
    )
    path, args, kwargs = storage.deconstruct()
    assert path == "resto_fast.storage.HybridStorage"
    assert args == (["m1:8080"], "/m/", str(tmp_path))
    assert kwargs == {"timeout": 5}


class CountingTransport(DefaultTransport):
    """A subclass's create runs once per host, on threads, instead of the engine's fan-out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, str]] = []

    def create(self, host: str, name: str, content: Any) -> bool:
        self.calls.append((host, name))
        if host.endswith(":1"):
            raise ValueError("refused by the subclass")
        return super().create(host, name, content)


def test_execute_calls_an_overridden_action_once_per_host(
    nginx3: MediaSet, make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    class Storage(HybridStorage):
        transport_class = CountingTransport

    storage = Storage(location=make([]).location, base_url=BASE_URL, hosts=nginx3.hosts)
    storage.save("c.txt", ContentFile(b"c"))
    transport = storage.transport
    assert isinstance(transport, CountingTransport)
    assert sorted(transport.calls) == sorted((host, "c.txt") for host in nginx3.hosts)
    for host in nginx3.hosts:
        assert nginx3.hits(host) == [("PUT", "/media/c.txt", 201)]

    failing = Storage(location=make([]).location, hosts=["127.0.0.1:1"], fatal_exceptions=True)
    with (
        caplog.at_level(logging.ERROR, logger="resto_fast"),
        pytest.raises(ReplicationError) as caught,
    ):
        failing.save("d.txt", ContentFile(b"d"))
    assert isinstance(caught.value.failures["127.0.0.1:1"], ValueError)
    (line,) = caplog.records
    assert "'d.txt'" in line.getMessage()
    assert "127.0.0.1:1" in line.getMessage()


def test_execute_returns_what_each_host_had(nginx3: MediaSet, make: Factory) -> None:
    storage = make(nginx3.hosts)
    nginx3.write(nginx3.hosts[0], "e.txt", b"old")
    content = ContentFile(b"e")
    created = storage.execute(storage.transport.create, "e.txt", content)
    assert created == {host: host == nginx3.hosts[0] for host in nginx3.hosts}
    deleted = storage.execute(storage.transport.delete, "e.txt")
    assert deleted == dict.fromkeys(nginx3.hosts, True)


def test_no_hosts_is_a_local_storage(make: Factory, tmp_path: Path) -> None:
    storage = make([])
    name = storage.save("local.txt", ContentFile(b"only here"))
    with storage.open(name) as file:
        assert file.read() == b"only here"
    storage.delete(name)
    assert not storage.exists(name)


class ReadingTransport(DefaultTransport):
    """Written the django-resto way: create reads its content itself (bytes there)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: dict[str, bytes] = {}

    def create(self, host: str, name: str, content: Any) -> bool:
        data = content if isinstance(content, bytes) else content.read()
        self.received[host] = data
        return super().create(host, name, data)


def test_an_overridden_create_gets_the_whole_content_on_every_host(
    nginx3: MediaSet, tmp_path: Path
) -> None:
    class Storage(HybridStorage):
        transport_class = ReadingTransport

    storage = Storage(nginx3.hosts, BASE_URL, str(tmp_path))
    data = os.urandom(300_000)
    storage.save("whole.bin", ContentFile(data))
    transport = storage.transport
    assert isinstance(transport, ReadingTransport)
    assert transport.received == dict.fromkeys(nginx3.hosts, data)
    for host in nginx3.hosts:
        assert nginx3.read(host, "whole.bin") == data


def test_a_name_no_server_may_have_is_refused_before_the_master_copy(
    nginx3: MediaSet, make: Factory
) -> None:
    storage = make(nginx3.hosts, fatal_exceptions=False)
    with pytest.raises(InvalidNameError):
        storage.save("bad\x01name.txt", ContentFile(b"x"))
    assert not os.path.exists(storage.path("bad\x01name.txt"))
    assert nginx3.all_hits() == {host: [] for host in nginx3.hosts}


def test_files_open_for_reading_only(make: Factory) -> None:
    storage = make([])
    name = storage.save("r.txt", ContentFile(b"r"))
    with pytest.raises(OSError, match="'rb' only"):
        storage.open(name, "wb")


def test_an_unreadable_master_copy_for_an_overridden_create_is_a_source_error(
    nginx3: MediaSet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Storage(HybridStorage):
        transport_class = ReadingTransport

    storage = Storage(nginx3.hosts, BASE_URL, str(tmp_path))
    missing = MasterCopy(str(tmp_path / "vanished.bin"))
    with caplog.at_level(logging.ERROR, logger="resto_fast"), pytest.raises(SourceError):
        storage.execute(storage.transport.create, "vanished.bin", missing)
    assert "'vanished.bin'" in caplog.text
    assert nginx3.all_hits() == {host: [] for host in nginx3.hosts}


@pytest.mark.parametrize("fatal", [True, False], ids=["fatal", "not-fatal"])
def test_an_unreadable_master_copy_is_logged_and_raised_only_when_fatal(
    nginx3: MediaSet, make: Factory, fatal: bool, caplog: pytest.LogCaptureFixture
) -> None:
    storage = make(nginx3.hosts, fatal_exceptions=fatal)
    missing = MasterCopy(storage.path("deleted-meanwhile.txt"))
    with caplog.at_level(logging.ERROR, logger="resto_fast"):
        if fatal:
            with pytest.raises(SourceError):
                storage.execute(storage.transport.create, "deleted-meanwhile.txt", missing)
        else:
            assert storage.execute(storage.transport.create, "deleted-meanwhile.txt", missing) == {}
    (line,) = caplog.records
    assert "'deleted-meanwhile.txt'" in line.getMessage()
    assert nginx3.all_hits() == {host: [] for host in nginx3.hosts}
