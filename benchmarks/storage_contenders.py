"""One benchmark round of one Django storage, in a child process of its own.

The same storage classes, with two transports: resto_fast's own (the
engine's one fan-out per file) and ``UrllibTransport``, which does what
django-resto 1.x did (a thread per host, each sending the whole file with
urllib on a new connection).  ``filesystem`` is Django's local save alone:
the floor under any HybridStorage.  Prints one JSON line, as
``benchmarks.contenders`` does.

    python -m benchmarks.storage_contenders CONTENDER small HOSTS_JSON COUNT SIZE WORKDIR
    python -m benchmarks.storage_contenders CONTENDER large HOSTS_JSON PATH NAME
"""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import django
from django.conf import settings

from benchmarks.contenders import BASE_PATH, main, report
from benchmarks.measure import cpu_seconds

settings.configure(MEDIA_URL=BASE_PATH, USE_TZ=True)
django.setup()

from django.core.files import File  # noqa: E402  - after settings.configure()
from django.core.files.base import ContentFile  # noqa: E402
from django.core.files.storage import FileSystemStorage, Storage  # noqa: E402

from resto_fast.storage import DefaultTransport, DistributedStorage, HybridStorage  # noqa: E402


class UrllibTransport(DefaultTransport):
    """django-resto's create: the whole content, one urllib PUT, a new connection."""

    def create(self, host: str, name: str, content: Any) -> bool:
        url = f"http://{host}{BASE_PATH}{urllib.parse.quote(name)}"
        request = urllib.request.Request(url, data=content, method="PUT")
        with urllib.request.urlopen(request, timeout=30) as response:
            return bool(response.status == 204)


class ThreadedHybrid(HybridStorage):
    transport_class = UrllibTransport


class ThreadedDistributed(DistributedStorage):
    transport_class = UrllibTransport


def _storage(contender: str, hosts: list[str], workdir: str) -> Storage:
    if contender == "filesystem":
        return FileSystemStorage(location=workdir)
    cls = {"hybrid-engine": HybridStorage, "hybrid-threads": ThreadedHybrid}[contender]
    storage = cls(hosts, BASE_PATH, workdir, timeout=30)
    storage.save("warm-up", ContentFile(b"w"))  # a long-lived storage has its connections
    return storage


def small(contender: str, hosts: list[str], count: int, size: int, workdir: str) -> None:
    """``count`` uploads of ``size`` bytes, saved one after another, as views do."""
    storage = _storage(contender, hosts, workdir)
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    cpu, started = cpu_seconds(), time.perf_counter()
    for index in range(count):
        storage.save(f"uploads/{index:05}.bin", ContentFile(data))
    report(time.perf_counter() - started, cpu_seconds() - cpu)


def large(contender: str, hosts: list[str], path: str, name: str) -> None:
    """One large upload (a file on disk, as Django's TemporaryUploadedFile is) to every host."""
    cls = {"distributed-engine": DistributedStorage, "distributed-threads": ThreadedDistributed}
    storage = cls[contender](hosts, BASE_PATH, timeout=30)
    storage.save("warm-up", ContentFile(b"w"))
    cpu, started = cpu_seconds(), time.perf_counter()
    with open(path, "rb") as upload:
        storage.save(name, File(upload, name))
    report(time.perf_counter() - started, cpu_seconds() - cpu)


if __name__ == "__main__":
    main(small, large)
