"""``resto-fast sync``/``verify`` against real nginx hosts: drift found, repaired, and reported."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from testbed import BlackHole, Nginx, free_port
from tests.media_sets import running_embedded
from tests.sync_support import (
    ODD_NAMES,
    age,
    directories,
    host_tree,
    make_tree,
    run,
    standard_files,
    sync_args,
    tree,
)

pytestmark = pytest.mark.nginx

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "master"
    make_tree(root, standard_files(), mtime=1_700_000_000)  # the past: host copies are newer
    return root


def puts(media: Nginx, host: str) -> list[str]:
    return sorted(r.uri for r in media.requests(host) if r.method == "PUT")


def test_a_fresh_host_gets_every_file_with_one_put_each(
    dav_media: Nginx, source: Path, capsys: Capsys
) -> None:
    code, out, err = run(capsys, *sync_args("sync", source, dav_media.hosts))
    assert code == 0, err
    expected = tree(source)
    for index, host in enumerate(dav_media.hosts):
        assert host_tree(dav_media, index) == expected
        assert len(puts(dav_media, host)) == len(expected)
        methods = {r.method for r in dav_media.requests(host)}
        assert methods == {"PROPFIND", "PUT"}
    assert "OK: 3 hosts hold every source file" in out
    row = next(line for line in out.splitlines() if line.startswith(dav_media.hosts[0]))
    assert row.split()[1:] == ["0", str(len(expected)), "0", "0", str(len(expected)), "0", "0"]


def test_a_second_run_only_lists(dav_media: Nginx, source: Path, capsys: Capsys) -> None:
    assert run(capsys, *sync_args("sync", source, dav_media.hosts))[0] == 0
    dav_media.clear_log()
    assert run(capsys, *sync_args("sync", source, dav_media.hosts))[0] == 0
    for host in dav_media.hosts:
        assert {r.method for r in dav_media.requests(host)} == {"PROPFIND"}
    assert run(capsys, *sync_args("verify", source, dav_media.hosts))[0] == 0


def test_missing_files_go_only_where_they_are_missing(
    dav_media: Nginx, source: Path, capsys: Capsys
) -> None:
    run(capsys, *sync_args("sync", source, dav_media.hosts))
    names = sorted(tree(source))
    lost = names[::10]  # 10% of the files, on one host
    for name in lost:
        dav_media.path(1, name).unlink()
    code, out, _ = run(capsys, *sync_args("verify", source, dav_media.hosts))
    assert code == 1
    assert sum(line.startswith("missing") for line in out.splitlines()) == len(lost)
    dav_media.clear_log()
    code, _, _ = run(capsys, *sync_args("sync", source, dav_media.hosts))
    assert code == 0
    assert puts(dav_media, dav_media.hosts[1]) == sorted(f"/media/{name}" for name in lost)
    assert puts(dav_media, dav_media.hosts[0]) == puts(dav_media, dav_media.hosts[2]) == []
    assert host_tree(dav_media, 1) == tree(source)


def test_a_same_size_copy_older_than_the_source_is_replaced(
    dav_media: Nginx, source: Path, capsys: Capsys
) -> None:
    run(capsys, *sync_args("sync", source, dav_media.hosts))
    stale = dav_media.path(2, "d1/f03.bin")
    stale.write_bytes(b"x" * stale.stat().st_size)  # same size, other content ...
    age(stale, 10 * 365 * 86400)  # ... and older than the source's copy
    code, out, _ = run(capsys, *sync_args("verify", source, dav_media.hosts))
    assert code == 1
    assert f"differs   d1/f03.bin   on {dav_media.hosts[2]} (older)" in out
    assert run(capsys, *sync_args("sync", source, dav_media.hosts))[0] == 0
    assert stale.read_bytes() == (source / "d1/f03.bin").read_bytes()


def test_a_same_size_newer_copy_with_other_content_takes_checksum(
    dav_media: Nginx, source: Path, capsys: Capsys
) -> None:
    run(capsys, *sync_args("sync", source, dav_media.hosts))
    wrong = dav_media.path(0, "d2/f07.bin")
    wrong.write_bytes(b"y" * wrong.stat().st_size)  # newer than the source, same size
    assert run(capsys, *sync_args("verify", source, dav_media.hosts))[0] == 0  # size and date agree
    assert run(capsys, *sync_args("sync", source, dav_media.hosts))[0] == 0
    assert wrong.read_bytes().startswith(b"y")  # so nothing was sent
    code, out, _ = run(capsys, *sync_args("verify", source, dav_media.hosts, "--checksum"))
    assert code == 1
    assert f"differs   d2/f07.bin   on {dav_media.hosts[0]} (content)" in out
    dav_media.clear_log()
    assert run(capsys, *sync_args("sync", source, dav_media.hosts, "--checksum"))[0] == 0
    assert wrong.read_bytes() == (source / "d2/f07.bin").read_bytes()
    assert puts(dav_media, dav_media.hosts[0]) == ["/media/d2/f07.bin"]
    gets = [r for r in dav_media.requests(dav_media.hosts[1]) if r.method == "GET"]
    assert len(gets) == len(tree(source)) - 1  # every same-size copy read, but the empty one


def test_extras_stay_without_delete_and_go_with_it(
    dav_media: Nginx, source: Path, capsys: Capsys
) -> None:
    run(capsys, *sync_args("sync", source, dav_media.hosts))
    make_tree(dav_media.root(1) / "media", {"d0/stray.bin": b"s", "old/deep/x.bin": b"x"})
    assert run(capsys, *sync_args("verify", source, dav_media.hosts))[0] == 0
    code, out, _ = run(capsys, *sync_args("verify", source, dav_media.hosts, "--delete"))
    assert code == 1
    assert f"extra     d0/stray.bin   on {dav_media.hosts[1]}" in out
    assert f"extra     old/   on {dav_media.hosts[1]}" in out
    assert run(capsys, *sync_args("sync", source, dav_media.hosts))[0] == 0
    assert dav_media.path(1, "d0/stray.bin").exists()  # nothing deleted without --delete
    code, out, _ = run(capsys, *sync_args("sync", source, dav_media.hosts, "--delete"))
    assert code == 0
    assert "nothing more" in out
    assert host_tree(dav_media, 1) == tree(source)
    assert "old" not in directories(dav_media.root(1) / "media")


def test_delete_refuses_an_empty_or_missing_source(
    dav_media: Nginx, source: Path, tmp_path: Path, capsys: Capsys
) -> None:
    run(capsys, *sync_args("sync", source, dav_media.hosts))
    empty = tmp_path / "empty"
    empty.mkdir()
    for where in (empty, tmp_path / "typo"):
        code, _, err = run(capsys, *sync_args("sync", where, dav_media.hosts, "--delete"))
        assert code == 2
        assert len(err.strip().splitlines()) == 1
        assert "refusing" in err or "does not exist" in err
    assert host_tree(dav_media, 0) == tree(source)


def test_a_host_down_fails_alone_and_the_others_converge(
    dav_media: Nginx, source: Path, capsys: Capsys
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    with BlackHole() as hole:
        hosts = [dav_media.hosts[0], dead, dav_media.hosts[1], hole.host]
        code, out, err = run(capsys, *sync_args("sync", source, hosts, "--timeout", "0.5"))
    assert code == 1
    assert host_tree(dav_media, 0) == host_tree(dav_media, 1) == tree(source)
    report = {line.split()[0]: line for line in out.splitlines() if line.startswith("127.")}
    assert "given up" in report[dead]
    assert "given up" in report[hole.host]
    assert err.count(f"{dead} is unreachable") == 1  # said once, not once per file
    assert f"2 of 4 hosts still differ: {dead}, {hole.host}" in out


def test_odd_names_land_under_their_exact_names(
    dav_media: Nginx, tmp_path: Path, capsys: Capsys
) -> None:
    root = tmp_path / "odd"
    make_tree(root, {name: name.encode() for name in ODD_NAMES})
    assert run(capsys, *sync_args("sync", root, dav_media.hosts[:1]))[0] == 0
    assert host_tree(dav_media, 0) == tree(root)
    assert run(capsys, *sync_args("verify", root, dav_media.hosts[:1], "--delete"))[0] == 0


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(
    dav_media: Nginx, source: Path, capsys: Capsys
) -> None:
    run(capsys, *sync_args("sync", source, dav_media.hosts[:2]))
    dav_media.path(0, "top.txt").unlink()
    make_tree(dav_media.root(1) / "media", {"stray.bin": b"s"})
    before = [host_tree(dav_media, index) for index in range(3)]
    dav_media.clear_log()
    code, out, _ = run(capsys, *sync_args("sync", source, dav_media.hosts, "--dry-run", "--delete"))
    assert code == 1
    assert f"missing   top.txt   on {dav_media.hosts[0]}" in out
    assert f"extra     stray.bin   on {dav_media.hosts[1]}" in out
    assert "dry run: nothing was changed" in out
    assert [host_tree(dav_media, index) for index in range(3)] == before
    assert {r.method for r in dav_media.requests()} == {"PROPFIND"}


def test_one_process_and_four_leave_identical_trees(
    dav_media: Nginx, source: Path, capsys: Capsys
) -> None:
    def drift() -> None:
        dav_media.clear()
        make_tree(dav_media.root(0) / "media", {"d0/f01.bin": b"short", "zz/stray": b"z"})
        make_tree(dav_media.root(2) / "media", dict(list(standard_files().items())[::2]))

    results = []
    for processes in ("1", "4"):
        drift()
        args = sync_args("sync", source, dav_media.hosts, "--delete")
        args[args.index("--processes") + 1] = processes
        code, _, err = run(capsys, *args)
        assert code == 0, err
        results.append([host_tree(dav_media, index) for index in range(3)])
    assert results[0] == results[1] == [tree(source)] * 3


def test_a_source_host_bootstraps_an_empty_host(
    dav_media: Nginx, source: Path, capsys: Capsys
) -> None:
    full, empty = dav_media.hosts[0], dav_media.hosts[1]
    run(capsys, *sync_args("sync", source, [full]))
    dav_media.clear_log()
    code, _, err = run(
        capsys, *sync_args("sync", None, [full, empty], "--source-host", full, "--delete")
    )
    assert code == 0, err
    assert host_tree(dav_media, 1) == tree(source)
    assert not any(r.method == "PUT" for r in dav_media.requests(full))  # the source is read only
    code, _, _ = run(
        capsys, *sync_args("verify", None, [empty], "--source-host", full, "--checksum")
    )
    assert code == 0


def test_a_host_that_cannot_list_is_checked_file_by_file(
    dav_media: Nginx, source: Path, capsys: Capsys
) -> None:
    plain = dav_media.plain_host  # nginx without dav-ext, on host 0's root: PROPFIND 405
    code, out, err = run(capsys, *sync_args("sync", source, [plain, dav_media.hosts[1]]))
    assert code == 0, err
    assert host_tree(dav_media, 0) == tree(source)
    assert err.count(f"{plain} cannot list directories") == 1
    assert "cannot list: checked with HEAD" in out
    heads = [r for r in dav_media.requests(plain) if r.method == "HEAD"]
    assert len(heads) == len(tree(source))
    code, _, _ = run(capsys, *sync_args("verify", source, [plain]))
    assert code == 0


def test_names_a_host_has_that_the_rules_refuse_are_left_alone(
    dav_media: Nginx, source: Path, capsys: Capsys
) -> None:
    run(capsys, *sync_args("sync", source, dav_media.hosts[:1]))
    refused = dav_media.root(0) / "media" / "back\\slash.txt"
    refused.write_bytes(b"kept")
    code, out, err = run(capsys, *sync_args("sync", source, dav_media.hosts[:1], "--delete"))
    assert code == 0
    assert refused.read_bytes() == b"kept"
    assert "refused name on" in err
    assert "1 names refused, left alone" in out


def test_refused_names_in_the_source_are_skipped_and_said(
    dav_media: Nginx, source: Path, capsys: Capsys
) -> None:
    (source / "tab\there.txt").write_bytes(b"t")
    code, out, err = run(capsys, *sync_args("sync", source, dav_media.hosts[:1]))
    assert code == 0
    assert "refused name in the source, skipped: 'tab\\there.txt'" in err
    assert "1 source names refused" in out
    assert not any("tab" in name for name in host_tree(dav_media, 0))


def test_a_directory_where_the_source_has_a_file_is_replaced_with_delete(
    dav_media: Nginx, source: Path, capsys: Capsys
) -> None:
    run(capsys, *sync_args("sync", source, dav_media.hosts[:1]))
    dav_media.path(0, "top.txt").unlink()
    make_tree(dav_media.root(0) / "media", {"top.txt/inner": b"i"})
    code, _, err = run(capsys, *sync_args("sync", source, dav_media.hosts[:1]))
    assert code == 1
    assert "sync --delete replaces it" in err
    assert run(capsys, *sync_args("sync", source, dav_media.hosts[:1], "--delete"))[0] == 0
    assert dav_media.path(0, "top.txt").read_bytes() == b"top"


def test_prefix_limits_the_run_to_one_directory(
    dav_media: Nginx, source: Path, capsys: Capsys
) -> None:
    make_tree(dav_media.root(0) / "media", {"d0/stray": b"s", "d1/stray": b"s"})
    code, _, _ = run(
        capsys, *sync_args("sync", source, dav_media.hosts[:1], "--prefix", "d1", "--delete")
    )
    assert code == 0
    assert set(host_tree(dav_media, 0)) == {"d0/stray"} | {
        name for name in tree(source) if name.startswith("d1/")
    }


def test_json_is_one_object_on_stdout(dav_media: Nginx, source: Path, capsys: Capsys) -> None:
    dead = f"127.0.0.1:{free_port()}"
    code, out, _ = run(capsys, *sync_args("sync", source, [dav_media.hosts[0], dead], "--json"))
    summary = json.loads(out)
    assert code == summary["exit_status"] == 1
    assert summary["ok"] is False
    assert summary["files"] == len(tree(source))
    good, down = summary["hosts"][dav_media.hosts[0]], summary["hosts"][dead]
    assert (good["uploaded"], good["failed"], good["remaining"]) == (len(tree(source)), 0, 0)
    assert down["down"].startswith("refused")
    assert down["remaining"] == down["failed"] == len(tree(source))


def test_quiet_prints_nothing_when_in_step(dav_media: Nginx, source: Path, capsys: Capsys) -> None:
    run(capsys, *sync_args("sync", source, dav_media.hosts[:1]))
    code, out, err = run(capsys, *sync_args("verify", source, dav_media.hosts[:1], "--quiet"))
    assert (code, out) == (0, "")
    assert "listing" not in err


def test_a_source_file_that_changes_is_sent_again(
    dav_media: Nginx, source: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resto_fast._sync import worker

    changing = source / "d0/f05.bin"
    original = worker.Worker._put_job
    changed: list[str] = []

    def put_then_change(self: worker.Worker, path: str, *args: object, **kwargs: object) -> object:
        job = original(self, path, *args, **kwargs)  # type: ignore[arg-type]
        if path == "d0/f05.bin" and not changed:  # changed after listing, before sending
            changing.write_bytes(b"new content")
            changed.append(path)
        return job

    monkeypatch.setattr(worker.Worker, "_put_job", put_then_change)
    code, _, err = run(capsys, *sync_args("sync", source, dav_media.hosts))
    assert code == 0, err
    for index in range(3):
        assert dav_media.path(index, "d0/f05.bin").read_bytes() == b"new content"
    assert len([r for r in dav_media.requests() if r.uri == "/media/d0/f05.bin"]) == 6


def test_an_unreadable_source_directory_deletes_nothing(
    dav_media: Nginx, source: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(capsys, *sync_args("sync", source, dav_media.hosts[:1]))
    scandir = os.scandir

    def refusing(path: str) -> object:  # as for a directory this user may not read
        if os.path.basename(path) == "d1":
            raise PermissionError(13, "Permission denied", path)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    code, out, err = run(capsys, *sync_args("sync", source, dav_media.hosts[:1], "--delete"))
    assert code == 1
    assert "INCOMPLETE: 1 source directories could not be read" in out
    assert "Permission denied: nothing compared there, nothing deleted" in err
    assert host_tree(dav_media, 0) == tree(source)  # d1's copies are all still there


def test_a_missing_source_directory_is_a_usage_error(
    dav_media: Nginx, tmp_path: Path, capsys: Capsys
) -> None:
    code, _, err = run(capsys, *sync_args("verify", tmp_path / "nowhere", dav_media.hosts))
    assert code == 2
    assert err.strip().endswith("does not exist")
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_the_embedded_servers_are_synced_and_verified_too(source: Path, capsys: Capsys) -> None:
    with running_embedded(2) as servers:
        hosts = [server.host for server in servers]
        assert run(capsys, *sync_args("sync", source, hosts))[0] == 0
        for server in servers:
            held = {name.removeprefix("media/"): server.get_file(name) for name in server.files}
            assert held == tree(source)
            server.log.clear()
        assert run(capsys, *sync_args("sync", source, hosts, "--delete"))[0] == 0
        assert {method for server in servers for method, _, _ in server.log} == {"PROPFIND"}


def test_connections_are_kept_alive_across_the_run(
    dav_media: Nginx, source: Path, capsys: Capsys
) -> None:
    # More transfers in flight than the Replicator's own concurrency (8) would keep connections for.
    argv = sync_args("sync", source, dav_media.hosts, "--concurrency", "16")
    assert run(capsys, *argv)[0] == 0
    for host in dav_media.hosts:
        requests = dav_media.requests(host)
        assert len(requests) > 30
        assert len({request.connection for request in requests}) <= 16  # one per transfer at most


def test_dot_files_unlisted_by_nginx_are_checked_with_head_not_sent_again(
    dav_media: Nginx, tmp_path: Path, capsys: Capsys
) -> None:
    root = tmp_path / "master"
    make_tree(root, {".htaccess": b"deny", "d/.keep": b"", "d/seen.txt": b"x"}, mtime=1_700_000_000)
    assert run(capsys, *sync_args("sync", root, dav_media.hosts))[0] == 0
    dav_media.clear_log()
    code, out, err = run(capsys, *sync_args("verify", root, dav_media.hosts))
    assert code == 0, out + err  # in step, though the listings do not show the dot files
    for host in dav_media.hosts:
        asked = sorted((r.method, r.uri) for r in dav_media.requests(host))
        assert asked == [
            ("HEAD", "/media/.htaccess"),
            ("HEAD", "/media/d/.keep"),
            ("PROPFIND", "/media/"),
            ("PROPFIND", "/media/d/"),
        ]
    (dav_media.path(1, "d/.keep")).unlink()
    code, out, err = run(capsys, *sync_args("sync", root, dav_media.hosts))
    assert code == 0, err
    assert dav_media.path(1, "d/.keep").exists()
