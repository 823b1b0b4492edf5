"""The Replicator API against real nginx media servers."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from pathlib import Path

import pytest

from resto_fast import (
    ClosedError,
    ConfigurationError,
    InvalidNameError,
    NotFoundError,
    Outcome,
    ReplicationError,
    Replicator,
    SourceError,
    TransportError,
    UnexpectedStatusCode,
)
from testbed import Nginx, free_port

pytestmark = pytest.mark.nginx


def test_put_lands_on_every_host_with_one_put_each(media: Nginx, replicator: Replicator) -> None:
    result = replicator.put("photos/a.jpg", b"jpeg bytes").raise_for_failures()
    assert [r.outcome for r in result] == [Outcome.CREATED] * 3
    assert [r.status for r in result] == [201] * 3
    assert all(r.transferred == 10 and r.elapsed > 0 for r in result)
    for index, host in enumerate(media.hosts):
        assert media.path(index, "photos/a.jpg").read_bytes() == b"jpeg bytes"
        assert [(q.method, q.uri, q.status) for q in media.requests(host)] == [
            ("PUT", "/media/photos/a.jpg", 201)
        ]


@pytest.mark.parametrize("size", [0, 10, 5 * 1024 * 1024 + 3])
def test_every_put_says_its_length_and_expects_no_100_continue(
    media: Nginx, replicator: Replicator, size: int, tmp_path: Path
) -> None:
    source = tmp_path / "body.bin"  # from a path: a small body goes whole, a large one streams
    source.write_bytes(os.urandom(size))
    replicator.put("sized.bin", source).raise_for_failures()
    requests = media.requests()
    assert len(requests) == 3
    for request in requests:
        assert (request.method, request.content_length, request.expect) == ("PUT", str(size), "")


def test_names_land_on_disk_under_their_exact_decoded_name(
    media: Nginx, replicator: Replicator
) -> None:
    names = [
        "a b.txt",
        "100%.txt",
        "what?.txt",
        "hash#tag.txt",
        "c++.txt",
        "été/ß.txt",
        "😀/🎉.png",
    ]
    for name in names:
        replicator.put(name, name.encode()).raise_for_failures()
    for index in range(3):
        for name in names:
            assert media.path(index, name).read_bytes() == name.encode()
    assert {q.uri for q in media.requests(media.hosts[0])} == {f"/media/{name}" for name in names}


def test_a_second_put_reuses_the_connection(media: Nginx, replicator: Replicator) -> None:
    first = replicator.put("one.txt", b"1")
    second = replicator.put("two.txt", b"2")
    assert [r.new_connections for r in first] == [1, 1, 1]
    assert [r.new_connections for r in second] == [0, 0, 0]
    for host in media.hosts:
        one, two = media.requests(host)
        assert one.connection == two.connection  # nginx saw one connection ...
        assert (one.connection_requests, two.connection_requests) == (1, 2)  # ... serving both


def test_put_over_an_existing_file_replaces_it_with_a_warning(
    media: Nginx, replicator: Replicator, caplog: pytest.LogCaptureFixture
) -> None:
    replicator.put("a.txt", b"old")
    with caplog.at_level(logging.WARNING, logger="resto_fast"):
        result = replicator.put("a.txt", b"new").raise_for_failures()
    assert [r.outcome for r in result] == [Outcome.REPLACED] * 3
    assert media.path(0, "a.txt").read_bytes() == b"new"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert {r.resto_host for r in warnings} == set(media.hosts)  # type: ignore[attr-defined]
    assert all("'a.txt'" in r.getMessage() and "replaced" in r.getMessage() for r in warnings)


def test_only_the_copies_that_replaced_a_file_warn_in_a_put_and_a_batch(
    media: Nginx, replicator: Replicator, caplog: pytest.LogCaptureFixture
) -> None:
    """A result whose copies were all created logs nothing and returns at once; one
    replaced copy among created ones still warns, once, from put and from put_many."""
    replicator.put("one.txt", b"old", hosts=[media.hosts[1]])
    replicator.put("batch/b.txt", b"old", hosts=[media.hosts[2]])
    with caplog.at_level(logging.DEBUG, logger="resto_fast"):
        created = replicator.put("fresh.txt", b"new")
        mixed = replicator.put("one.txt", b"new")
        batch = replicator.put_many((f"batch/{n}.txt", b"new") for n in "abc")
    assert created.ok
    assert [r.outcome for r in created] == [Outcome.CREATED] * 3
    assert [r.outcome for r in mixed] == [Outcome.CREATED, Outcome.REPLACED, Outcome.CREATED]
    assert [r.outcome for r in batch[1]] == [Outcome.CREATED, Outcome.CREATED, Outcome.REPLACED]
    assert all(r.outcome is Outcome.CREATED for result in (batch[0], batch[2]) for r in result)
    logged = [(r.levelno, r.resto_host, r.resto_name) for r in caplog.records]  # type: ignore[attr-defined]
    assert logged == [
        (logging.WARNING, media.hosts[1], "one.txt"),
        (logging.WARNING, media.hosts[2], "batch/b.txt"),
    ]


def test_a_zero_byte_file(media: Nginx, replicator: Replicator) -> None:
    replicator.put("empty", b"").raise_for_failures()
    assert all(media.path(i, "empty").read_bytes() == b"" for i in range(3))
    assert replicator.size("empty") == 0


def test_sources_of_every_kind(media: Nginx, replicator: Replicator, tmp_path: Path) -> None:
    path = tmp_path / "src.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(data)
    replicator.put("from-path", path).raise_for_failures()
    replicator.put("from-str-path", str(path)).raise_for_failures()
    with path.open("rb") as file:
        replicator.put("from-file", file).raise_for_failures()
    replicator.put("from-bytesio", io.BytesIO(data)).raise_for_failures()
    for name in ("from-path", "from-str-path", "from-file", "from-bytesio"):
        assert all(media.path(i, name).read_bytes() == data for i in range(3)), name


def test_delete_then_delete_again_warns(
    media: Nginx, replicator: Replicator, caplog: pytest.LogCaptureFixture
) -> None:
    replicator.put("gone.txt", b"x")
    assert [r.outcome for r in replicator.delete("gone.txt")] == [Outcome.DELETED] * 3
    assert not any(media.path(i, "gone.txt").exists() for i in range(3))
    with caplog.at_level(logging.WARNING, logger="resto_fast"):
        again = replicator.delete("gone.txt").raise_for_failures()
    assert [(r.outcome, r.status) for r in again] == [(Outcome.ALREADY_GONE, 404)] * 3
    assert sum("already gone" in r.getMessage() for r in caplog.records) == 3


def test_reads(media: Nginx, replicator: Replicator) -> None:
    data = os.urandom(700_000)
    replicator.put("r/data.bin", data).raise_for_failures()
    for host in media.hosts:
        stat = replicator.stat("r/data.bin", host)
        assert stat is not None
        assert (stat.host, stat.size) == (host, len(data))
        assert stat.modified is not None
        assert stat.modified > 0
        assert replicator.get("r/data.bin", host) == data
    assert replicator.exists("r/data.bin")
    assert not replicator.exists("r/missing.bin")
    assert replicator.stat("r/missing.bin") is None
    assert replicator.size("r/data.bin") == len(data)
    digest = hashlib.sha256()
    assert replicator.get_into("r/data.bin", digest.update) == len(data)
    assert digest.digest() == hashlib.sha256(data).digest()
    with pytest.raises(NotFoundError) as caught:
        replicator.get("r/missing.bin")
    assert caught.value.name == "r/missing.bin"
    with pytest.raises(NotFoundError):
        replicator.size("r/missing.bin", media.hosts[1])


def test_reads_fail_over_on_transport_errors_and_5xx(
    media: Nginx, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    broken = media.status_host(500)
    hosts = [dead, broken, media.hosts[0]]
    monkeypatch.setattr(
        "resto_fast._replicator.random.shuffle", lambda hosts: None
    )  # keep the order
    with Replicator(hosts, "/media/") as replicator:
        replicator.put("f.txt", b"data", hosts=[media.hosts[0]]).raise_for_failures()
        assert replicator.exists("f.txt")
        assert replicator.get("f.txt") == b"data"
        assert not replicator.exists("nope.txt")


def test_a_404_is_an_answer_not_a_failure(media: Nginx, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("resto_fast._replicator.random.shuffle", lambda hosts: None)
    with Replicator(media.hosts[:2], "/media/") as replicator:
        replicator.put("only-on-second", b"x", hosts=[media.hosts[1]])
        assert not replicator.exists("only-on-second")  # the first host answered: missing
    assert [q.method for q in media.requests(media.hosts[1]) if q.method == "HEAD"] == []


def test_reads_that_no_host_can_answer_raise_one_error(media: Nginx) -> None:
    dead = [f"127.0.0.1:{free_port()}", media.status_host(500)]
    with Replicator(dead, "/media/") as replicator, pytest.raises(ReplicationError) as caught:
        replicator.exists("x")
    assert set(caught.value.failures) == set(dead)
    with (
        Replicator([media.status_host(403), media.hosts[0]], "/media/") as replicator,
        pytest.raises(ReplicationError),
    ):
        replicator.stat("x", media.status_host(403))  # a 403 is not worth another host


def test_invalid_names_are_refused_before_any_request(media: Nginx, replicator: Replicator) -> None:
    for name in ("../etc/passwd", "/abs", "a\x00b", "a\\b"):
        with pytest.raises(InvalidNameError):
            replicator.put(name, b"x")
        with pytest.raises(ValueError, match="file name"):
            replicator.delete(name)
    with pytest.raises(InvalidNameError):
        replicator.put_many([("fine.txt", b"x"), ("../bad", b"x")])
    assert media.requests() == []


def test_an_unreadable_source_is_its_result_and_nothing_is_sent(
    media: Nginx, replicator: Replicator, tmp_path: Path
) -> None:
    result = replicator.put("x", tmp_path / "missing.bin")
    error = result.source_error
    assert isinstance(error, SourceError)
    assert error.name == "x"
    assert isinstance(error.__cause__, FileNotFoundError)
    assert (result.ok, result.hosts) == (False, ())
    with pytest.raises(SourceError):
        result.raise_for_failures()
    assert media.requests() == []


class _TooMuch(io.RawIOBase):
    """read(n) returns more than n bytes, for ever."""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return b"x" * (max(size, 1) + 10)


class _Raising(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        raise RuntimeError("the disk said no")


class _Text(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> str:  # type: ignore[override,unused-ignore]
        return "text"


class _Sized:
    """A seekable file object of ``size`` bytes (so it is not spooled) whose read misbehaves."""

    def __init__(self, inner: io.RawIOBase, size: int) -> None:
        self.inner, self.size, self.position = inner, size, 0

    def read(self, size: int = -1) -> object:
        return self.inner.read(size)

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.size if whence == 2 else offset


@pytest.mark.parametrize("bad", [_TooMuch, _Raising, _Text])
@pytest.mark.parametrize("size", [100, 3 * 1024 * 1024], ids=["small", "large"])
def test_a_bad_source_is_a_source_error_in_its_result_whatever_its_size(
    media: Nginx, replicator: Replicator, bad: type[io.RawIOBase], size: int
) -> None:
    result = replicator.put("bad.bin", _Sized(bad(), size))  # type: ignore[arg-type]
    assert isinstance(result.source_error, SourceError)
    assert not result.ok
    assert not any(media.path(i, "bad.bin").exists() for i in range(3))
    # A stream of unknown length is spooled first: the same faults, the same rule.
    spooled = replicator.put("spooled.bin", bad())
    assert isinstance(spooled.source_error, SourceError)


def test_not_a_source_is_a_source_error_too(replicator: Replicator, media: Nginx) -> None:
    result = replicator.put("n.bin", 12345)  # type: ignore[arg-type]
    assert isinstance(result.source_error, SourceError)
    assert "is no source" in str(result.source_error)
    assert media.requests() == []


def test_one_bad_source_does_not_stop_a_batch(media: Nginx, replicator: Replicator) -> None:
    items = [("a.bin", b"a"), ("b.bin", _Text()), ("c.bin", 7), ("d.bin", _TooMuch())]
    items += [("e.bin", b"e")]
    results = replicator.put_many(items)  # type: ignore[arg-type]
    assert [r.name for r in results] == ["a.bin", "b.bin", "c.bin", "d.bin", "e.bin"]
    assert [r.ok for r in results] == [True, False, False, False, True]
    assert all(isinstance(r.source_error, SourceError) for r in results[1:4])
    assert media.path(0, "e.bin").read_bytes() == b"e"


def test_a_source_failing_half_way_leaves_no_copy_anywhere(
    media: Nginx, replicator: Replicator, caplog: pytest.LogCaptureFixture
) -> None:
    class Failing(io.RawIOBase):
        def __init__(self) -> None:
            self.sent = 0

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            if self.sent >= 3 * 1024 * 1024:
                raise OSError(5, "Input/output error")
            buffer[:] = bytes(len(buffer))
            self.sent += len(buffer)
            return len(buffer)

    opened_size = 8 * 1024 * 1024

    class Sized(Failing):
        def seekable(self) -> bool:
            return True

        def tell(self) -> int:
            return 0

        def seek(self, offset: int, whence: int = 0) -> int:
            return opened_size if whence == 2 else 0

    with caplog.at_level(logging.ERROR, logger="resto_fast"):
        result = replicator.put("broken.bin", Sized())
    assert result.source_error is not None
    assert "Input/output error" in str(result.source_error)
    assert all(r.outcome is Outcome.FAILED for r in result)
    assert all(isinstance(r.error, TransportError) and r.error.reason == "aborted" for r in result)
    with pytest.raises(SourceError):
        result.raise_for_failures()
    assert not any(media.path(i, "broken.bin").exists() for i in range(3))
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        str(result.source_error)
    ]


def test_failures_are_logged_with_file_and_host(
    media: Nginx, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    with (
        Replicator([media.hosts[0], dead], "/media/", log_tracebacks=True) as replicator,
        caplog.at_level(logging.ERROR, logger="resto_fast"),
    ):
        result = replicator.put("logged.txt", b"x")
    assert result.succeeded == (media.hosts[0],)
    (record,) = caplog.records
    assert record.getMessage().startswith(f"PUT 'logged.txt' on {dead} failed: refused")
    fields = (record.resto_name, record.resto_host, record.resto_method)  # type: ignore[attr-defined]
    assert fields == ("logged.txt", dead, "PUT")
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], TransportError)


@pytest.mark.parametrize("size", [100_000, 24 * 1024 * 1024])  # whole, and streamed
@pytest.mark.parametrize("code", [403, 500, 202, 302])
def test_hosts_answering_unexpected_codes_fail_alone(media: Nginx, code: int, size: int) -> None:
    """nginx answers these before reading the body: the streamed upload to that host stops,
    and must not hold the window back from the healthy host."""
    bad = media.status_host(code)
    data = os.urandom(size)
    with Replicator([media.hosts[0], bad], "/media/", timeout=5) as replicator:
        result = replicator.put("status.bin", io.BytesIO(data))
    assert result[media.hosts[0]].outcome is Outcome.CREATED
    assert media.path(0, "status.bin").read_bytes() == data
    failed = result[bad]
    assert isinstance(failed.error, UnexpectedStatusCode)
    assert (failed.status, failed.error.code, failed.error.host) == (code, code, bad)
    with pytest.raises(ReplicationError) as caught:
        result.raise_for_failures()
    assert list(caught.value.failures) == [bad]
    if code == 302:  # redirects are never followed
        assert [q.uri for q in media.requests() if q.uri == "/elsewhere"] == []


def test_put_many_pipelines_files_in_order_with_bounded_concurrency(media: Nginx) -> None:
    items = [(f"many/{i:03}.bin", os.urandom(1000 + i)) for i in range(120)]
    seen: list[str] = []
    progress: list[int] = []
    with Replicator(media.hosts, "/media/", concurrency=4) as replicator:
        results = replicator.put_many(
            items, on_result=lambda r: seen.append(r.name), on_progress=progress.append
        )
    assert [r.name for r in results] == [name for name, _ in items]
    assert sorted(seen) == [name for name, _ in items]
    assert all(r.ok for r in results)
    total = sum(len(data) for _, data in items) * 3
    assert progress[-1] == total
    assert progress == sorted(progress)
    for index, host in enumerate(media.hosts):
        requests = media.requests(host)
        assert len(requests) == 120
        assert len({q.connection for q in requests}) <= 4
        name, data = items[77]
        assert media.path(index, name).read_bytes() == data


def test_put_many_reports_sources_it_cannot_open(
    media: Nginx, replicator: Replicator, tmp_path: Path
) -> None:
    results = replicator.put_many([("a", b"1"), ("b", tmp_path / "missing"), ("c", b"3")])
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].hosts == ()
    assert isinstance(results[1].source_error, SourceError)


def test_hosts_can_be_chosen_per_call(media: Nginx, replicator: Replicator) -> None:
    replicator.put("subset", b"x", hosts=[media.hosts[2]]).raise_for_failures()
    assert [media.path(i, "subset").exists() for i in range(3)] == [False, False, True]
    assert replicator.url("a b", media.hosts[1]) == f"http://{media.hosts[1]}/media/a%20b"


def test_an_operation_with_no_host_is_an_error_never_a_success(media: Nginx) -> None:
    with Replicator([], "/media/") as replicator:
        with pytest.raises(ConfigurationError, match="no media host"):
            replicator.put("x", b"x")
        with pytest.raises(ConfigurationError, match="no media host"):
            replicator.put_many([("x", b"x")])
        with pytest.raises(ConfigurationError, match="no media host"):
            replicator.delete("x")
        with pytest.raises(ConfigurationError, match="no media host"):
            replicator.exists("x")
    with Replicator(media.hosts, "/media/") as replicator:
        with pytest.raises(ConfigurationError, match="no media host"):
            replicator.put("x", b"x", hosts=[])
        with pytest.raises(ConfigurationError, match="no media host"):
            replicator.delete("x", hosts=())
    assert media.requests() == []


def test_one_replicator_shared_by_threads(media: Nginx) -> None:
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for i in range(25):
                replicator.put(f"t{thread}/{i}", f"{thread}-{i}".encode()).raise_for_failures()
        except BaseException as exc:
            errors.append(exc)

    with Replicator(media.hosts, "/media/") as replicator:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert replicator._pool.idle <= 8
    assert errors == []
    assert media.path(1, "t7/24").read_bytes() == b"7-24"
    assert len(media.requests(media.hosts[0])) == 200


def test_a_forked_child_makes_its_own_connections(media: Nginx) -> None:
    with Replicator(media.hosts, "/media/") as replicator:
        replicator.put("parent-1", b"p").raise_for_failures()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            status = 1
            try:
                result = replicator.put("child", b"c")
                status = 0 if result.ok and all(r.new_connections == 1 for r in result) else 2
            finally:
                os.write(write_end, bytes([status]))
                os._exit(0)
        os.close(write_end)
        child_status = os.read(read_end, 1)
        os.waitpid(pid, 0)
        os.close(read_end)
        after = replicator.put("parent-2", b"p").raise_for_failures()
    assert child_status == b"\x00"
    assert [r.new_connections for r in after] == [0, 0, 0]  # the parent's connections survived
    assert media.path(0, "child").read_bytes() == b"c"


def test_puts_and_batches_of_one_thread_share_one_engine_and_its_connections(
    media: Nginx,
) -> None:
    with Replicator(media.hosts, "/media/", concurrency=1) as replicator:
        first = replicator.put("shared/a", b"a")
        batch = replicator.put_many([("shared/b", b"b"), ("shared/c", b"c")])
        last = replicator.put("shared/d", b"d")
    assert [r.new_connections for r in first] == [1, 1, 1]
    assert [r.new_connections for result in batch for r in result] == [0] * 6
    assert [r.new_connections for r in last] == [0, 0, 0]


def test_closed_replicator_refuses_work(media: Nginx) -> None:
    replicator = Replicator(media.hosts, "/media/")
    replicator.close()
    with pytest.raises(ClosedError, match="closed") as raised:
        replicator.put("x", b"x")
    assert isinstance(raised.value, RuntimeError)  # what it was before it joined the tree
    assert media.requests() == []


def test_https_media_servers(media: Nginx) -> None:
    base_url = "https://media.example.com/media/"  # the host part is always swapped out
    with Replicator(media.tls_hosts, base_url, ca_file=str(media.certificate)) as replicator:
        result = replicator.put("tls/secret.txt", b"over TLS").raise_for_failures()
        assert all(r.url.startswith("https://127.0.0.1:") for r in result)
        assert replicator.get("tls/secret.txt") == b"over TLS"
        assert replicator.put("tls/again.txt", b"x").hosts[0].new_connections == 0
    assert media.path(2, "tls/secret.txt").read_bytes() == b"over TLS"


def test_https_with_an_unknown_certificate_fails_as_tls(media: Nginx) -> None:
    with Replicator(media.tls_hosts[:1], "https://m/media/") as replicator:
        result = replicator.put("tls/x.txt", b"x")
    error = result.hosts[0].error
    assert isinstance(error, TransportError)
    assert error.reason == "tls"
    with Replicator(media.tls_hosts[:1], "https://m/media/", verify_tls=False) as replicator:
        replicator.put("tls/x.txt", b"x").raise_for_failures()


def test_bad_configuration_is_refused_at_once() -> None:
    with pytest.raises(ConfigurationError, match="list"):
        Replicator("media-1:8080")  # a lone string, not a list of hosts
    with pytest.raises(ConfigurationError, match="query"):
        Replicator(["m:80"], "/media/?v=1")
    with pytest.raises(ConfigurationError, match="timeout"):
        Replicator(["m:80"], timeout=0)
    with pytest.raises(ConfigurationError, match=r"unknown option.*colour"):
        Replicator(["m:80"], colour="blue")  # an unknown option: a ValueError, named


def test_host_names_are_resolved(media: Nginx) -> None:
    port = media.hosts[0].rsplit(":", 1)[1]
    with Replicator([f"localhost:{port}"], "/media/") as replicator:
        replicator.put("by-name.txt", b"x").raise_for_failures()
    assert media.path(0, "by-name.txt").read_bytes() == b"x"


def test_an_engine_borrowed_across_a_fork_is_not_reused_by_the_child(media: Nginx) -> None:
    """fork() while an operation runs (from a callback, say): the child must not give the
    parent's engine back to its own pool, or it would send on the parent's connections."""
    with Replicator(media.hosts, "/media/") as replicator:
        pool = replicator._pool
        engine = pool.acquire()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            pool.release(engine)
            os.write(write_end, bytes([pool.idle]))
            os._exit(0)
        os.close(write_end)
        idle_in_child = os.read(read_end, 1)
        os.waitpid(pid, 0)
        os.close(read_end)
        pool.release(engine)
        assert pool.idle == 1  # the parent keeps it
    assert idle_in_child == b"\x00"
