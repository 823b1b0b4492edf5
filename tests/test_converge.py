"""State-based replication against nginx: the hosts end as the source is when it runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from resto_fast import Replicator
from resto_fast._converge import ROUNDS, converge_from_file, converge_from_hosts
from testbed import Nginx, free_port

pytestmark = pytest.mark.nginx


def test_a_file_present_is_sent_to_every_host(media: Nginx, tmp_path: Path) -> None:
    master = tmp_path / "a.jpg"
    master.write_bytes(b"jpeg")
    with Replicator(media.hosts, "/media/") as replicator:
        done = converge_from_file(replicator, "photos/a.jpg", str(master))
    assert (done.action, done.ok, done.rounds) == ("PUT", True, 1)
    assert set(done.succeeded) == set(media.hosts)
    assert all(media.path(i, "photos/a.jpg").read_bytes() == b"jpeg" for i in range(3))


def test_a_file_gone_is_deleted_and_a_copy_already_gone_is_fine(
    media: Nginx, tmp_path: Path
) -> None:
    media.path(0, "gone.txt").parent.mkdir(parents=True, exist_ok=True)
    media.path(0, "gone.txt").write_bytes(b"stale")
    with Replicator(media.hosts, "/media/") as replicator:
        done = converge_from_file(replicator, "gone.txt", str(tmp_path / "gone.txt"))
    assert (done.action, done.ok) == ("DELETE", True)
    assert not media.path(0, "gone.txt").exists()
    assert [r.status for r in media.requests() if r.method == "DELETE"] == [204, 404, 404]


def test_any_order_ends_in_the_source_state(media: Nginx, tmp_path: Path) -> None:
    master = tmp_path / "x.bin"
    with Replicator(media.hosts, "/media/") as replicator:
        master.write_bytes(b"v1")
        # Queued as "PUT x", then "DELETE x", then "PUT x": run in the wrong order, they
        # still end as the file is now, whatever each one was queued for.
        master.write_bytes(b"v2")
        for _ in range(3):
            converge_from_file(replicator, "x.bin", str(master))
        master.unlink()
        converge_from_file(replicator, "x.bin", str(master))
        converge_from_file(replicator, "x.bin", str(master))
    assert not any(media.path(i, "x.bin").exists() for i in range(3))


def test_only_the_hosts_asked_for(media: Nginx, tmp_path: Path) -> None:
    master = tmp_path / "s.txt"
    master.write_bytes(b"s")
    with Replicator(media.hosts, "/media/") as replicator:
        converge_from_file(replicator, "s.txt", str(master), [media.hosts[1]])
    assert [media.path(i, "s.txt").exists() for i in range(3)] == [False, True, False]


def test_a_source_that_changes_during_the_transfer_is_sent_again(
    media: Nginx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    master = tmp_path / "c.bin"
    master.write_bytes(b"old" * 1000)
    put = Replicator.put
    sent = []

    def put_then_change(self: Replicator, *args: object, **kwargs: object) -> object:
        result = put(self, *args, **kwargs)  # type: ignore[arg-type]
        sent.append(1)
        if len(sent) == 1:  # the file changes while the first upload runs
            master.write_bytes(b"new content")
        return result

    monkeypatch.setattr(Replicator, "put", put_then_change)
    with Replicator(media.hosts, "/media/") as replicator:
        done = converge_from_file(replicator, "c.bin", str(master))
    assert (done.ok, done.rounds) == (True, 2)
    assert all(media.path(i, "c.bin").read_bytes() == b"new content" for i in range(3))


def test_a_source_that_keeps_changing_fails_every_host_for_now(
    media: Nginx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    master = tmp_path / "k.bin"
    master.write_bytes(b"0")
    put = Replicator.put

    def put_then_change(self: Replicator, *args: object, **kwargs: object) -> object:
        result = put(self, *args, **kwargs)  # type: ignore[arg-type]
        master.write_bytes(os.urandom(8))
        return result

    monkeypatch.setattr(Replicator, "put", put_then_change)
    with Replicator(media.hosts, "/media/") as replicator:
        done = converge_from_file(replicator, "k.bin", str(master))
    assert done.rounds == ROUNDS
    assert not done.ok
    assert set(done.failed) == set(media.hosts)
    assert "kept changing" in done.failed[media.hosts[0]]


def test_failures_name_each_host_with_its_reason(media: Nginx, tmp_path: Path) -> None:
    master = tmp_path / "f.txt"
    master.write_bytes(b"f")
    dead = f"127.0.0.1:{free_port()}"
    with Replicator([media.hosts[0], dead], "/media/") as replicator:
        done = converge_from_file(replicator, "f.txt", str(master))
    assert done.succeeded == (media.hosts[0],)
    assert done.failed[dead].startswith("refused")
    assert done.as_dict()["failed"] == {dead: done.failed[dead]}


def test_without_a_master_copy_the_other_hosts_are_the_source(media: Nginx) -> None:
    full, empty = media.hosts[0], media.hosts[1]
    with Replicator(media.hosts, "/media/") as replicator:
        replicator.put("d/only.bin", b"x" * 5000, hosts=[full])
        done = converge_from_hosts(replicator, "d/only.bin", [empty], [media.hosts[2], full])
        assert (done.action, done.ok) == ("PUT", True)  # host 2 lacks it: host 0 gave it
        assert media.path(1, "d/only.bin").read_bytes() == b"x" * 5000
        replicator.delete("d/only.bin", hosts=[full])  # deleted on the hosts that had it
        gone = converge_from_hosts(replicator, "d/only.bin", [empty], [media.hosts[2], full])
    assert (gone.action, gone.ok) == ("DELETE", True)
    assert not media.path(1, "d/only.bin").exists()


def test_without_a_source_that_answers_nothing_is_decided(media: Nginx) -> None:
    dead = f"127.0.0.1:{free_port()}"
    with Replicator([media.hosts[0], dead], "/media/") as replicator:
        done = converge_from_hosts(replicator, "n.bin", [media.hosts[0]], [dead])
    assert (done.action, done.ok) == ("", False)
    assert (
        "could not be read" in done.failed[media.hosts[0]]
        or "failed" in done.failed[media.hosts[0]]
    )
    assert media.requests(media.hosts[0]) == []  # no delete on a guess
