"""What one resync is asked to do, validated once: the frozen options every process runs on."""

from __future__ import annotations

import dataclasses
import os

from .._config import ReplicatorConfig
from .._exceptions import ConfigurationError, InvalidNameError
from .._names import encode_directory

__all__ = ["DEFAULT_CONCURRENCY", "MAX_PROCESSES", "SyncOptions", "default_processes"]

#: Operations in flight per process: a listing, an upload to every host that needs a file...
DEFAULT_CONCURRENCY = 16
#: --processes defaults to the CPU count, at most this.
MAX_PROCESSES = 8


def default_processes() -> int:
    return max(1, min(os.cpu_count() or 1, MAX_PROCESSES))


@dataclasses.dataclass(frozen=True, kw_only=True)
class SyncOptions:
    """One ``sync`` or ``verify``: where the truth is, which hosts to bring in line, and how.

    ``config`` carries the target hosts, the base URL and the connection
    options.  The source is ``source_dir`` (the master copy) or
    ``source_host`` (another media server, read over the same base URL);
    a source host listed among the targets is not a target.  ``prefix``
    limits the run to one directory below the base URL.  ``verify`` changes
    nothing and reports; ``dry_run`` does the same for a sync, saying what it
    would do.
    """

    config: ReplicatorConfig
    source_dir: str | None = None
    source_host: str | None = None
    prefix: str = ""
    delete: bool = False
    checksum: bool = False
    dry_run: bool = False
    verify: bool = False
    processes: int = 1
    concurrency: int = DEFAULT_CONCURRENCY

    def __post_init__(self) -> None:
        if (self.source_dir is None) == (self.source_host is None):
            raise ConfigurationError(
                "name the source: a directory (the master copy) or --source-host, not both"
            )
        if self.source_host is not None:
            source = self.config.normalize(self.source_host)
            object.__setattr__(self, "source_host", source)
            targets = tuple(host for host in self.config.hosts if host != source)
            if not targets:
                raise ConfigurationError(f"no media host to sync other than the source {source}")
            object.__setattr__(self, "config", dataclasses.replace(self.config, hosts=targets))
        if self.source_dir is not None:
            object.__setattr__(self, "source_dir", os.path.abspath(self.source_dir))
        prefix = self.prefix.strip("/")
        try:
            encode_directory(prefix)
        except InvalidNameError as exc:
            raise ConfigurationError(f"invalid --prefix {self.prefix!r}: {exc}") from None
        object.__setattr__(self, "prefix", prefix)
        for name in ("processes", "concurrency"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be a whole number of at least 1")

    @property
    def changes(self) -> bool:
        """Whether this run may write to the hosts (a sync that is not a dry run)."""
        return not (self.verify or self.dry_run)

    @property
    def command(self) -> str:
        return "verify" if self.verify else "sync"

    @property
    def source(self) -> str:
        """The source, as the output names it."""
        return self.source_dir if self.source_dir is not None else f"host {self.source_host}"
