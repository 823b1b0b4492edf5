"""Running a resync: stopping it cleanly, in one process or several, and carrying on after."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from resto_fast import ReplicatorConfig
from resto_fast._sync import SyncOptions, Tally, run_sync
from testbed import Nginx, Relay
from tests.sync_support import host_tree, make_tree, tree

pytestmark = pytest.mark.nginx

MiB = 1024 * 1024


def options(source: Path, hosts: list[str], processes: int = 1) -> SyncOptions:
    config = ReplicatorConfig(hosts=tuple(hosts), base_url="/media/", timeout=5)
    return SyncOptions(config=config, source_dir=str(source), processes=processes)


def no_partial_copies(media: Nginx, source: Path) -> None:
    """Every copy a host holds is whole: a stopped upload leaves nothing behind."""
    expected = tree(source)
    for index in range(3):
        for name, content in host_tree(media, index).items():
            assert content == expected[name], f"host {index} holds a partial {name}"


@pytest.fixture
def big_source(tmp_path: Path) -> Path:
    root = tmp_path / "master"
    make_tree(root, {f"v/{n}.bin": os.urandom(12 * MiB) for n in range(3)})
    make_tree(root, {f"s/{n}.txt": b"small %d" % n for n in range(20)})
    return root


@pytest.mark.parametrize("processes", [1, 2])
def test_a_stopped_run_leaves_no_partial_copy_and_the_next_one_finishes(
    dav_media: Nginx, big_source: Path, processes: int
) -> None:
    stop = threading.Event()

    def stop_once_moving(tally: Tally) -> None:
        if tally.bytes_sent > MiB:
            stop.set()

    with Relay(dav_media.hosts[2], rate=4 * MiB) as slow:  # host 2 behind a slow link
        hosts = [*dav_media.hosts[:2], slow.host]
        started = time.monotonic()
        report = run_sync(
            options(big_source, hosts, processes),
            say=print,
            note=print,
            on_tally=stop_once_moving,
            stop=stop,
        )
        assert time.monotonic() - started < 10  # it stopped: the slow host alone takes 9 s
    assert report.interrupted
    assert report.exit_code == 130
    assert "INTERRUPTED" in report.verdict()
    no_partial_copies(dav_media, big_source)
    assert not all(host_tree(dav_media, i) == tree(big_source) for i in range(3))
    again = run_sync(options(big_source, dav_media.hosts, processes), say=print, note=print)
    assert again.ok
    assert [host_tree(dav_media, i) for i in range(3)] == [tree(big_source)] * 3


def test_a_host_that_goes_down_mid_run_fails_alone(dav_media: Nginx, tmp_path: Path) -> None:
    root = tmp_path / "master"
    make_tree(root, {f"d{d}/{n}.bin": os.urandom(2048) for d in range(20) for n in range(20)})
    with Relay(dav_media.hosts[2], cut_after=300_000) as relay:  # about a third of the way
        notes: list[str] = []
        report = run_sync(
            options(root, [*dav_media.hosts[:2], relay.host]), say=print, note=notes.append
        )
    assert relay.cut_off.is_set()
    assert report.exit_code == 1
    assert host_tree(dav_media, 0) == host_tree(dav_media, 1) == tree(root)
    down = report.tally.hosts[relay.host]
    assert down.down
    assert 0 < down.uploaded < 400
    assert down.uploaded + down.failed == 400
    assert sum(f"{relay.host} is unreachable" in note for note in notes) == 1
    no_partial_copies(dav_media, root)


def test_ctrl_c_stops_the_command_and_its_workers(dav_media: Nginx, big_source: Path) -> None:
    with Relay(dav_media.hosts[2], rate=2 * MiB) as slow:
        command = [
            sys.executable,
            "-m",
            "resto_fast",
            "sync",
            str(big_source),
            "--hosts",
            ",".join([*dav_media.hosts[:2], slow.host]),
            "--base-url",
            "/media/",
            "--processes",
            "2",
        ]
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: its workers are found by it
        )
        time.sleep(2)  # uploads under way to the slow host
        os.killpg(child.pid, signal.SIGINT)  # as a terminal's Ctrl-C does
        out, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    assert "INTERRUPTED" in out
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the workers and the forkserver end with it
        try:
            os.killpg(child.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("processes of the stopped sync are still running")
    no_partial_copies(dav_media, big_source)
