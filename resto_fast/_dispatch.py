"""How a storage runs one action on its media servers, and what its failures then mean.

The rule, as django-resto's extension points promise it: an action is a
transport method ``func(host, name, *args)`` run for every host.  When it is
the :class:`DefaultTransport`'s own ``create`` or ``delete`` (not overridden
by a subclass: :func:`fan_out_method` tells), it runs as one fan-out of the
engine, the file read once and sent to every host at once; anything else (a
method a subclass overrides or adds, any callable) runs on a thread per host,
each getting the whole content, as django-resto ran everything.

Either way one :class:`FailurePolicy` judges the outcome: failures raise a
:class:`ReplicationError` naming every failed host when the storage has
fatal exceptions, or when a save to the only copy (DistributedStorage) fell
short of its write quorum; otherwise they were logged, and the engine's own
actions are queued for repair.  A source that cannot be read raises when
fatal, or when the media servers hold the only copy.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ._exceptions import ReplicationError, RestoError, SourceError
from ._replicator import log_extra
from ._results import Outcome, describe_failures
from ._transport import DefaultTransport, MasterCopy, fan_out_method, rewound

__all__ = ["FailurePolicy", "run_action"]

logger = logging.getLogger("resto_fast.storage")


@dataclasses.dataclass(frozen=True)
class FailurePolicy:
    """What a storage's failures mean.

    ``fatal``: raise when a host failed.  ``only_copy``: the media servers
    hold the only copy (a lost source or a save below ``write_quorum`` always
    raises).  ``deletes_follow``: replication runs after the request
    (AsyncStorage), so a master copy deleted meanwhile is no failure: its
    DELETE is queued next.  ``repair``: queue the failed hosts' repair.
    """

    fatal: bool
    only_copy: bool
    deletes_follow: bool
    write_quorum: int | None
    log_tracebacks: bool
    repair: Callable[[str, Mapping[str, Exception]], None]


def run_action(
    policy: FailurePolicy,
    hosts: tuple[str, ...],
    func: Callable[..., Any],
    name: str,
    args: tuple[Any, ...],
) -> dict[str, Any]:
    """Run ``func(host, name, *args)`` for each host, by the rule above; what it returned on
    each host that succeeded (for ``create``: whether the file existed there)."""
    fan_out = fan_out_method(func)
    if fan_out is not None:
        return _fan_out(policy, *fan_out, name, args, hosts)
    return _per_host(policy, func, name, args, hosts)


def is_save(action: str) -> bool:
    return action in ("PUT", "create")


def say_gone(name: str) -> None:
    logger.warning(
        "the master copy of %r is gone; not replicated", name, extra=log_extra(None, name, None)
    )


def _fan_out(
    policy: FailurePolicy,
    transport: DefaultTransport,
    method: str,
    name: str,
    args: tuple[Any, ...],
    hosts: tuple[str, ...],
) -> dict[str, Any]:
    replicator = transport.replicator
    whole = hosts == replicator.hosts  # the common case, with its URLs prepared
    if method == "PUT":
        source = rewound(args[0])
        if isinstance(source, MasterCopy):
            # Opened here, so a delete from now on cannot make the upload fail half-way or at
            # its start: the open file keeps the content.
            try:
                source = open(source.path, "rb", buffering=0)  # noqa: SIM115 - closed below
            except FileNotFoundError:
                if policy.deletes_follow:
                    say_gone(name)
                    return {}
                # Else the replicator reports it: a save that cannot be replicated.
        try:
            result = replicator.put(name, source, hosts=None if whole else hosts)
        finally:
            if source is not args[0]:
                source.close()  # type: ignore[union-attr]
        if result.source_error is not None and not result.hosts:  # nothing was sent
            return _unreadable(policy, result.source_error, method, name, logged=True)
        existed = Outcome.REPLACED
    else:
        result = replicator.delete(name, hosts=None if whole else hosts)
        existed = Outcome.DELETED
    # The replicator has logged each failure with the file and the host.
    _conclude(
        policy, result.failures, result.succeeded, method, name, result.source_error, repair=True
    )
    return {r.host: r.outcome is existed for r in result.hosts if r.error is None}


def _per_host(
    policy: FailurePolicy,
    func: Callable[..., Any],
    name: str,
    args: tuple[Any, ...],
    hosts: tuple[str, ...],
) -> dict[str, Any]:
    action = getattr(func, "__name__", repr(func))
    # Each host's thread gets the same bytes, as django-resto's create did: one file object
    # read by several threads at once would hand each a part of the file.
    try:
        args = tuple(_read_whole(arg) for arg in args)
    except OSError as exc:  # as the engine's path says it: a SourceError
        unreadable = SourceError(f"cannot read the source of {name!r}: {exc}", name=name)
        unreadable.__cause__ = exc
        return _unreadable(policy, unreadable, action, name)
    outcomes = _in_threads(hosts, lambda host: func(host, name, *args))
    returned: dict[str, Any] = {}
    failures: dict[str, Exception] = {}
    for host, (value, error) in outcomes.items():
        if error is None:
            returned[host] = value
        elif isinstance(error, Exception):
            failures[host] = error
            if not isinstance(error, RestoError):  # the engine's own errors are logged
                logger.error(
                    "%s %r on %s failed: %r",
                    action,
                    name,
                    host,
                    error,
                    exc_info=error if policy.log_tracebacks else None,
                    extra=log_extra(action, name, host),
                )
        else:
            raise error  # KeyboardInterrupt and the like are not a host's failure
    _conclude(policy, failures, tuple(returned), action, name, None)
    return returned


def _unreadable(
    policy: FailurePolicy, error: SourceError, method: str, name: str, *, logged: bool = False
) -> dict[str, Any]:
    """The source failed before any request: no host was tried.  Logged (unless the
    replicator did), then judged as a failure is."""
    if not logged:
        logger.error("%s", error, extra=log_extra(method, name, None))
    _conclude(policy, {}, (), method, name, error)
    return {}


def _conclude(
    policy: FailurePolicy,
    failures: Mapping[str, Exception],
    succeeded: tuple[str, ...],
    method: str,
    name: str,
    source_error: Exception | None,
    *,
    repair: bool = False,
) -> None:
    """Raise for failures when they are fatal (and for lost data, fatal or not); else
    queue the failed hosts' repair, when ``repair`` (the engine's own actions)."""
    if source_error is not None and (policy.fatal or policy.only_copy):
        raise source_error
    if not failures:
        return
    if _fatal(policy, method, succeeded):
        raise ReplicationError(
            describe_failures(method, name, failures, len(failures) + len(succeeded)),
            name=name,
            method=method,
            failures=failures,
            succeeded=succeeded,
        )
    if repair and source_error is None:
        policy.repair(name, failures)


def _fatal(policy: FailurePolicy, method: str, succeeded: tuple[str, ...]) -> bool:
    """Whether failures raise: with fatal exceptions; for a save to the only copy, when
    fewer hosts than ``write_quorum`` got it (none, without a quorum), fatal or not."""
    if policy.only_copy and is_save(method):
        if policy.write_quorum is not None:
            return len(succeeded) < policy.write_quorum
        if not succeeded:
            return True
    return policy.fatal


def _in_threads(
    hosts: tuple[str, ...], call: Callable[[str], Any]
) -> dict[str, tuple[Any, BaseException | None]]:
    """``call(host)`` on a thread per host; per host, what it returned or raised.

    Plain threads, not an executor, and one host after another where no thread
    can start: AsyncStorage flushes its queue at interpreter exit, when
    concurrent.futures refuses work and Python 3.12+ refuses new threads.
    """
    outcomes: dict[str, tuple[Any, BaseException | None]] = {}

    def run(host: str) -> None:
        try:
            outcomes[host] = (call(host), None)
        except BaseException as exc:
            outcomes[host] = (None, exc)

    threads = []
    for host in hosts:
        thread = threading.Thread(target=run, args=(host,), name="resto-execute")
        try:
            thread.start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown"
            run(host)
        else:
            threads.append(thread)
    for thread in threads:
        thread.join()
    return {host: outcomes[host] for host in hosts}


def _read_whole(arg: Any) -> Any:
    """The content of a file argument (a master copy, an upload) as bytes; others as they are."""
    if isinstance(arg, MasterCopy):
        with arg.open() as file:
            return file.read()
    read = getattr(arg, "read", None)
    if read is None or isinstance(arg, str | bytes | os.PathLike):
        return arg
    rewound(arg)
    data = read()
    return data.encode() if isinstance(data, str) else data
