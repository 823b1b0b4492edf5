"""The replication task: ``replicate(storage, name, hosts=None)``, for every queue.

``replicate`` makes the media servers of the storage ``STORAGES[storage]``
hold the file ``name`` as its source holds it when the task runs (see
:mod:`resto_fast._converge`): a master copy present is sent, absent is
deleted; for a DistributedStorage, the hosts not being repaired are the
source.  ``hosts`` limits it to some hosts (a repair).  Its arguments are
JSON (an alias, a name, host strings, a number), so every queue carries it
as is, and a duplicate, a retry or any order of tasks ends in the same
state.  It returns what it did, as JSON: the hosts in step, and those that
failed, which it schedules again on the storage's queue (see
:mod:`resto_fast._queues`) with the attempt number, until ``retries``.

Where each queue finds it:

- rq: by its path, ``resto_fast.tasks.replicate``;
- Celery: registered as ``resto_fast.replicate`` when this module is
  imported, which ``app.autodiscover_tasks()`` does for ``"resto_fast"`` in
  ``INSTALLED_APPS``;
- Django's Tasks framework: ``replicate_task``, the same work as a ``Task``
  (None where neither ``django.tasks`` nor the ``django-tasks`` backport is
  installed).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["replicate", "replicate_task"]


def _setup_django() -> None:
    """A worker process (rq, Celery) may import this before Django is set up."""
    from django.apps import apps

    if not apps.ready:
        import django

        django.setup()


def replicate(
    storage: str, name: str, hosts: list[str] | None = None, attempt: int = 1
) -> dict[str, Any]:
    """Bring ``hosts`` (default: every host) of ``STORAGES[storage]`` in step for ``name``."""
    _setup_django()
    from django.core.files.storage import storages

    from ._durable import replicated

    target = replicated(storages[storage], storage)
    if target.resto_config.queue.queue == "tasks":  # sweep up what killed workers left
        from ._lost_tasks import requeue_lost_now_and_then

        requeue_lost_now_and_then(target.resto_config.queue.task_lease)
    done: dict[str, Any] = target.replicate_now(name, hosts, attempt).as_dict()
    return done | {"attempt": attempt}


def _task_decorator() -> Any:
    """``django.tasks.task`` (Django 6), else the backport's ``django_tasks.task``, else None."""
    for module in ("django.tasks", "django_tasks"):
        try:
            return importlib.import_module(module).task
        except ImportError:
            continue
    return None


def _replicate_task(
    storage: str, name: str, hosts: list[str] | None = None, attempt: int = 1
) -> dict[str, Any]:
    """:func:`replicate`, as a task of Django's Tasks framework."""
    return replicate(storage, name, hosts, attempt)


# The framework finds a task by its function's module and name: give it this one's.
_replicate_task.__name__ = _replicate_task.__qualname__ = "replicate_task"
_decorator = _task_decorator()
replicate_task: Any = None if _decorator is None else _decorator()(_replicate_task)

try:
    from celery import shared_task
except ImportError:  # no Celery: nothing to register
    pass
else:
    shared_task(name="resto_fast.replicate")(replicate)
