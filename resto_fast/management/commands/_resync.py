"""What ``resto_sync`` and ``resto_verify`` share: everything comes from one storage of STORAGES.

The hosts, base URL and connection options are the storage's own; the
source is its master copy (``location``, ``MEDIA_ROOT`` by default) for
HybridStorage and AsyncStorage, and ``--source-host`` for a
DistributedStorage, which has none.  The exit status is the same as
``resto-fast sync``/``verify``: 0 in step, 1 differences remain, 2 a usage
or configuration error.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TextIO, cast

from django.core.files.storage import storages
from django.core.management.base import BaseCommand, CommandError

from ..._argtypes import seconds
from ..._exceptions import ConfigurationError
from ..._sync.arguments import add_sync_arguments
from ..._sync.command import execute
from ..._sync.options import SyncOptions
from ...storage import DistributedStorage, HybridStorage

_USAGE = 2


class ResyncCommand(BaseCommand):
    mode = "sync"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--storage",
            default="default",
            metavar="ALIAS",
            help="the STORAGES alias of a resto_fast storage (default: default)",
        )
        add_sync_arguments(parser, mode=self.mode, source_dir=False)
        parser.add_argument(
            "--timeout",
            type=seconds,
            metavar="S",
            help="seconds to connect, and without progress (default: the storage's)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            sync_options = self._options(options)
        except ConfigurationError as exc:
            raise CommandError(str(exc), returncode=_USAGE) from None
        code = execute(
            sync_options,
            json_output=options["json"],
            quiet=options["quiet"],
            stdout=cast(TextIO, self.stdout._out),  # the stream itself: no added line endings
            stderr=cast(TextIO, self.stderr._out),
        )
        if code:
            raise SystemExit(code)

    def _options(self, options: dict[str, Any]) -> SyncOptions:
        alias = options["storage"]
        try:
            storage = storages[alias]
        except Exception as exc:  # InvalidStorageError, or an error building it
            raise ConfigurationError(f"storage {alias!r}: {exc}") from None
        if not isinstance(storage, HybridStorage | DistributedStorage):
            raise ConfigurationError(
                f"storage {alias!r} is a {type(storage).__name__}, not a resto_fast storage"
            )
        config = storage.resto_config.replicator
        if options["timeout"] is not None:
            config = dataclasses.replace(config, timeout=options["timeout"])
        source_dir = None
        if isinstance(storage, HybridStorage):
            source_dir = str(storage.location)
        elif not options["source_host"]:
            raise ConfigurationError(
                f"storage {alias!r} is a DistributedStorage: it has no master copy, so name a "
                "media server that has every file with --source-host HOST"
            )
        return SyncOptions(
            config=config,
            source_dir=None if options["source_host"] else source_dir,
            source_host=options["source_host"],
            prefix=options["prefix"],
            delete=options["delete"],
            checksum=options["checksum"],
            dry_run=options.get("dry_run", False),
            verify=self.mode == "verify",
            processes=options["processes"],
            concurrency=options["concurrency"],
        )
