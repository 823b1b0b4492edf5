"""Django settings for the storages: ``RESTO_*`` values, ``OPTIONS``, and what they become.

A storage's configuration is resolved once, when it is built: each option
comes from the storage's arguments (``STORAGES[...]["OPTIONS"]``), else from
the ``RESTO_<NAME>`` setting, else from the default below.  The result is a
frozen :class:`StorageConfig` holding the :class:`ReplicatorConfig` that the
Django-free core runs on, so nothing downstream reads Django settings again.

=====================  ======================  =========  ==============================
option                 setting                 default    meaning
=====================  ======================  =========  ==============================
``hosts``              ``RESTO_MEDIA_HOSTS``   ``()``     media servers, ``host[:port]``
``base_url``           ``MEDIA_URL``           ``"/"``    URL path (and scheme) on them
``timeout``            ``RESTO_TIMEOUT``       ``2``      connect / no-progress, seconds
``fatal_exceptions``   ``RESTO_FATAL_...``     ``True``   raise when a host fails
``show_traceback``     ``RESTO_SHOW_...``      ``False``  log tracebacks of failures
``total_timeout``      ``RESTO_TOTAL_...``     ``None``   hard cap per host, seconds
``verify_tls``         ``RESTO_VERIFY_TLS``    ``True``   check https hosts' certificates
``ca_file``            ``RESTO_CA_FILE``       ``None``   CA bundle for https hosts
``upload_url``         ``RESTO_UPLOAD_URL``    ``None``   scheme/port/path to upload to
``auth``               ``RESTO_AUTH``          ``None``   (user, password): HTTP Basic
``headers``            ``RESTO_HEADERS``       ``{}``     sent with every request
``client_cert``        ``RESTO_CLIENT_CERT``   ``None``   TLS client certificate (PEM)
``client_key``         ``RESTO_CLIENT_KEY``    ``None``   its key, when not in the cert
``make_directories``   ``RESTO_MAKE_DIR...``   ``"auto"`` MKCOL directories after a 409
``host_cooldown``      ``RESTO_HOST_COOLDOWN`` ``5``      skip an unreachable host, s
``queue``              ``RESTO_QUEUE``         thread     thread, tasks, rq or celery
``task_backend``...    ``RESTO_TASK_...``      ...        the queue's own options
``repair``             ``RESTO_REPAIR``        ``None``   queue repairs (None: unless thread)
``retries``            ``RESTO_RETRIES``       ``10``     retries of failed hosts
``retry_delay``        ``RESTO_RETRY_DELAY``   ``2``      first retry's delay, doubling
``retry_max_delay``    ``RESTO_RETRY_MAX...``  ``300``    longest delay between retries
``write_quorum``       ``RESTO_WRITE_QUORUM``  ``None``   Distributed: hosts a save needs
=====================  ======================  =========  ==============================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ._config import ReplicatorConfig
from ._exceptions import ConfigurationError
from ._queues import QueueConfig

__all__ = ["DEFAULTS", "REPLICATION_OPTIONS", "StorageConfig", "get_setting", "resolve"]

#: Every ``RESTO_<NAME>`` setting and its default; django-resto 1.x had the first four.
DEFAULTS: Mapping[str, Any] = {
    "MEDIA_HOSTS": (),
    "FATAL_EXCEPTIONS": True,
    "SHOW_TRACEBACK": False,
    "TIMEOUT": 2,
    "TOTAL_TIMEOUT": None,
    "VERIFY_TLS": True,
    "CA_FILE": None,
    "UPLOAD_URL": None,
    "AUTH": None,
    "HEADERS": {},
    "CLIENT_CERT": None,
    "CLIENT_KEY": None,
    "MAKE_DIRECTORIES": "auto",
    "HOST_COOLDOWN": 5.0,
    "QUEUE": "thread",
    "TASK_BACKEND": "default",
    "TASK_QUEUE": None,
    "RQ_QUEUE": "default",
    "REDIS_URL": "redis://localhost:6379/0",
    "CELERY_APP": None,
    "CELERY_QUEUE": None,
    "REPAIR": None,
    "RETRIES": 10,
    "RETRY_DELAY": 2.0,
    "RETRY_MAX_DELAY": 300.0,
    "WRITE_QUORUM": None,
    "TASK_LEASE": 900.0,
}

#: Storage option -> the setting it falls back to.
REPLICATION_OPTIONS: Mapping[str, str] = {
    "hosts": "MEDIA_HOSTS",
    "fatal_exceptions": "FATAL_EXCEPTIONS",
    "show_traceback": "SHOW_TRACEBACK",
    "timeout": "TIMEOUT",
    "total_timeout": "TOTAL_TIMEOUT",
    "verify_tls": "VERIFY_TLS",
    "ca_file": "CA_FILE",
    "upload_url": "UPLOAD_URL",
    "auth": "AUTH",
    "headers": "HEADERS",
    "client_cert": "CLIENT_CERT",
    "client_key": "CLIENT_KEY",
    "make_directories": "MAKE_DIRECTORIES",
    "host_cooldown": "HOST_COOLDOWN",
    "queue": "QUEUE",
    "task_backend": "TASK_BACKEND",
    "task_queue": "TASK_QUEUE",
    "rq_queue": "RQ_QUEUE",
    "redis_url": "REDIS_URL",
    "celery_app": "CELERY_APP",
    "celery_queue": "CELERY_QUEUE",
    "repair": "REPAIR",
    "retries": "RETRIES",
    "retry_delay": "RETRY_DELAY",
    "retry_max_delay": "RETRY_MAX_DELAY",
    "write_quorum": "WRITE_QUORUM",
    "task_lease": "TASK_LEASE",
}

#: The options that become the storage's QueueConfig (the same names).
_QUEUE_OPTIONS = (
    "queue",
    "task_backend",
    "task_queue",
    "rq_queue",
    "redis_url",
    "celery_app",
    "celery_queue",
    "repair",
    "retries",
    "retry_delay",
    "retry_max_delay",
    "task_lease",
)


#: Options for which None is a value of its own, not "use the setting".
_NULLABLE = frozenset(
    {"total_timeout", "ca_file", "task_queue", "celery_app", "celery_queue", "repair"}
    | {"write_quorum", "upload_url", "auth", "client_cert", "client_key"}
)


def get_setting(name: str) -> Any:
    """The value of ``RESTO_<name>``, or its default; ``KeyError`` for an unknown name."""
    default = DEFAULTS[name]
    return getattr(settings, f"RESTO_{name}", default)


@dataclasses.dataclass(frozen=True)
class StorageConfig:
    """What a replicated storage was built with, resolved and validated."""

    replicator: ReplicatorConfig
    fatal_exceptions: bool
    base_url: str
    queue: QueueConfig = dataclasses.field(default_factory=QueueConfig)
    write_quorum: int | None = None  # DistributedStorage: hosts a save needs (None: all)


def resolve(
    options: Mapping[str, Any], *, base_url: str | None, known: Iterable[str]
) -> StorageConfig:
    """Resolve a storage's options (OPTIONS > settings > defaults) into a :class:`StorageConfig`.

    ``known`` names the options the storage accepts beyond the replication
    ones (``location`` and the like for the local storages); any other key
    raises ``ImproperlyConfigured`` naming it.  ``base_url`` defaults to
    ``MEDIA_URL``; one with a query or fragment raises ``ValueError``.
    """
    unknown = sorted(set(options) - set(REPLICATION_OPTIONS) - set(known))
    if unknown:
        accepted = ", ".join(sorted({*REPLICATION_OPTIONS, "base_url", *known}))
        raise ImproperlyConfigured(
            f"unknown resto_fast storage option(s): {', '.join(unknown)} (accepted: {accepted})"
        )
    # None is a value only where None means something (no total_timeout, the system's CAs):
    # there it wins over the setting; elsewhere (hosts, verify_tls, ...) it means "not given".
    values = {
        option: options[option]
        if options.get(option) is not None or (option in options and option in _NULLABLE)
        else get_setting(setting)
        for option, setting in REPLICATION_OPTIONS.items()
    }
    if base_url is None:
        base_url = settings.MEDIA_URL or "/"
    hosts = values["hosts"]  # a lone string goes through, for the config to refuse it
    replicator = ReplicatorConfig(
        hosts=hosts if isinstance(hosts, str) else tuple(hosts),  # type: ignore[arg-type]
        base_url=base_url,
        timeout=values["timeout"],
        total_timeout=values["total_timeout"],
        verify_tls=values["verify_tls"],  # True or False: the config refuses "no" and the like
        ca_file=values["ca_file"],
        upload_url=values["upload_url"],
        auth=values["auth"],
        headers=values["headers"],
        client_cert=values["client_cert"],
        client_key=values["client_key"],
        log_tracebacks=values["show_traceback"],
        make_directories=values["make_directories"],
        host_cooldown=values["host_cooldown"],
        logger="resto_fast.storage",  # where django-resto's LOGGING entries, renamed, look
    )
    queue = QueueConfig(**{option: values[option] for option in _QUEUE_OPTIONS})
    quorum = values["write_quorum"]
    if quorum is not None and (
        isinstance(quorum, bool)
        or not isinstance(quorum, int)
        or not 1 <= quorum <= max(len(replicator.hosts), 1)
    ):
        raise ConfigurationError(
            f"write_quorum must be a number of hosts, 1 to {len(replicator.hosts)}, not {quorum!r}"
        )
    fatal = values["fatal_exceptions"]
    if not isinstance(fatal, bool):
        raise ConfigurationError(f"fatal_exceptions must be True or False, not {fatal!r}")
    return StorageConfig(replicator, fatal, base_url, queue, quorum)
