"""The programmatic API: put, delete and read files on every media server, without Django.

Every fan-out returns an :class:`OperationResult` naming each host's outcome;
``raise_for_failures()`` turns failures into one :class:`ReplicationError`.
Each failure is also logged at ERROR, and each surprise (a PUT that replaced
a file, a DELETE of a file already gone) at WARNING, on the logger the
config names (``resto_fast``; the storages' ``resto_fast.storage``), with
the file name and the host in the message and as ``extra`` fields
(``resto_method``, ``resto_name``, ``resto_host``).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeGuard
from urllib.parse import urlsplit

from ._config import ReplicatorConfig
from ._engine import Engine
from ._exceptions import (
    ConfigurationError,
    HostError,
    InvalidResponseError,
    NotFoundError,
    ReplicationError,
    RestoError,
    SourceError,
    TransportError,
    UnexpectedStatusCode,
)
from ._names import encode_directory, encode_name, host_url
from ._operation import Job, Operation, Sink
from ._pool import EnginePool, generation
from ._results import HostResult, OperationResult, Outcome, RemoteStat, describe_failures
from ._shared import SharedLoop
from ._sources import NotASource, OpenSource, Source, open_source
from ._webdav import parse_listing

__all__ = ["Replicator"]

_WARNINGS = {
    Outcome.REPLACED: "PUT %r on %s replaced an existing file (HTTP %s)",
    Outcome.ALREADY_GONE: "DELETE %r on %s: the file was already gone (HTTP %s)",
}
#: The options Replicator(...) takes beyond hosts and base_url: ReplicatorConfig's fields.
_OPTIONS = frozenset(
    field.name
    for field in dataclasses.fields(ReplicatorConfig)
    if field.init and field.name not in ("hosts", "base_url")
)
_MAX_KNOWN_DIRECTORIES = 100_000  # make_directories: remembered directory URLs, at most
_WARNED = tuple(_WARNINGS)  # a tuple: `in` compares identity first, no Enum hashing


class Replicator:
    """Replicates files to a set of media hosts over HTTP (PUT, DELETE; HEAD, GET, PROPFIND).

    ``Replicator(["media-1:8080", "media-2:8080"], "http://media.example.com/media/")``
    puts ``photos/a.jpg`` at ``http://media-1:8080/media/photos/a.jpg`` and
    ``http://media-2:8080/media/photos/a.jpg`` at the same time.  Keyword
    arguments are those of :class:`ReplicatorConfig`.  Safe to share between
    threads, and across ``fork()``; close it (or use it as a context manager)
    to close its connections.
    """

    def __init__(self, hosts: Iterable[str] = (), base_url: str = "/", **options: Any) -> None:
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {', '.join(unknown)} (accepted: {', '.join(sorted(_OPTIONS))})"
            )
        given: object = hosts  # typed as an iterable, but programs hand over anything
        if not isinstance(given, Iterable):
            raise ConfigurationError(f"hosts must be a list of 'host[:port]', not {given!r}")
        # A lone string is refused by the config (a common slip for a one-host list).
        hosts = hosts if isinstance(hosts, str) else tuple(hosts)
        self._setup(ReplicatorConfig(hosts=hosts, base_url=base_url, **options))  # type: ignore[arg-type]

    @classmethod
    def from_config(cls, config: ReplicatorConfig) -> Self:
        replicator = cls.__new__(cls)
        replicator._setup(config)
        return replicator

    def _setup(self, config: ReplicatorConfig) -> None:
        self._config = config
        self._logger = logging.getLogger(config.logger)
        self._pool = EnginePool(lambda: Engine(config))
        # Threads replicating at the same moment hand their operations to one loop.
        self._shared = SharedLoop(lambda: Engine(config))
        # The engine of a thread replicating alone (see _run), held while it runs there.
        self._alone = threading.Lock()
        self._alone_engine: Engine | None = None
        self._alone_thread: int | None = None  # the thread running a batch on it
        self._sharing = 0  # threads handing operations to the shared loop right now
        self._sharing_lock = threading.Lock()
        self._generation = generation()
        self._directories: set[str] = set()  # directory URLs known to exist (make_directories)
        # Every URL is one of these prefixes plus the encoded name.
        self._prefixes = [
            (host, host_url(config.scheme, host, config.base_path, "")) for host in config.hosts
        ]
        self._prefix_of = dict(self._prefixes)

    @property
    def config(self) -> ReplicatorConfig:
        return self._config

    @property
    def hosts(self) -> tuple[str, ...]:
        return self._config.hosts

    def url(self, name: str, host: str) -> str:
        """The URL of ``name`` on ``host``."""
        config = self._config
        return host_url(config.scheme, config.normalize(host), config.base_path, encode_name(name))

    def __repr__(self) -> str:
        return f"<Replicator hosts={list(self.hosts)!r} base_url={self._config.base_url!r}>"

    # -- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        """Close idle connections; operations already running finish first."""
        self._pool.close()
        self._shared.close()
        self._close_alone_engine()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- writes ----------------------------------------------------------------

    def put(
        self, name: str, source: Source, *, hosts: Iterable[str] | None = None
    ) -> OperationResult:
        """Upload one file to every host (or to ``hosts``) at once; the source is read once.

        Raises :class:`InvalidNameError` for a refused name, before any request.
        Everything else is in the result (``raise_for_failures()`` raises it):
        each host's failure, and the source's, whatever the size, as
        ``source_error``: one that cannot be opened or read (no host results:
        nothing was sent), or that fails half-way (every host's upload aborted
        before it completed).
        """
        targets = self._targets(name, hosts)
        try:
            op, opened = self._prepare(name, source, targets)
        except SourceError as error:
            result = OperationResult("PUT", name, (), error)
            self._log(result)
            return result
        try:
            if self._config.make_directories is True:
                self._make_directories(targets)
            self._run(op)
            first = self._result(op)
            if _all_created(first):  # most puts: nothing to log, to send again or to forget
                return first
            again = self._again(op, first, opened)
            if again is None:
                return self._conclude(op, first)
            self._run(again)
            return self._conclude(again, _merged(first, self._result(again)))
        finally:
            if opened is not None:
                opened.close()

    def put_many(
        self,
        items: Iterable[tuple[str, Source]],
        *,
        hosts: Iterable[str] | None = None,
        on_result: Callable[[OperationResult], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> list[OperationResult]:
        """Upload many files through one loop, ``config.concurrency`` files at a time.

        Every name is checked before the first request.  Sources are opened
        only when their turn comes (a thousand paths do not hold a thousand
        descriptors); one that cannot be opened gives a result with
        ``source_error`` and no host results.  ``on_result`` is called as
        each file finishes; ``on_progress`` about ten times a second with the
        bytes delivered so far, summed over hosts.  Results come back in the
        order of ``items``.
        """
        batch = list(items)
        chosen = None if hosts is None else tuple(hosts)
        if self._config.make_directories is True:
            for name, _ in batch:
                self._make_directories(self._targets(name, chosen))  # names checked
        else:
            for name, _ in batch:
                encode_name(name)  # every name checked before the first request
        jobs = [Job("PUT", name, chosen, source) for name, source in batch]
        index = {job: position for position, job in enumerate(jobs)}  # jobs hash by identity
        results: list[OperationResult | None] = [None] * len(batch)

        def conclude(job: Job, result: OperationResult) -> None:
            results[index[job]] = result
            if on_result is not None:
                on_result(result)

        self.run_jobs(jobs, on_result=conclude, on_progress=on_progress, directories_made=True)
        done = [result for result in results if result is not None]
        assert len(done) == len(batch)
        return done

    def run_jobs(
        self,
        jobs: Iterable[Job | None],
        *,
        on_result: Callable[[Job, OperationResult], None],
        on_progress: Callable[[int], None] | None = None,
        concurrency: int | None = None,
        directories_made: bool = False,
    ) -> None:
        """Run jobs through one loop as they come, ``concurrency`` (default
        ``config.concurrency``) at a time, each fanned out to its hosts.

        ``jobs`` is read as room frees up and may be a generator that makes
        jobs from results (list a directory, then send its files); ``None``
        from it means "nothing ready yet" (see :meth:`Engine.run`).  A job's
        source is opened when its turn comes; one that cannot be opened gives
        a result with ``source_error`` and no host results.  ``on_result`` is
        called with each job and its result as it finishes; ``on_progress``
        about ten times a second with the bytes delivered so far, summed over
        hosts.  With ``make_directories=True`` a PUT's directories are made
        just before it (unless the caller made them: ``directories_made``);
        with ``"auto"``, after a host refused it with 409, and it goes again
        to those hosts through the same loop.
        """
        # By operation (they hash by identity): its job, itself, its opened source (None for
        # a body given whole), and for a PUT sent again, the first attempt's result.
        running: dict[
            Operation, tuple[Job, Operation, OpenSource | None, OperationResult | None]
        ] = {}
        again: list[Operation] = []  # PUTs to send again, their directories made
        delivered = 0
        make_directories = self._config.make_directories is True and not directories_made
        send_again = self._config.make_directories == "auto"

        def operations() -> Iterator[Operation | None]:
            for job in jobs:
                while again:
                    yield again.pop()
                if job is None:
                    yield None
                    continue
                encoded = encode_directory(job.name) if job.directory else None
                targets = self._targets(job.name, job.hosts, encoded)
                opened: OpenSource | None = None
                if job.method == "PUT":
                    if job.source is None:
                        raise ValueError(f"PUT {job.name!r}: a PUT job needs a source")
                    if make_directories:
                        self._make_directories(targets)
                    try:
                        op, opened = self._prepare(job.name, job.source, targets)
                    except SourceError as error:
                        result = OperationResult("PUT", job.name, (), error)
                        self._log(result)
                        on_result(job, result)
                        continue
                else:
                    op = Operation(
                        job.method, job.name, targets, sinks=job.sinks, directory=job.directory
                    )
                running[op] = (job, op, opened, None)
                yield op
            while running or again:  # PUTs being sent may yet have to go again
                yield again.pop() if again else None

        def finished(op: Operation) -> None:
            nonlocal delivered
            job, _, opened, first = running.pop(op)
            result = self._result(op)
            created = first is None and _all_created(result)  # nothing to send again or log
            if not created and first is None and send_again:
                retry = self._again(op, result, opened)
                if retry is not None:
                    running[retry] = (job, retry, opened, result)
                    again.append(retry)
                    return
            if opened is not None:
                opened.close()
            if first is not None:
                result = _merged(first, result)
            if not created:
                result = self._conclude(op, result, warn=job.warn)
            if on_progress is not None:
                for host in result.hosts:
                    delivered += host.transferred
            on_result(job, result)

        def tick() -> None:
            assert on_progress is not None
            on_progress(delivered + sum(self._sent(op) for _, op, _, _ in running.values()))

        alone = self._take_alone()  # the lone thread's engine, and its connections, if free
        engine = alone or self._pool.acquire()
        try:
            engine.run(
                operations(),
                concurrency=concurrency or self._config.concurrency,
                on_done=finished,
                on_tick=None if on_progress is None else tick,
            )
        finally:
            if alone is not None:
                self._leave_alone()
            else:
                self._pool.release(engine)
            for _, op, opened, _ in running.values():  # left over only when run() raised
                if op.window is not None:
                    op.window.close()
                if opened is not None:
                    opened.close()
        if on_progress is not None:
            on_progress(delivered)

    def delete(self, name: str, *, hosts: Iterable[str] | None = None) -> OperationResult:
        """Delete one file on every host (or on ``hosts``); a missing copy only warns."""
        op = Operation("DELETE", name, self._targets(name, hosts))
        self._run(op)
        return self._conclude(op)

    # -- reads -----------------------------------------------------------------

    def stat(self, name: str, host: str | None = None) -> RemoteStat | None:
        """Size and modification time of ``name`` from one host; None when it is missing.

        With ``host=None`` a host is picked at random, and the next one is
        tried when it cannot answer (a transport error or a 5xx); a 404 is an
        answer.  :class:`ReplicationError` when no host could answer.
        """
        result = self._head(name, host)
        if result.outcome is Outcome.MISSING:
            return None
        return RemoteStat(host=result.host, size=result.size, modified=result.modified)

    def exists(self, name: str, host: str | None = None) -> bool:
        """Whether ``name`` is on one host (chosen as for :meth:`stat`): a file, or a
        directory (which servers redirect to its URL with a slash: asked again there)."""
        try:
            result = self._read("HEAD", name, host, None, quiet=_to_its_directory)
        except ReplicationError as exc:
            if exc.failures and all(map(_to_its_directory, exc.failures.values())):
                return True  # the answer a directory gets (nginx, Apache: 301 to name/)
            raise
        return result.outcome is not Outcome.MISSING

    def size(self, name: str, host: str | None = None) -> int:
        """Size of ``name`` on one host; :class:`NotFoundError` when it is missing there."""
        result = self._head(name, host)
        self._raise_if_missing(name, result)
        if result.size is None:
            raise RestoError(f"{result.host} sent no Content-Length for {name!r}")
        return result.size

    def get(self, name: str, host: str | None = None) -> bytes:
        """Content of ``name`` from one host, in memory; use :meth:`get_into` for large files."""
        result, body = self._read_body("GET", name, host)
        self._raise_if_missing(name, result)
        return body

    def get_into(self, name: str, sink: Sink, host: str | None = None) -> int:
        """Stream ``name`` from one host into ``sink`` (a ``write``-like callable); return its size.

        Fails over to another host only while nothing has been written to the
        sink: a transfer that breaks half-way raises rather than mixing two
        copies in the sink.
        """
        result = self._read("GET", name, host, lambda: sink)
        self._raise_if_missing(name, result)
        return result.transferred

    def listdir(self, path: str = "", host: str | None = None) -> tuple[list[str], list[str]]:
        """The directories and the files directly inside ``path`` on one host, by name.

        ``path`` is relative to the base URL (``""``, the default, is the base
        URL itself; one trailing slash is allowed) and is checked like a file
        name.  Returns ``(directories, files)``: names only, percent-decoded,
        each list sorted, the directory itself left out.  Asked with a WebDAV
        ``PROPFIND`` (``Depth: 1``), of one host chosen and failed over as for
        :meth:`stat`.

        :class:`NotFoundError` when ``path`` is missing on that host, or is a
        file there.  The base URL itself is never missing: a server that has
        received nothing yet may not have created it, and lists it empty.

        A server that cannot list directories answers ``405`` (nginx without
        the dav-ext module) or ``501``: that raises :class:`ReplicationError`
        whose ``failures`` hold an :class:`UnexpectedStatusCode` with that
        ``.code``, as does any other failure (one host's at most, when
        ``host`` is given).  A ``207`` whose body is no readable multistatus
        raises :class:`ReplicationError` with an :class:`InvalidResponseError`.
        """
        encoded = encode_directory(path)
        try:
            result, body = self._read_body(
                "PROPFIND", path, host, encoded, quiet=_maybe_a_file if encoded else None
            )
        except ReplicationError as exc:
            refusals = [error for error in exc.failures.values() if _maybe_a_file(error)]
            if not encoded or not refusals:
                raise
            # lighttpd (403) and Apache (400) refuse to list "file/": is it one?
            error = refusals[0]
            if self._is_file(path, error.host):
                raise NotFoundError(
                    f"{path!r} is a file, not a directory, on {error.host}",
                    name=path,
                    host=error.host,
                ) from exc
            self._log_failure("PROPFIND", path, error)
            raise
        if result.outcome is Outcome.MISSING:
            if not encoded:
                return [], []
            self._raise_if_missing(path, result)
        try:
            listing = parse_listing(body, result.url, host=result.host)
        except InvalidResponseError as error:
            self._log_failure("PROPFIND", path, error)
            raise _unanswered("PROPFIND", path, {result.host: error}) from error
        if not listing.is_collection:
            raise NotFoundError(
                f"{path!r} is a file, not a directory, on {result.host}",
                name=path,
                host=result.host,
            )
        return list(listing.directories), list(listing.files)

    # -- internals -------------------------------------------------------------

    def _make_directories(self, targets: list[tuple[str, str]]) -> None:
        """MKCOL the directories above each target URL that a host is not known to have.

        Top down, one level at a time, all hosts of a level at once.  A
        directory made (201) or found (405) is remembered, so saving into a
        known directory costs no request; one that could not be made is
        logged and left for the PUT to report.
        """
        levels: list[list[tuple[str, str]]] = []
        for host, url in targets:
            for depth, directory in enumerate(_directories_above(url)):
                if directory not in self._directories:
                    while len(levels) <= depth:
                        levels.append([])
                    levels[depth].append((host, directory))
        for level in levels:
            if not level:
                continue
            op = Operation("MKCOL", level[0][1], level)
            self._run(op)
            if len(self._directories) > _MAX_KNOWN_DIRECTORIES:
                self._directories.clear()  # per-user or per-day directories: bound the memory
            for result in op.host_results():
                if result.error is None:
                    self._directories.add(result.url)
                else:
                    self._logger.warning(
                        "MKCOL %s on %s failed: %s",
                        result.url,
                        result.host,
                        result.error,
                        extra=log_extra("MKCOL", result.url, result.host),
                    )

    def _forget_directories(self, result: OperationResult) -> None:
        """A host that refused a PUT may have lost a directory (wiped, rebuilt, pruned):
        forget what was known of the directories above the file there, so the next PUT
        makes them again."""
        for host_result in result.hosts:
            if host_result.error is not None:
                self._directories.difference_update(_directories_above(host_result.url))

    def _run(self, op: Operation) -> None:
        """Run one operation: inline on the lone thread's engine while this thread is the
        only one replicating, else through the loop the other threads use too (see
        ``_shared``).

        The lone thread's path is every put's, so it costs one lock taken
        without waiting (:meth:`_take_alone` written out, without noting the
        thread: a call from inside this operation's own callbacks, a sink that
        replicates, goes to the shared loop); only threads that find company
        count themselves.
        """
        if self._generation != generation():
            self._after_fork()
        alone = self._alone
        if not self._sharing and alone.acquire(False):  # positional: no keyword parsing
            try:
                engine = self._alone_engine
                if engine is None:
                    engine = self._alone_engine = self._pool.acquire()  # ClosedError once closed
                engine.run_one(op)
            finally:
                alone.release()
                if self._pool.closed:
                    self._close_alone_engine()
            return
        if self._alone_thread == threading.get_ident():
            # This thread's own batch holds the lone engine (run_jobs making a PUT's
            # directories): an engine of the pool's, on this thread.
            self._run_on_pool(op)
            return
        with self._sharing_lock:
            self._sharing += 1
        try:
            if self._shared.in_loop() or not self._shared.run(op):
                # On the loop's own thread (a callback that replicates), or where no loop
                # thread can start.
                self._run_on_pool(op)
        finally:
            with self._sharing_lock:
                self._sharing -= 1

    def _run_on_pool(self, op: Operation) -> None:
        engine = self._pool.acquire()
        try:
            engine.run_one(op)
        finally:
            self._pool.release(engine)

    def _take_alone(self) -> Engine | None:
        """Take the lone thread's engine for a batch on this thread (give it back with
        :meth:`_leave_alone`); None when another thread replicates."""
        if self._generation != generation():
            self._after_fork()
        if self._sharing or not self._alone.acquire(blocking=False):
            return None
        try:
            if self._alone_engine is None:
                self._alone_engine = self._pool.acquire()
        except BaseException:
            self._alone.release()
            raise
        self._alone_thread = threading.get_ident()
        return self._alone_engine

    def _leave_alone(self) -> None:
        self._alone_thread = None
        self._alone.release()
        if self._pool.closed:
            self._close_alone_engine()

    def _close_alone_engine(self) -> None:
        """Close the lone thread's engine unless a thread runs on it.  That thread calls this
        again once it has let go (after closing, whichever of the two comes second
        finds the lock free), so the engine is closed either way."""
        if not self._alone.acquire(blocking=False):
            return
        try:
            engine, self._alone_engine = self._alone_engine, None
            if engine is not None:
                self._pool.release(engine)  # the pool is closed: it closes the engine
        finally:
            self._alone.release()

    def _after_fork(self) -> None:
        """In a forked child: no thread of the parent's runs here, and its engine is the
        parent's (the pool keeps it, never closed, see ``_pool``)."""
        engine, self._alone_engine = self._alone_engine, None
        if engine is not None:
            self._pool.release(engine)  # borrowed before the fork: kept aside, not reused
        self._alone, self._sharing_lock, self._sharing = threading.Lock(), threading.Lock(), 0
        self._alone_thread = None
        self._generation = generation()

    def _targets(
        self, name: str, hosts: Iterable[str] | None, encoded: str | None = None
    ) -> list[tuple[str, str]]:
        """(host, URL) pairs for ``name``; ``encoded`` when the caller already encoded it."""
        if encoded is None:
            encoded = encode_name(name)
        if hosts is None:
            targets = [(host, prefix + encoded) for host, prefix in self._prefixes]
        else:
            prefixes = self._prefix_of
            targets = []
            for host in hosts:
                prefix = prefixes.get(host)  # a configured host, written as configured
                if prefix is None:
                    host = self._config.normalize(host)
                    prefix = prefixes.get(host) or host_url(
                        self._config.scheme, host, self._config.base_path, ""
                    )
                targets.append((host, prefix + encoded))
        if not targets:  # an operation that stores nothing must not look like a success
            raise ConfigurationError(f"no media host to send {name!r} to: the host list is empty")
        return targets

    def _open(self, name: str, source: Source) -> OpenSource:
        try:
            return open_source(source)
        except Exception as exc:  # whatever a file object's methods raise, or not a source
            raise _source_error(name, exc) from exc

    def _prepare(
        self, name: str, source: Source, targets: list[tuple[str, str]]
    ) -> tuple[Operation, OpenSource | None]:
        """Open a source and make its PUT; :class:`SourceError` when it cannot be read.

        ``bytes`` already in memory go to libcurl whole, with nothing opened
        (None); a file that fits in one chunk is read here and goes whole too;
        a larger one streams through a window.
        """
        if type(source) is bytes:
            return Operation("PUT", name, targets, body=source), None
        opened = self._open(name, source)
        config = self._config
        try:
            body = opened.body(config.chunk_size)
        except Exception as exc:  # a read() that raised anything, or returned text or too much
            opened.close()
            raise _source_error(name, exc) from exc
        if body is not None:
            return Operation("PUT", name, targets, body=body), opened
        window = opened.window(
            readers=len(targets), chunk_size=config.chunk_size, max_chunks=config.window_chunks
        )
        return Operation("PUT", name, targets, window=window), opened

    @staticmethod
    def _sent(op: Operation) -> int:
        window = op.window
        if window is None:
            return 0
        return sum(
            window.position(index) for index in range(len(op.targets)) if op.transfers[index]
        )

    def _result(self, op: Operation) -> OperationResult:
        """What a finished operation came to, its window closed; nothing logged yet."""
        source_error = None
        if op.window is not None:
            if op.window.error is not None:
                source_error = SourceError(
                    f"reading the source of {op.name!r} failed: {op.window.error}", name=op.name
                )
                source_error.__cause__ = op.window.error
            op.window.close()
        return OperationResult(op.method, op.name, op.host_results(), source_error)

    def _again(
        self, op: Operation, result: OperationResult, opened: OpenSource | None
    ) -> Operation | None:
        """With ``make_directories="auto"``: the PUT to send again to the hosts that
        answered 409 (a missing directory, on lighttpd, Apache, wsgidav), once their
        directories are made; None when there is none to send.  ``opened`` is the
        source of a streamed PUT (a body given whole is sent again as it is)."""
        if op.method != "PUT" or self._config.make_directories != "auto":
            return None
        if result.source_error is not None:
            return None
        targets = [  # the status first: it rules out every host that was not refused, cheaply
            (host.host, host.url)
            for host in result.hosts
            if host.status == 409 and isinstance(host.error, UnexpectedStatusCode)
        ]
        if not targets or (op.body is None and (opened is None or not opened.rewind())):
            return None
        self._directories.difference_update(
            directory for _, url in targets for directory in _directories_above(url)
        )
        self._make_directories(targets)
        if op.body is not None:
            return Operation("PUT", op.name, targets, body=op.body)
        assert opened is not None  # a streamed PUT's source, rewound above
        config = self._config
        window = opened.window(
            readers=len(targets), chunk_size=config.chunk_size, max_chunks=config.window_chunks
        )
        return Operation("PUT", op.name, targets, window=window)

    def _conclude(
        self,
        op: Operation,
        result: OperationResult | None = None,
        *,
        warn: bool = True,
        quiet: Callable[[Exception], bool] | None = None,
    ) -> OperationResult:
        """Log what ``op`` came to (``result``, when already made) and return it."""
        if result is None:
            result = self._result(op)
        self._log(result, warn=warn, quiet=quiet)
        if op.method == "PUT" and self._config.make_directories is True and not result.ok:
            self._forget_directories(result)
        return result

    def _read(
        self,
        method: str,
        name: str,
        host: str | None,
        new_sink: Callable[[], Sink] | None,
        encoded: str | None = None,
        *,
        quiet: Callable[[Exception], bool] | None = None,
    ) -> HostResult:
        """One HEAD, GET or PROPFIND, failing over between hosts as :meth:`stat` describes.

        ``encoded`` is the URL path when it is not ``name``'s (a directory's);
        ``quiet`` tells failures that are answers to the caller, not to be logged.
        """
        if encoded is None:
            encoded = encode_name(name)
        if host is None:
            candidates = list(self._config.hosts)
            random.shuffle(candidates)
        else:
            candidates = [host]
        if not candidates:
            raise ConfigurationError(f"{method} {name!r}: no media host is configured")
        failures: dict[str, HostError] = {}
        for candidate in candidates:
            sinks: Sequence[Sink] | None = None if new_sink is None else [new_sink()]
            op = Operation(method, name, self._targets(name, [candidate], encoded), sinks=sinks)
            self._run(op)
            (result,) = self._conclude(op, quiet=quiet).hosts
            if result.error is None:
                return result
            failures[result.host] = result.error
            if not _worth_another_host(result.error) or (method == "GET" and result.transferred):
                break
        raise _unanswered(method, name, failures)

    def _read_body(
        self,
        method: str,
        name: str,
        host: str | None,
        encoded: str | None = None,
        *,
        quiet: Callable[[Exception], bool] | None = None,
    ) -> tuple[HostResult, bytes]:
        """:meth:`_read`, keeping the body of the answer that counted, in memory."""
        buffers: list[io.BytesIO] = []

        def new_buffer() -> Sink:
            buffers.append(io.BytesIO())
            return buffers[-1].write

        result = self._read(method, name, host, new_buffer, encoded, quiet=quiet)
        return result, buffers[-1].getvalue()

    def _head(self, name: str, host: str | None) -> HostResult:
        """A HEAD of ``name``, with its size: a server that sends none with HEAD (Apache,
        for an empty file) is asked with a GET of that host, whose bytes are counted."""
        result = self._read("HEAD", name, host, None)
        if result.outcome is Outcome.MISSING or result.size is not None:
            return result
        counted = 0

        def count(data: bytes) -> None:
            nonlocal counted
            counted += len(data)

        got = self._read("GET", name, result.host, lambda: count)
        if got.outcome is Outcome.MISSING:
            return got
        return dataclasses.replace(result, size=counted)

    def _is_file(self, name: str, host: str) -> bool:
        """Whether ``name`` answers a HEAD as a file on ``host`` (no failure is logged)."""
        try:
            result = self._read("HEAD", name, host, None, quiet=lambda error: True)
        except ReplicationError:
            return False
        return result.outcome is not Outcome.MISSING

    @staticmethod
    def _raise_if_missing(name: str, result: HostResult) -> None:
        if result.outcome is Outcome.MISSING:
            raise NotFoundError(
                f"{name!r} is not on {result.host} (HTTP {result.status})",
                name=name,
                host=result.host,
            )

    def _log(
        self,
        result: OperationResult,
        *,
        warn: bool = True,
        quiet: Callable[[Exception], bool] | None = None,
    ) -> None:
        method, name = result.method, result.name
        if result.source_error is not None:
            self._logger.error("%s", result.source_error, extra=log_extra(method, name, None))
        for host_result in result.hosts:
            host = host_result.host
            if host_result.error is not None:
                # A source error: one line above says why all aborted.
                if result.source_error is None and not (quiet and quiet(host_result.error)):
                    self._log_failure(method, name, host_result.error)
            elif warn and host_result.outcome in _WARNED:  # identity: no Enum hashing
                self._logger.warning(
                    _WARNINGS[host_result.outcome],
                    name,
                    host,
                    host_result.status,
                    extra=log_extra(method, name, host),
                )

    def _log_failure(self, method: str, name: str, error: HostError) -> None:
        self._logger.error(
            "%s %r on %s failed: %s",
            method,
            name,
            error.host,
            error,
            exc_info=error if self._config.log_tracebacks else None,
            extra=log_extra(method, name, error.host),
        )


def _all_created(result: OperationResult) -> bool:
    """Whether every host answered "created" and the source, if any, was read whole: a
    result there is nothing to log, send again or forget for (a loop, not all(): every
    put asks)."""
    if result.source_error is not None:
        return False
    for host in result.hosts:  # noqa: SIM110
        if host.outcome is not Outcome.CREATED:
            return False
    return True


def _merged(first: OperationResult, again: OperationResult) -> OperationResult:
    """A PUT's result after some hosts were sent it again: their second answers count."""
    second = {host.host: host for host in again.hosts}
    return OperationResult(
        first.method,
        first.name,
        tuple(second.get(host.host, host) for host in first.hosts),
        again.source_error or first.source_error,
    )


def _source_error(name: str, exc: Exception) -> SourceError:
    what = "is no source" if isinstance(exc, NotASource) else "cannot be read"
    return SourceError(f"the source of {name!r} {what}: {exc}", name=name)


def _unanswered(method: str, name: str, failures: dict[str, HostError]) -> ReplicationError:
    """The error of a read that no host answered usefully, naming each host tried."""
    return ReplicationError(
        describe_failures(method, name, failures, len(failures)),
        name=name,
        method=method,
        failures=failures,
        succeeded=(),
    )


def _directories_above(url: str) -> list[str]:
    """``http://h/media/a/b.txt`` -> ``http://h/media/``, ``http://h/media/a/``: top down."""
    path_start = url.index("/", url.index("//") + 2)  # the path's first slash
    return [url[: end + 1] for end in range(path_start + 1, len(url)) if url[end] == "/"]


def _to_its_directory(error: Exception) -> bool:
    """A redirect of a name to itself with a slash: what servers answer for a directory."""
    if not isinstance(error, UnexpectedStatusCode) or error.location is None:
        return False
    return urlsplit(error.location).path == urlsplit(error.url).path + "/"


def _maybe_a_file(error: Exception) -> TypeGuard[UnexpectedStatusCode]:
    """A refusal to list ``name/`` that may mean ``name`` is a file: lighttpd answers 403,
    Apache 400 (the "not a directory" answers 404, 405 and 501 say otherwise)."""
    return isinstance(error, UnexpectedStatusCode) and error.code in (400, 403, 409)


def _worth_another_host(error: HostError) -> bool:
    """Transport errors and 5xx mean this host cannot answer now; another may."""
    if isinstance(error, TransportError):
        return True
    return isinstance(error, UnexpectedStatusCode) and error.code >= 500


def log_extra(method: str | None, name: str, host: str | None) -> dict[str, str | None]:
    """The ``extra`` of every log line about a file: the method, the name and the host."""
    return {"resto_method": method, "resto_name": name, "resto_host": host}
