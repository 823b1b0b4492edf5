"""resto_fast: replicate uploaded media to several HTTP media servers at once.

The Django-free core lives here; the Django storage backends are in
:mod:`resto_fast.storage`, and the embedded media server for tests and demos
in :mod:`resto_fast.http_server`.  Importing this package never imports Django.

``BUFFER_IMPLEMENTATION`` says which chunk window is in use: ``"cython"``
(the compiled ``_multi`` module) or ``"python"`` (its pure-Python twin, when
the extension is not built or ``RESTO_FAST_NO_EXTENSIONS=1`` is set).
"""

from .__about__ import __version__
from ._buffer import IMPLEMENTATION as BUFFER_IMPLEMENTATION
from ._config import ReplicatorConfig
from ._exceptions import (
    ClosedError,
    ConfigurationError,
    HostError,
    InvalidNameError,
    InvalidResponseError,
    NotFoundError,
    ReplicationError,
    RestoError,
    SourceError,
    TransportError,
    UnexpectedStatusCode,
)
from ._replicator import Replicator
from ._results import HostResult, OperationResult, Outcome, RemoteStat

__all__ = [
    "BUFFER_IMPLEMENTATION",
    "ClosedError",
    "ConfigurationError",
    "HostError",
    "HostResult",
    "InvalidNameError",
    "InvalidResponseError",
    "NotFoundError",
    "OperationResult",
    "Outcome",
    "RemoteStat",
    "ReplicationError",
    "Replicator",
    "ReplicatorConfig",
    "RestoError",
    "SourceError",
    "TransportError",
    "UnexpectedStatusCode",
    "__version__",
]
