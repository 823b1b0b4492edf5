"""The site of the queue tests: saves and deletes files through STORAGES["media"].

``python -m tests.queue_driver OPS.json``, where OPS is a list of ``["save", name, size,
seed]`` (random content, the same name overwritten) and ``["delete", name]``; run with
``DJANGO_SETTINGS_MODULE=tests.worker_settings``.  Prints one line per operation done.
"""

from __future__ import annotations

import json
import os
import random
import sys

import django


def content(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def main(path: str) -> None:
    django.setup()
    from django.core.files.base import ContentFile
    from django.core.files.storage import storages

    storage = storages["media"]
    with open(path) as file:
        operations = json.load(file)
    for operation in operations:
        if operation[0] == "save":
            _, name, size, seed = operation
            if not getattr(storage, "_allow_overwrite", False) and storage.exists(name):
                os.remove(storage.path(name))  # Django before 5.1: no allow_overwrite
            saved = storage.save(name, ContentFile(content(size, seed)))
            assert saved == name, f"{name} saved as {saved}"
        else:
            storage.delete(operation[1])
        print(*operation[:2], flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
