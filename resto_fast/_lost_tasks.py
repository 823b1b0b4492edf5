"""Replication tasks a killed worker left behind on Django's database task backend, run again.

django-tasks-db marks a task RUNNING when a worker claims it, and nothing
changes that if the worker is killed (SIGKILL, out of memory, a machine that
vanished): the task is never run again (upstream: django-tasks-db issue 5).
Replication tasks are state-based, so running one twice is harmless: one
RUNNING for longer than ``task_lease`` seconds is taken for lost, marked
failed, and queued again, once (the row is claimed by a conditional update,
so two workers never both requeue it).  Each replication task looks for lost
ones as it starts (at most once every ``_EVERY`` seconds in a process), and
``manage.py resto_requeue_lost`` does it on demand.  Other backends keep
their own ways (Celery: acks_late; rq: retries of abandoned jobs).
"""

from __future__ import annotations

import datetime
import logging
import threading
import time

__all__ = ["requeue_lost", "requeue_lost_now_and_then"]

logger = logging.getLogger("resto_fast")

_EVERY = 30.0
_last_look = 0.0
_lock = threading.Lock()


def requeue_lost(lease: float) -> int:
    """Queue again the replication tasks RUNNING for over ``lease`` s; how many were."""
    try:
        from django_tasks_db.models import DBTaskResult
    except ImportError:  # not the database backend: nothing of ours to recover
        return 0
    from django.utils import timezone

    from .tasks import replicate_task

    if replicate_task is None:
        return 0
    now = timezone.now()
    stale = DBTaskResult.objects.filter(
        status="RUNNING",
        task_path=replicate_task.module_path,
        started_at__lt=now - datetime.timedelta(seconds=lease),
    )
    requeued = 0
    for row in stale:
        claimed = DBTaskResult.objects.filter(pk=row.pk, status="RUNNING").update(
            status="FAILED",
            finished_at=now,
            exception_class_path="resto_fast.tasks.LostTask",
            traceback=f"no word from its worker for {lease:.0f} s: taken for lost, queued again",
        )
        if not claimed:  # finished meanwhile, or another worker took it
            continue
        call = row.args_kwargs
        replicate_task.using(backend=row.backend_name, queue_name=row.queue_name).enqueue(
            *call.get("args", []), **call.get("kwargs", {})
        )
        requeued += 1
        logger.warning(
            "replication task %s of %r was lost (its worker gone for %.0f s): queued again",
            row.pk,
            call.get("args", ["", "?"])[1],
            lease,
        )
    return requeued


def requeue_lost_now_and_then(lease: float) -> None:
    """:func:`requeue_lost`, at most once every ``_EVERY`` seconds in this process."""
    global _last_look
    now = time.monotonic()
    with _lock:
        if now - _last_look < min(_EVERY, lease):
            return
        _last_look = now
    try:
        requeue_lost(lease)
    except Exception:  # the task's own work must not fail for this
        logger.exception("looking for lost replication tasks failed")
