"""The threaded baseline: what django-resto 1.x does for each file.

The whole file is read into memory, then one thread per host sends it with
urllib (a new connection each time, no keep-alive), and the caller waits for
every thread.
"""

from __future__ import annotations

import threading
import urllib.request
from urllib.parse import quote


def _put(url: str, data: bytes, errors: list[BaseException]) -> None:
    request = urllib.request.Request(url, data=data, method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
    except BaseException as exc:
        errors.append(exc)


def threaded_put(hosts: list[str], base_path: str, name: str, data: bytes) -> None:
    """Upload ``data`` to every host, a thread each; raise the first error."""
    errors: list[BaseException] = []
    path = base_path + quote(name)
    threads = [
        threading.Thread(target=_put, args=(f"http://{host}{path}", data, errors)) for host in hosts
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
