"""Where replication work goes to run later: the ``queue`` option, and retries with backoff.

What travels is always the same state-based task, with JSON arguments only:
``replicate(storage_alias, name, hosts, attempt)`` (see :mod:`resto_fast.tasks`),
never a storage, a bound method or a file.  The queues:

- ``"thread"``: AsyncStorage's own background worker runs its replication,
  as before; retries and repairs wait, then run, on a timer thread of the
  process.  Not durable: a process that is killed loses what it held, and
  ``resto_sync`` repairs it.
- ``"tasks"``: Django's Tasks framework (``django.tasks`` on Django 6, the
  ``django-tasks`` backport on 5.2), the backend ``task_backend`` and its
  default queue unless ``task_queue`` names another.  A retry runs after its
  delay where the backend can defer (``supports_defer``); where it cannot,
  the delay is waited on a timer thread of the process that scheduled it.
- ``"rq"``: the ``rq_queue`` queue on the Redis at ``redis_url``; retries
  with ``enqueue_in`` (run ``rq worker --with-scheduler``).
- ``"celery"``: the Celery app at the dotted path ``celery_app``, task
  ``resto_fast.replicate``; retries with ``countdown``.

Retries: only the hosts that failed go again, after ``retry_delay`` seconds,
doubling each time up to ``retry_max_delay``, each delay drawn between half
and one and a half of that (jitter: hosts that failed together do not all
come back at once), at most ``retries`` times; then an ERROR record names the
file and the hosts, for ``resto_sync``.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import importlib
import logging
import random
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ._exceptions import ConfigurationError

__all__ = ["QUEUES", "QueueConfig", "backoff", "enqueue"]

logger = logging.getLogger("resto_fast")

QUEUES = ("thread", "tasks", "rq", "celery")
#: The task's name where a name is needed (Celery), and its dotted path (rq, Django Tasks).
CELERY_TASK_NAME = "resto_fast.replicate"
TASK_PATH = "resto_fast.tasks.replicate"


@dataclasses.dataclass(frozen=True, kw_only=True)
class QueueConfig:
    """A storage's queue and retry options, validated once."""

    queue: str = "thread"
    task_backend: str = "default"
    task_queue: str | None = None
    rq_queue: str = "default"
    redis_url: str = "redis://localhost:6379/0"
    celery_app: str | None = None
    celery_queue: str | None = None
    repair: bool | None = None
    retries: int = 10
    retry_delay: float = 2.0
    retry_max_delay: float = 300.0
    task_lease: float = 900.0

    def __post_init__(self) -> None:
        if self.queue not in QUEUES:
            raise ConfigurationError(
                f"queue must be one of {', '.join(QUEUES)}, not {self.queue!r}"
            )
        if self.queue == "celery" and not self.celery_app:
            raise ConfigurationError(
                "the celery queue needs celery_app: the dotted path of your Celery app "
                "(RESTO_CELERY_APP = 'proj.celery.app')"
            )
        retries: object = self.retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigurationError(f"retries must be a whole number, 0 or more, not {retries!r}")
        for name in ("retry_delay", "retry_max_delay", "task_lease"):
            value: object = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds")
        for name in ("task_backend", "rq_queue", "redis_url"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigurationError(f"{name} must be a non-empty string")
        if self.repair is not None and not isinstance(self.repair, bool):
            raise ConfigurationError(f"repair must be True or False, not {self.repair!r}")

    @property
    def repairs(self) -> bool:
        """Whether a save or delete that failed on some hosts queues their repair: by default
        only where the queue is durable (not ``"thread"``)."""
        return self.repair if self.repair is not None else self.queue != "thread"


def backoff(config: QueueConfig, attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: doubling, capped, with jitter."""
    base = min(config.retry_max_delay, config.retry_delay * 2.0 ** max(attempt - 1, 0))
    jitter: float = random.uniform(0.5, 1.5)  # spreading retries, not a secret
    return base * jitter


def enqueue(
    config: QueueConfig,
    alias: str,
    name: str,
    hosts: Sequence[str] | None,
    *,
    attempt: int = 1,
    delay: float = 0.0,
) -> None:
    """Queue ``replicate(alias, name, hosts, attempt)`` to run after ``delay`` seconds.

    On the ``"thread"`` queue it runs in this process, on a timer thread.
    """
    args = (alias, name, None if hosts is None else list(hosts), attempt)
    if config.queue == "thread":
        _later(delay, functools.partial(_run_here, *args))
    elif config.queue == "tasks":
        _enqueue_task(config, args, delay)
    elif config.queue == "rq":
        _enqueue_rq(config, args, delay)
    else:
        _enqueue_celery(config, args, delay)


def _run_here(alias: str, name: str, hosts: list[str] | None, attempt: int) -> None:
    from .tasks import replicate

    replicate(alias, name, hosts, attempt)


def _later(delay: float, call: Callable[[], None]) -> None:
    """``call()`` after ``delay`` seconds, on a daemon timer thread (now when no delay);
    what it raises there is logged, as nobody waits for it."""
    if delay <= 0:
        call()
        return

    def run() -> None:
        try:
            call()
        except Exception:
            logger.exception("a queued replication could not run")

    timer = threading.Timer(delay, run)
    timer.daemon = True
    timer.name = "resto-retry"
    timer.start()


def _enqueue_task(config: QueueConfig, args: tuple[Any, ...], delay: float) -> None:
    from .tasks import replicate_task

    if replicate_task is None:
        raise ConfigurationError(
            "the tasks queue needs Django's Tasks framework: Django 6, or the django-tasks "
            "backport on Django 5.2 (pip install 'resto_fast[tasks]')"
        )
    task: Any = replicate_task.using(
        backend=config.task_backend,
        **({"queue_name": config.task_queue} if config.task_queue else {}),
    )
    if delay <= 0:
        task.enqueue(*args)
    elif task.get_backend().supports_defer:
        when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=delay)
        task.using(run_after=when).enqueue(*args)
    else:  # an immediate or dummy backend: wait here, then hand it over
        _later(delay, lambda: task.enqueue(*args))


@functools.cache
def _rq_queue(url: str, name: str) -> Any:
    from redis import Redis
    from rq import Queue

    return Queue(name, connection=Redis.from_url(url))


def _enqueue_rq(config: QueueConfig, args: tuple[Any, ...], delay: float) -> None:
    from rq import Retry

    queue = _rq_queue(config.redis_url, config.rq_queue)
    # The task reports failed hosts and queues them itself; rq's own retries are for a job
    # that never finished: its worker killed (an abandoned job), or an error of the task.
    again = Retry(max=3, interval=[1, 10, 60])
    if delay <= 0:
        queue.enqueue(TASK_PATH, *args, retry=again)
    else:
        queue.enqueue_in(datetime.timedelta(seconds=delay), TASK_PATH, *args, retry=again)


@functools.cache
def _celery_app(path: str) -> Any:
    module, _, attribute = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigurationError(f"celery_app {path!r} cannot be imported: {exc}") from exc


def _enqueue_celery(config: QueueConfig, args: tuple[Any, ...], delay: float) -> None:
    assert config.celery_app is not None
    app = _celery_app(config.celery_app)
    options: dict[str, Any] = {"countdown": delay} if delay > 0 else {}
    if config.celery_queue:
        options["queue"] = config.celery_queue
    app.send_task(CELERY_TASK_NAME, args=list(args), **options)
