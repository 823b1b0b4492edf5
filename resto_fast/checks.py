"""Django system checks (``manage.py check``) for the replicated storages.

They look at every storage in ``STORAGES`` whose backend is one of ours, and
at every model ``FileField`` whose storage is one:

- ``resto_fast.E001``: the storage cannot be built (a bad host, a base URL or
  ``MEDIA_URL`` with a query or fragment, an unknown option).
- ``resto_fast.W002``: no media hosts: HybridStorage and AsyncStorage then
  only keep the local copy; ``resto_fast.E002`` for DistributedStorage, which
  has nowhere to put files.
- ``resto_fast.W003``: DistributedStorage without fatal exceptions (and no
  write quorum or repair), which can lose uploads without an error.
- ``resto_fast.W004``: ``DEFAULT_FILE_STORAGE`` names a resto_fast class: Django
  5.1 and later ignore it, and nothing would replicate.
- ``resto_fast.E003``: the storage's ``queue`` cannot take tasks here: the
  Tasks framework, rq or Celery is missing, or ``celery_app`` does not import.
- ``resto_fast.W005``: credentials (``auth``, ``headers``) would go over plain
  http to a host that is not this machine, readable by anyone on the way.

Each message names the STORAGES alias or the model field as its ``obj``.
Registered when :mod:`resto_fast.storage` is imported; add ``"resto_fast"``
to ``INSTALLED_APPS`` to have them run even before any storage is used.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import django
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db.models import FileField
from django.utils.functional import LazyObject, empty
from django.utils.module_loading import import_string

from ._config import is_loopback
from ._durable import Durable
from ._queues import QueueConfig

__all__ = ["check_storages"]


@checks.register(checks.Tags.compatibility)
def check_storages(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    seen: set[tuple[type, object, object]] = set()
    for where, storage in _storages(messages):
        # A STORAGES entry and the fields that use it are one storage: say it once.
        key = (type(storage), storage.resto_config, getattr(storage, "location", None))
        if key not in seen:
            seen.add(key)
            messages.extend(_check(where, storage))
    return messages


def _storages(messages: list[checks.CheckMessage]) -> Iterator[tuple[str, Any]]:
    for alias, spec in getattr(settings, "STORAGES", {}).items():
        try:
            backend = import_string(spec["BACKEND"])
        except ImportError:
            continue  # Django reports it when the storage is used
        if not (isinstance(backend, type) and issubclass(backend, Durable)):
            continue
        where = f"STORAGES[{alias!r}]"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # W003 says it instead
                storage = backend(**spec.get("OPTIONS", {}))
        except (ValueError, TypeError, ImproperlyConfigured) as exc:
            messages.append(
                checks.Error(f"cannot be built: {exc}", id="resto_fast.E001", obj=where)
            )
            continue
        yield where, storage
    # Before 5.1 Django still reads the setting (and warns when it is read): nothing to say.
    legacy = getattr(settings, "DEFAULT_FILE_STORAGE", None) if django.VERSION >= (5, 1) else None
    if isinstance(legacy, str) and legacy.startswith("resto_fast."):
        messages.append(
            checks.Warning(
                f"DEFAULT_FILE_STORAGE = {legacy!r} is ignored by Django 5.1 and later: "
                "nothing is replicated",
                hint=f'Use STORAGES = {{"default": {{"BACKEND": "{legacy}"}}, ...}} instead.',
                id="resto_fast.W004",
                obj="DEFAULT_FILE_STORAGE",
            )
        )
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if not isinstance(field, FileField):
                continue
            where = f"{model._meta.label}.{field.name}"
            try:  # the default storage is built lazily, here: it may fail like any other
                storage = _unwrapped(field.storage)
            except (ValueError, TypeError, ImproperlyConfigured) as exc:
                error = checks.Error(f"cannot be built: {exc}", id="resto_fast.E001", obj=where)
                if all(message.msg != error.msg for message in messages):  # said once
                    messages.append(error)
                continue
            if isinstance(storage, Durable):
                yield where, storage


def _unwrapped(storage: Any) -> Any:
    """The storage itself, not the lazy ``default_storage`` standing for it."""
    if isinstance(storage, LazyObject):
        if storage._wrapped is empty:
            storage._setup()
        return storage._wrapped
    return storage


def _check(where: str, storage: Any) -> Iterator[checks.CheckMessage]:
    distributed = storage._only_copy  # DistributedStorage: the media servers hold the only copy
    if not storage.hosts:
        if distributed:
            yield checks.Error(
                "DistributedStorage has no media hosts to store files on",
                hint="Set RESTO_MEDIA_HOSTS, or the 'hosts' option.",
                id="resto_fast.E002",
                obj=where,
            )
        else:
            yield checks.Warning(
                "no media hosts are configured; files are only kept locally",
                hint="Set RESTO_MEDIA_HOSTS, or the 'hosts' option.",
                id="resto_fast.W002",
                obj=where,
            )
    problem = _queue_problem(storage.resto_config.queue)
    if problem is not None:
        yield checks.Error(
            f"cannot queue its replication: {problem}",
            hint="Install what the queue needs, or set 'queue' to 'thread'.",
            id="resto_fast.E003",
            obj=where,
        )
    config = storage.resto_config.replicator
    exposed = [host for host in config.hosts if not is_loopback(host)]
    if config.credentials and config.scheme == "http" and exposed:
        yield checks.Warning(
            f"credentials (auth, headers) would go over plain http to {', '.join(exposed)}, "
            "readable by anyone on the way",
            hint="Upload over https (an https MEDIA_URL, or RESTO_UPLOAD_URL = "
            "'https://*/media/'); on a private network you trust, silence resto_fast.W005.",
            id="resto_fast.W005",
            obj=where,
        )
    if distributed and storage.loses_silently:
        yield checks.Warning(
            "DistributedStorage without fatal exceptions can lose uploads silently",
            hint="Leave RESTO_FATAL_EXCEPTIONS (or 'fatal_exceptions') True, or set a "
            "write_quorum with a durable queue to repair the hosts a save missed.",
            id="resto_fast.W003",
            obj=where,
        )


def _queue_problem(queue: QueueConfig) -> str | None:
    """Why the storage's queue cannot take tasks here (a missing package, a wrong path)."""
    if queue.queue == "tasks":
        from .tasks import replicate_task

        if replicate_task is None:
            return (
                "the tasks queue needs Django's Tasks framework: Django 6, or the django-tasks "
                "backport on Django 5.2 (pip install 'resto_fast[tasks]')"
            )
    elif queue.queue == "rq":
        try:
            import redis  # noqa: F401
            import rq  # noqa: F401
        except ImportError as exc:
            return f"the rq queue needs rq and redis (pip install 'resto_fast[rq]'): {exc}"
    elif queue.queue == "celery":
        try:
            import_string(queue.celery_app or "")
        except ImportError as exc:
            return f"celery_app {queue.celery_app!r} cannot be imported: {exc}"
    return None
