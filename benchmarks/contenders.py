"""One benchmark round of one contender, run in a child process of its own.

A child per round keeps the figures clean: its peak RSS is its own (not the
test runner's), and one contender's threads or buffers never weigh on
another.  The child times only the replication, after imports and warm-up
requests (small files: every contender's first saves; large: the engine's
one request per host), since an application server's replicator is
long-lived; it prints one JSON line: wall seconds, CPU seconds, peak RSS.

    python -m benchmarks.contenders CONTENDER small HOSTS_JSON COUNT SIZE PREFIX
    python -m benchmarks.contenders CONTENDER large HOSTS_JSON PATH NAME
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.measure import cpu_seconds, peak_rss_mib
from resto_fast import BUFFER_IMPLEMENTATION, Replicator

BASE_PATH = "/media/"
WARM_SAVES = 20  # small files: saved untimed by every contender before the timed ones


def _replicator(contender: str, hosts: list[str]) -> Replicator:
    if contender == "engine-python":  # the whole pure-Python twin (see run_child)
        assert BUFFER_IMPLEMENTATION == "python", "run_child sets RESTO_FAST_NO_EXTENSIONS"
    replicator = Replicator(hosts, BASE_PATH, timeout=30)
    replicator.put("warm-up", b"w").raise_for_failures()
    return replicator


def small(contender: str, hosts: list[str], count: int, size: int, prefix: str) -> None:
    """``count`` files of ``size`` bytes, saved one after another, as a web app does."""
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    names = [f"{prefix}/{index:05}.bin" for index in range(count)]
    if contender == "threads-urllib":
        from benchmarks.baseline import threaded_put

        def save(name: str) -> None:
            threaded_put(hosts, BASE_PATH, name, data)
    elif contender == "pycurl-bare":
        save = bare_pycurl(hosts, data)
    else:
        replicator = _replicator(contender, hosts)

        def save(name: str) -> None:
            replicator.put(name, data).raise_for_failures()

    for index in range(WARM_SAVES):  # every contender's connections made, code paths warm
        save(f"{prefix}/warm-{index}.bin")
    cpu, started = cpu_seconds(), time.perf_counter()
    for name in names:
        save(name)
    report(time.perf_counter() - started, cpu_seconds() - cpu)


def _floor(hosts: list[str], data: bytes, multi: Any, drive: Callable[[], None]):
    """A floor's ``save``: the same PUT to every host, each on a handle with nothing else
    set, run by ``drive`` until libcurl has none running, each answer checked."""
    import pycurl

    handles = []
    for host in hosts:
        handle = pycurl.Curl()
        handle.setopt(pycurl.CUSTOMREQUEST, "PUT")
        handle.setopt(pycurl.HTTPHEADER, ["Expect:", "Accept:", "Content-Type:"])
        handle.setopt(pycurl.WRITEFUNCTION, lambda chunk: None)
        handles.append((f"http://{host}{BASE_PATH}", handle))

    def save(name: str) -> None:
        for prefix, handle in handles:
            handle.setopt(pycurl.URL, prefix + name)
            handle.setopt(pycurl.POSTFIELDS, data)
            multi.add_handle(handle)
        drive()
        for _, handle in handles:
            if handle.getinfo(pycurl.RESPONSE_CODE) != 201:
                raise RuntimeError("PUT failed")
            multi.remove_handle(handle)

    return save


def bare_pycurl(hosts: list[str], data: bytes):
    """The floor: a CurlMulti loop with nothing around it (no results, checks or timeouts).

    What libcurl and the kernel cost for the same requests; the engine's own
    bookkeeping is the difference between this and ``engine-cython``.
    """
    import pycurl

    multi = pycurl.CurlMulti()

    def drive() -> None:
        _, running = multi.perform()
        while running:
            multi.select(1.0)
            _, running = multi.perform()

    return _floor(hosts, data, multi, drive)


def socket_pycurl(hosts: list[str], data: bytes):
    """The floor of a loop on libcurl's socket interface: ``bare_pycurl``'s requests, driven
    as the engine drives them (a socket callback, ``poll``, ``socket_action``) and nothing else.

    The engine needs that interface (any number of sockets, whatever their
    numbers; a wake-up for the shared loop), where ``multi.perform`` with
    ``select`` stops at descriptor 1024; so what it costs over ``bare_pycurl``
    is the design's, not the engine's bookkeeping.
    """
    import select

    import pycurl

    multi = pycurl.CurlMulti()
    poll = select.poll()
    interest = {
        pycurl.POLL_IN: select.POLLIN,
        pycurl.POLL_OUT: select.POLLOUT,
        pycurl.POLL_INOUT: select.POLLIN | select.POLLOUT,
    }

    def on_socket(what: int, fd: int, multi: object, socketp: object) -> None:
        if what == pycurl.POLL_REMOVE:
            with contextlib.suppress(KeyError):
                poll.unregister(fd)
        else:
            poll.register(fd, interest[what])

    multi.setopt(pycurl.M_SOCKETFUNCTION, on_socket)

    def drive() -> None:
        _, running = multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        while running:
            timer = multi.timeout()
            events = poll.poll(timer if timer >= 0 else 1000)
            for fd, event in events:
                mask = (pycurl.CSELECT_IN if event & select.POLLIN else 0) | (
                    pycurl.CSELECT_OUT if event & select.POLLOUT else 0
                )
                _, running = multi.socket_action(fd, mask)
            if not events:
                _, running = multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)

    return _floor(hosts, data, multi, drive)


def large(contender: str, hosts: list[str], path: str, name: str) -> None:
    """One large file from disk (tmpfs) to every host."""
    if contender == "threads-urllib":
        from benchmarks.baseline import threaded_put

        cpu, started = cpu_seconds(), time.perf_counter()
        with open(path, "rb") as file:
            data = file.read()  # django-resto reads the whole file
        threaded_put(hosts, BASE_PATH, name, data)
    else:
        replicator = _replicator(contender, hosts)
        cpu, started = cpu_seconds(), time.perf_counter()
        replicator.put(name, path).raise_for_failures()
    report(time.perf_counter() - started, cpu_seconds() - cpu)


def report(wall: float, cpu: float) -> None:
    print(json.dumps({"wall": wall, "cpu": cpu, "rss": peak_rss_mib()}))


def main(small: Callable[..., None], large: Callable[..., None]) -> None:
    """``CONTENDER small HOSTS_JSON COUNT SIZE X`` or ``CONTENDER large HOSTS_JSON PATH NAME``."""
    contender, mode, hosts_json, *rest = sys.argv[1:]
    hosts = json.loads(hosts_json)
    if mode == "small":
        small(contender, hosts, int(rest[0]), int(rest[1]), rest[2])
    else:
        large(contender, hosts, rest[0], rest[1])


if __name__ == "__main__":
    main(small, large)
