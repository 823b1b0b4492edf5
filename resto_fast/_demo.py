"""``resto-fast demo``: replicate a generated set of files to embedded media servers, then prove it.

Starts the media servers in a child process (``resto-fast serve``), so the
replicating process has its CPU to itself as on an application server;
replicates many small files and one large one with a progress display; then
reads every copy back from every host over HTTP and checks its size and
SHA-256 against the source, and prints what each host received.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pycurl

from . import __version__
from ._buffer import IMPLEMENTATION
from ._config import ReplicatorConfig
from ._progress import Display, Meter, human_bytes
from ._replicator import Replicator
from ._results import OperationResult

MiB = 1024 * 1024
_BLOCK = MiB
_LARGE_NAME = "video/large movie.mp4"
_DRIFT = 25  # files one server loses before the resync part of the demo


@dataclass(frozen=True)
class _File:
    name: str
    path: Path
    size: int
    sha256: str


def _scratch_base(needed: int) -> str | None:
    """tmpfs when it has room: the servers' copies then cost no disk writeback."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2 * needed:
        return shm
    return None


def _generate(directory: Path, count: int, largest: int, large: int) -> list[_File]:
    """Small files of varied sizes up to ``largest``, and one of ``large`` bytes."""
    directory.mkdir(parents=True)
    pool = os.urandom(max(largest, 1) + 4096)
    files = []
    for index in range(count):
        size = 1 + (index * 7919) % max(largest, 1)
        data = index.to_bytes(4, "big") + pool[index % 4096 : index % 4096 + size]
        data = data[:size]
        name = f"uploads/{index // 100:02}/photo-{index:05}.jpg"
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files.append(_File(name, path, len(data), hashlib.sha256(data).hexdigest()))
    if large:
        path = directory / _LARGE_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        block = bytearray(os.urandom(_BLOCK))
        with path.open("wb") as out:
            written = 0
            while written < large:
                block[:8] = written.to_bytes(8, "big")  # every block differs
                piece = memoryview(block)[: min(_BLOCK, large - written)]
                out.write(piece)
                digest.update(piece)
                written += len(piece)
        files.append(_File(_LARGE_NAME, path, large, digest.hexdigest()))
    return files


@contextlib.contextmanager
def _media_servers(count: int, root: Path) -> Iterator[list[str]]:
    """``resto-fast serve`` in a child process; yields its hosts."""
    command = [
        sys.executable,
        "-m",
        "resto_fast",
        "serve",
        "--servers",
        str(count),
        "--root",
        str(root),
    ]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        hosts: list[str] = []
        deadline = time.monotonic() + 30
        while not hosts and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                raise RuntimeError("the media servers did not start")
            if line.startswith("hosts: "):
                hosts = line.split()[1:]
        yield hosts
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


def _verify(replicator: Replicator, files: list[_File], host: str) -> int:
    """Copies of ``files`` on ``host`` whose size and SHA-256 match the source."""
    good = 0
    for file in files:
        stat = replicator.stat(file.name, host)
        if stat is None or stat.size != file.size:
            continue
        digest = hashlib.sha256()
        replicator.get_into(file.name, digest.update, host)
        good += digest.hexdigest() == file.sha256
    return good


def run_demo(
    *,
    servers: int = 3,
    small_files: int = 500,
    small_size: int = 16 * 1024,
    large_size: int = 256 * MiB,
    workdir: str | None = None,
    out: TextIO | None = None,
) -> int:
    """Run the demo; 0 when every copy on every host was verified."""
    out = out or sys.stdout
    total = small_files * small_size // 2 + large_size
    libcurl = pycurl.version_info()[1]
    print(f"resto_fast {__version__}: {IMPLEMENTATION} chunk buffer, libcurl {libcurl}", file=out)
    with tempfile.TemporaryDirectory(
        prefix="resto-demo-", dir=workdir or _scratch_base(total * (servers + 1))
    ) as tmp:
        large_text = f" and one of {human_bytes(large_size)}" if large_size else ""
        print(
            f"generating {small_files} small files (up to {human_bytes(small_size)})"
            f"{large_text} in {tmp}",
            file=out,
        )
        files = _generate(Path(tmp) / "sources", small_files, small_size, large_size)
        small, large = (
            [f for f in files if f.name != _LARGE_NAME],
            [f for f in files if f.name == _LARGE_NAME],
        )
        with (
            _media_servers(servers, Path(tmp) / "servers") as host_list,
            Replicator(host_list, "/media/", timeout=5) as replicator,
        ):
            print(
                f"replicating to {len(host_list)} embedded media servers: {', '.join(host_list)}",
                file=out,
            )
            out.flush()
            results: list[OperationResult] = []
            started = time.perf_counter()
            for label, batch in (("small files", small), ("large file", large)):
                if not batch:
                    continue
                meter = Meter(
                    label, total=len(batch), bytes_total=sum(f.size for f in batch) * len(host_list)
                )
                with Display([meter], interval=math.inf) as display:

                    def file_done(result: OperationResult, meter: Meter = meter) -> None:
                        meter.done += 1

                    def advance(
                        delivered: int, meter: Meter = meter, display: Display = display
                    ) -> None:
                        meter.bytes_done = delivered
                        display.refresh()

                    results += replicator.put_many(
                        [(f.name, f.path) for f in batch], on_result=file_done, on_progress=advance
                    )
                    meter.finished = time.monotonic()
            elapsed = time.perf_counter() - started
            print("verifying every copy on every host (size and SHA-256, over HTTP)...", file=out)
            verified = {host: _verify(replicator, files, host) for host in host_list}
            _print_table(out, host_list, results, verified, len(files), elapsed)
            failed = [r for r in results if not r.ok]
            complete = all(count == len(files) for count in verified.values())
            if failed or not complete:
                print(
                    f"FAILED: {len(failed)} operations failed; some copies did not verify", file=out
                )
                return 1
            if not _converge(Path(tmp), small, host_list, out):
                return 1
        print(f"OK: {len(files)} files x {len(host_list)} hosts, every copy verified", file=out)
        return 0


def _converge(tmp: Path, small: list[_File], hosts: list[str], out: TextIO) -> bool:
    """Drift, then resync: the last server loses some files and gains a stray; ``verify``
    finds exactly that, ``sync --delete`` repairs it, and ``verify`` finds nothing more."""
    from ._sync.command import execute
    from ._sync.options import SyncOptions

    lost = small[:: max(1, len(small) // _DRIFT)][:_DRIFT]
    media = tmp / "servers" / f"host{len(hosts) - 1}" / "media"
    for file in lost:
        (media / file.name).unlink()
    (media / "uploads" / "stray.jpg").write_bytes(b"not in the master copy")
    print(
        f"\ndrift: {hosts[-1]} loses {len(lost)} files and gains one the master copy lacks; "
        "resync finds and repairs it",
        file=out,
    )
    config = ReplicatorConfig(hosts=tuple(hosts), base_url="/media/", timeout=5)
    codes = []
    for command in ("verify", "sync", "verify"):
        print(f"\n$ resto-fast {command} SOURCES --hosts ... --delete", file=out)
        out.flush()
        options = SyncOptions(
            config=config,
            source_dir=str(tmp / "sources"),
            delete=True,
            verify=command == "verify",
            processes=1,
        )
        codes.append(execute(options, stdout=out))
    if codes != [1, 0, 0]:
        print(f"FAILED: resync exit statuses {codes}, expected [1, 0, 0]", file=out)
        return False
    return True


def _print_table(
    out: TextIO,
    hosts: list[str],
    results: list[OperationResult],
    verified: dict[str, int],
    expected: int,
    elapsed: float,
) -> None:
    print(f"\n{'host':<22}{'files':>8}{'MiB':>10}{'MiB/s':>10}{'verified':>12}", file=out)
    for host in hosts:
        mine = [r[host] for r in results if any(h.host == host for h in r.hosts)]
        sent = sum(h.transferred for h in mine if h.ok)
        count = sum(1 for h in mine if h.ok)
        print(
            f"{host:<22}{count:>8}{sent / MiB:>10.1f}{sent / MiB / elapsed:>10.1f}"
            f"{verified[host]:>7}/{expected}",
            file=out,
        )
    total = sum(h.transferred for r in results for h in r.hosts if h.ok)
    print(
        f"{'all hosts':<22}{'':>8}{total / MiB:>10.1f}{total / MiB / elapsed:>10.1f}"
        f"   in {elapsed:.2f} s",
        file=out,
    )
