"""Django settings for the storages: ``RESTO_*`` values, ``OPTIONS``, and what they become.

A storage's configuration is resolved once, when it is built: each option
comes from the storage's arguments (``STORAGES[...]["OPTIONS"]``), else from
the ``RESTO_<NAME>`` setting, else from the default below.  The result is a
frozen :class:`StorageConfig` holding the :class:`ReplicatorConfig` that the
Django-free core runs on, so nothing downstream reads Django settings again.

The options, their settings and defaults are one table, ``_options.OPTIONS``;
docs/settings.md describes each (a test keeps the two in step).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ._config import ReplicatorConfig
from ._exceptions import ConfigurationError
from ._options import OPTIONS
from ._queues import QueueConfig

__all__ = ["DEFAULTS", "REPLICATION_OPTIONS", "StorageConfig", "get_setting", "resolve"]

#: Every ``RESTO_<NAME>`` setting and its default (the table in ``_options``).
DEFAULTS: Mapping[str, Any] = {option.setting: option.default for option in OPTIONS}

#: Storage option -> the setting it falls back to.
REPLICATION_OPTIONS: Mapping[str, str] = {option.name: option.setting for option in OPTIONS}


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
    given: dict[str, dict[str, Any]] = {"replicator": {}, "queue": {}, "storage": {}}
    for option in OPTIONS:
        name = option.name
        if options.get(name) is not None or (name in options and option.nullable):
            value = options[name]
        else:
            value = get_setting(option.setting)
        given[option.target][option.attribute] = value
    if base_url is None:
        base_url = settings.MEDIA_URL or "/"
    kwargs = given["replicator"]
    hosts = kwargs["hosts"]  # a lone string goes through, for the config to refuse it
    kwargs["hosts"] = hosts if isinstance(hosts, str) else tuple(hosts)
    replicator = ReplicatorConfig(
        base_url=base_url,
        logger="resto_fast.storage",  # where django-resto's LOGGING entries, renamed, look
        **kwargs,
    )
    queue = QueueConfig(**given["queue"])
    values = given["storage"]
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
