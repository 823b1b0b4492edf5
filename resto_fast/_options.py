"""Every storage option in one table: its ``RESTO_*`` setting, where it goes, whether ``None``
is a value of its own, and its default (the configuration's own, read from its field).

The storage module resolves options through this table (``settings.resolve``);
the docs' settings table is checked against it by a test.  Django-free.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from ._config import ReplicatorConfig
from ._queues import QueueConfig

__all__ = ["OPTIONS", "Option"]

_NO_DEFAULT: Any = object()  # (dataclasses.MISSING would mean "no default" to the dataclass)
Target = Literal["replicator", "queue", "storage"]


@dataclasses.dataclass(frozen=True)
class Option:
    """One storage option.

    ``name`` is the ``STORAGES`` option, ``setting`` the ``RESTO_<setting>``
    it falls back to; the value goes to ``field`` of the ``target``
    configuration (``storage``: the storage's own, fatal exceptions and the
    write quorum).  ``nullable``: an option given as ``None`` means "none"
    (no total timeout, the system's CAs) rather than "use the setting".
    """

    name: str
    setting: str
    target: Target
    field: str = ""
    nullable: bool = False
    storage_default: Any = _NO_DEFAULT  # for target "storage" only

    @property
    def attribute(self) -> str:
        return self.field or self.name

    @property
    def default(self) -> Any:
        if self.target == "storage":
            return self.storage_default
        config = ReplicatorConfig if self.target == "replicator" else QueueConfig
        field = {f.name: f for f in dataclasses.fields(config)}[self.attribute]
        factory = field.default_factory
        return factory() if callable(factory) else field.default


def _replicator(name: str, setting: str, **more: Any) -> Option:
    return Option(name, setting, "replicator", **more)


def _queue(name: str, setting: str, **more: Any) -> Option:
    return Option(name, setting, "queue", **more)


#: In the order of the docs' table; django-resto 1.x had hosts, fatal_exceptions,
#: show_traceback and timeout.
OPTIONS: tuple[Option, ...] = (
    _replicator("hosts", "MEDIA_HOSTS"),
    Option("fatal_exceptions", "FATAL_EXCEPTIONS", "storage", storage_default=True),
    _replicator("show_traceback", "SHOW_TRACEBACK", field="log_tracebacks"),
    _replicator("timeout", "TIMEOUT"),
    _replicator("total_timeout", "TOTAL_TIMEOUT", nullable=True),
    _replicator("verify_tls", "VERIFY_TLS"),
    _replicator("ca_file", "CA_FILE", nullable=True),
    _replicator("make_directories", "MAKE_DIRECTORIES"),
    _replicator("upload_url", "UPLOAD_URL", nullable=True),
    _replicator("auth", "AUTH", nullable=True),
    _replicator("headers", "HEADERS"),
    _replicator("client_cert", "CLIENT_CERT", nullable=True),
    _replicator("client_key", "CLIENT_KEY", nullable=True),
    _replicator("host_cooldown", "HOST_COOLDOWN"),
    _queue("queue", "QUEUE"),
    _queue("task_backend", "TASK_BACKEND"),
    _queue("task_queue", "TASK_QUEUE", nullable=True),
    _queue("redis_url", "REDIS_URL"),
    _queue("rq_queue", "RQ_QUEUE"),
    _queue("celery_app", "CELERY_APP", nullable=True),
    _queue("celery_queue", "CELERY_QUEUE", nullable=True),
    _queue("repair", "REPAIR", nullable=True),
    _queue("retries", "RETRIES"),
    _queue("retry_delay", "RETRY_DELAY"),
    _queue("retry_max_delay", "RETRY_MAX_DELAY"),
    _queue("task_lease", "TASK_LEASE"),
    Option("write_quorum", "WRITE_QUORUM", "storage", nullable=True, storage_default=None),
)

BY_NAME: Mapping[str, Option] = {option.name: option for option in OPTIONS}
