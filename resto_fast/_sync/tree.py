"""The source side of a resync: its directories, one at a time, with their files' sizes and dates.

The source is walked lazily, depth first, and handed on one
:class:`Directory` at a time (``emit``), so a tree of a million names is
never held at once: what is pending is the stack of directories still to
visit.  A local source is read with ``os.scandir``; a source host with
WebDAV ``PROPFIND``, several directories in flight.  Names no media server
may have are set aside (``refused``), never compared, sent or deleted.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import stat
from collections.abc import Callable, Iterator

from .._exceptions import HostError, InvalidNameError, InvalidResponseError
from .._names import encode_name
from .._operation import Job
from .._replicator import Replicator
from .._results import OperationResult, Outcome
from .._webdav import parse_listing

__all__ = ["Directory", "SourceFacts", "join", "source_is_empty", "walk_host", "walk_local"]

#: A source file: its size, its modification time, and for a local file what identifies
#: this version of it (inode, mtime in ns, size), to notice a change during the run.
SourceFacts = tuple[int, float, "tuple[int, int, int] | None"]

Emit = Callable[["Directory"], None]
Stopped = Callable[[], bool]


@dataclasses.dataclass(slots=True)
class Directory:
    """One source directory: ``path`` below the base URL (``""`` for the top), its files by
    name, its subdirectories' names, and the names refused by the name rules.

    ``error`` is set when the directory could not be read: nothing is compared
    there, and above all nothing is deleted on the hosts.
    """

    path: str
    files: dict[str, SourceFacts] = dataclasses.field(default_factory=dict)
    subdirs: list[str] = dataclasses.field(default_factory=list)
    refused: list[str] = dataclasses.field(default_factory=list)
    error: str = ""


def join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def _allowed(path: str) -> bool:
    try:
        encode_name(path)
    except InvalidNameError:
        return False
    return True


# -- a local source ---------------------------------------------------------------------


def source_is_empty(root: str, prefix: str) -> bool:
    """Whether the local source directory has no entry at all (or is missing)."""
    try:
        with os.scandir(os.path.join(root, prefix) if prefix else root) as entries:
            return next(entries, None) is None
    except OSError:
        return True


def walk_local(root: str, prefix: str, emit: Emit, stopped: Stopped) -> None:
    """Emit every directory under ``root/prefix``, depth first, until ``stopped()``.

    Symbolic links are followed (a directory reached twice, through a loop,
    is visited once); sockets, pipes and devices are skipped as refused.
    """
    pending = [prefix]
    seen: set[tuple[int, int]] = set()
    while pending and not stopped():
        path = pending.pop()
        directory = Directory(path)
        full = os.path.join(root, path) if path else root
        try:
            info = os.stat(full)
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(full) as entries:
                for entry in entries:
                    _add_local(directory, entry)
        except OSError as exc:
            directory.error = f"cannot read {full}: {exc.strerror or exc}"
        directory.subdirs.sort(reverse=True)
        pending.extend(join(path, name) for name in directory.subdirs)  # popped in order
        directory.subdirs.reverse()
        directory.files = dict(sorted(directory.files.items()))  # what it says, in order
        emit(directory)


def _add_local(directory: Directory, entry: os.DirEntry[str]) -> None:
    name = entry.name
    if not _allowed(join(directory.path, name)):
        directory.refused.append(join(directory.path, name))
        return
    try:
        if entry.is_dir():
            directory.subdirs.append(name)
            return
        info = entry.stat()
    except OSError:  # a dangling link, or gone since the listing
        directory.refused.append(join(directory.path, name))
        return
    if not stat.S_ISREG(info.st_mode):
        directory.refused.append(join(directory.path, name))
        return
    directory.files[name] = (
        info.st_size,
        info.st_mtime,
        (info.st_ino, info.st_mtime_ns, info.st_size),
    )


# -- a source host ------------------------------------------------------------------------


class SourceHostError(Exception):
    """The source host could not be listed: the run cannot know what the truth is."""


def walk_host(replicator: Replicator, host: str, prefix: str, emit: Emit, stopped: Stopped) -> None:
    """Emit every directory under ``prefix`` on ``host``, listed with PROPFIND, several at once.

    A directory the source host lists as missing (404) is emitted empty when
    it is the top (an empty source), else with an error (it vanished: nothing
    below it may be judged).  Any other failure to list a directory is that
    directory's error; a source that cannot list at all raises
    :class:`SourceHostError`.
    """
    pending: collections.deque[str] = collections.deque([prefix])
    in_flight = 0

    def jobs() -> Iterator[Job | None]:
        nonlocal in_flight
        while not stopped():
            if pending:
                path = pending.popleft()
                body = bodies[path] = io.BytesIO()
                in_flight += 1
                yield Job(
                    "PROPFIND", path, (host,), sinks=(body.write,), directory=True, warn=False
                )
            elif in_flight:
                yield None
            else:
                return

    bodies: dict[str, io.BytesIO] = {}

    def listed(job: Job, result: OperationResult) -> None:
        nonlocal in_flight
        in_flight -= 1
        body = bodies.pop(job.name)
        directory = _host_directory(job.name, result, body.getvalue(), top=job.name == prefix)
        pending.extend(join(job.name, name) for name in directory.subdirs)
        emit(directory)

    replicator.run_jobs(jobs(), on_result=listed, concurrency=8)


def _host_directory(path: str, result: OperationResult, body: bytes, *, top: bool) -> Directory:
    directory = Directory(path)
    (answer,) = result.hosts
    if answer.outcome is Outcome.MISSING:
        if not top:
            directory.error = f"{path!r} vanished from the source host"
        return directory
    if answer.error is not None:
        if top:
            raise SourceHostError(_describe(answer.error))
        directory.error = f"cannot list {path!r} on the source host: {answer.error}"
        return directory
    try:
        listing = parse_listing(body, answer.url, host=answer.host)
    except InvalidResponseError as exc:
        if top:
            raise SourceHostError(str(exc)) from exc
        directory.error = str(exc)
        return directory
    for name in listing.directories:
        if _allowed(join(path, name)):
            directory.subdirs.append(name)
        else:
            directory.refused.append(join(path, name))
    for name, (size, modified) in listing.facts.items():
        if not _allowed(join(path, name)) or size is None:  # no size: nothing to compare
            directory.refused.append(join(path, name))
        else:
            directory.files[name] = (size, modified or 0.0, None)
    return directory


def _describe(error: HostError) -> str:
    code = getattr(error, "code", None)
    if code in (405, 501):
        return (
            f"the source host {error.host} cannot list directories (WebDAV PROPFIND answered "
            f"{code}); for nginx, load the dav-ext module (dav_ext_methods PROPFIND OPTIONS;)"
        )
    return f"cannot list the source host {error.host}: {error}"
