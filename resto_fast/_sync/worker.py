"""One process's share of a resync: list, compare and repair directory after directory, in one loop.

Directories come from a feed (the source walk, in this process or the
parent).  For each, one ``PROPFIND`` asks every target host at once; when
the answers are in, the directory is compared (see :mod:`.compare`) and its
repairs are made: each file that some hosts lack is read once and streamed
to all of them, extras are deleted with ``--delete``.  Listings of the next
directories go out while the repairs of earlier ones run, all through one
``CurlMulti`` (:meth:`Replicator.run_jobs`), and only a few directories are
held at a time, however large the tree.

A host that cannot be reached (refused, timed out, stalled, TLS, DNS) is
given up for the rest of the run, said once; what it still had to do counts
as failed there.  A host that cannot list (405/501 to ``PROPFIND``) is
checked with a ``HEAD`` per file instead, said once; its extras go unseen.
"""

from __future__ import annotations

import collections
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from .._exceptions import InvalidResponseError, TransportError, UnexpectedStatusCode
from .._operation import Job
from .._replicator import Replicator
from .._results import OperationResult, Outcome
from .._sources import file_stamp
from .._webdav import Listing, parse_listing
from .compare import Comparison, Difference, compare_directory, compare_file
from .options import SyncOptions
from .report import HostTally, Tally
from .tree import Directory, SourceFacts, join

__all__ = ["END", "Feed", "Worker"]

#: What a feed returns when no directory will ever come again.
END = "end"
#: ``feed(block)``: the next directory; None when none is ready (only when not ``block``).
Feed = Callable[[bool], "Directory | str | None"]
Handler = Callable[[OperationResult], None]

# A host that fails for one of these reasons cannot be reached: it is given up for the run.
_UNREACHABLE = frozenset({"refused", "timeout", "dns", "tls", "stalled", "skipped"})
# Directories listed, or being repaired, at once in one process (bounds what is held).
_LOOKAHEAD = 4
# A source file that changes while it is sent is sent again, this many times at most.
_ATTEMPTS = 3
_EMPTY = Listing((), ())


class Worker:
    """Lists, compares and repairs the directories a feed hands it."""

    def __init__(
        self,
        options: SyncOptions,
        replicator: Replicator,
        feed: Feed,
        *,
        say: Callable[[str], None],
        note: Callable[[str], None],
        tick: Callable[[Tally], None] | None = None,
    ) -> None:
        self.options = options
        self.replicator = replicator
        self.feed = feed
        self.say = say  # a line of the report (stdout): what differs, in verify and dry runs
        self.note = note  # a line about the run (stderr): a host given up, a name refused
        self.on_tick = tick
        self.hosts = options.config.hosts
        self.tally = Tally(hosts={host: HostTally() for host in self.hosts})
        self.down: dict[str, str] = {}
        self.cannot_list: set[str] = set()
        self._listings: collections.deque[tuple[Job, Handler]] = collections.deque()
        self._repairs: collections.deque[Iterator[tuple[Job, Handler]]] = collections.deque()
        self._handlers: dict[int, Handler] = {}  # by id(job), while it runs
        self._in_flight = 0
        self._directories = 0  # being listed or compared
        self._fed = False
        self._other_bytes = 0  # bytes of listings and checksum reads: not uploads

    # -- the loop ----------------------------------------------------------------------

    def run(self) -> Tally:
        """Work until the feed ends and everything is done; returns what was counted."""
        self.replicator.run_jobs(
            self._jobs(),
            on_result=self._finished,
            on_progress=self._progress,
            concurrency=self.options.concurrency,
        )
        return self.tally

    def _jobs(self) -> Iterator[Job | None]:
        while True:
            self._look_at_feed(wait=False)
            step = self._next_step()
            if step is not None:
                admitted = self._admit(*step)
                if admitted is not None:
                    yield admitted
            elif self._in_flight:
                yield None  # the loop asks again when something finishes
            elif self._fed:
                return
            else:
                self._look_at_feed(wait=True)  # nothing to do here until a directory comes

    def _look_at_feed(self, *, wait: bool) -> None:
        """Start the next directories while there is room: listings go out while earlier
        directories' repairs run, but only a few directories are held at a time."""
        while not self._fed and self._directories < _LOOKAHEAD and len(self._repairs) < 2:
            directory = self.feed(wait)
            if directory == END:
                self._fed = True
            elif isinstance(directory, Directory):
                self._start(directory)
                wait = False
            else:
                return

    def _next_step(self) -> tuple[Job, Handler] | None:
        """Listings (and what must follow a finished job) first, then repairs in order."""
        if self._listings:
            return self._listings.popleft()
        while self._repairs:
            step = next(self._repairs[0], None)
            if step is not None:
                return step
            self._repairs.popleft()
        return None

    def _admit(self, job: Job, handler: Handler) -> Job | None:
        """Drop the hosts given up since the job was made; None when none is left."""
        hosts = tuple(job.hosts or ())
        alive = tuple(host for host in hosts if host not in self.down)
        if alive != hosts and job.sinks is not None:
            sinks = dict(zip(hosts, job.sinks, strict=True))
            job.sinks = [sinks[host] for host in alive]
        job.hosts = alive
        if not alive:
            handler(OperationResult(job.method, job.name, ()))
            return None
        self._handlers[id(job)] = handler
        self._in_flight += 1
        return job

    def _finished(self, job: Job, result: OperationResult) -> None:
        self._in_flight -= 1
        handler = self._handlers.pop(id(job))
        if job.method != "PUT":
            self._other_bytes += sum(host.transferred for host in result.hosts)
        for host_result in result.hosts:
            error = host_result.error
            if isinstance(error, TransportError) and error.reason in _UNREACHABLE:
                self._give_up(host_result.host, str(error))
        handler(result)

    def _progress(self, delivered: int) -> None:
        self.tally.bytes_sent = max(delivered - self._other_bytes, 0)
        if self.on_tick is not None:
            self.on_tick(self.tally)

    def _give_up(self, host: str, why: str) -> None:
        if host not in self.down:
            self.down[host] = why
            self.tally.hosts[host].down = why
            self.note(f"{host} is unreachable ({why}): given up for the rest of this run")

    # -- one directory -------------------------------------------------------------------

    def _start(self, directory: Directory) -> None:
        tally = self.tally
        tally.directories += 1
        tally.files += len(directory.files)
        tally.bytes += sum(facts[0] for facts in directory.files.values())
        for name in directory.refused:
            tally.refused += 1
            self.note(f"refused name in the source, skipped: {name!r}")
        if directory.error:
            tally.unreadable += 1
            self.note(f"{directory.error}: nothing compared there, nothing deleted")
            return
        listable = tuple(host for host in self.hosts if host not in self.cannot_list)
        self._directories += 1
        if not listable:
            self._compare(directory, {})
            return
        bodies = {host: io.BytesIO() for host in listable}
        job = Job(
            "PROPFIND",
            directory.path,
            listable,
            sinks=[body.write for body in bodies.values()],
            directory=True,
            warn=False,
        )
        self._listings.append(
            (job, lambda result: self._listed(directory, listable, bodies, result))
        )

    def _listed(
        self,
        directory: Directory,
        asked: tuple[str, ...],
        bodies: dict[str, io.BytesIO],
        result: OperationResult,
    ) -> None:
        listings: dict[str, Listing | None] = {}  # None: could not be listed (counted failed)
        answered = {host_result.host: host_result for host_result in result.hosts}
        for host in asked:
            answer = answered.get(host)
            if answer is None:  # given up before it was asked
                listings[host] = None
            elif answer.error is None:
                listings[host] = self._parse(answer.url, host, answer.outcome, bodies[host])
            elif isinstance(answer.error, UnexpectedStatusCode) and answer.error.code in (405, 501):
                self._cannot_list(host, answer.error.code)
            else:
                if host not in self.down:
                    self.note(f"cannot list {directory.path or '/'!r} on {host}: {answer.error}")
                listings[host] = None
        self._compare(directory, listings)

    def _parse(self, url: str, host: str, outcome: Outcome, body: io.BytesIO) -> Listing | None:
        if outcome is Outcome.MISSING:
            return _EMPTY
        try:
            listing = parse_listing(body.getvalue(), url, host=host)
        except InvalidResponseError as exc:
            self.note(str(exc))
            return None
        # A file where the source has a directory: listed as a file, nothing is inside.
        return listing if listing.is_collection else _EMPTY

    def _cannot_list(self, host: str, code: int) -> None:
        if host not in self.cannot_list:
            self.cannot_list.add(host)
            self.tally.hosts[host].cannot_list = True
            self.note(
                f"{host} cannot list directories (PROPFIND answered {code}): checking each file "
                "with HEAD there; files it has and the source has not go unseen"
            )

    def _compare(self, directory: Directory, listings: dict[str, Listing | None]) -> None:
        """Count what differs and queue the repairs (or, changing nothing, say them)."""
        head_hosts = tuple(
            host for host in self.hosts if host in self.cannot_list and host not in listings
        )
        for host, listing in listings.items():
            if listing is None or host in self.down:
                self.tally.hosts[host].failed += len(directory.files)
        usable = {
            host: listing
            for host, listing in listings.items()
            if listing is not None and host not in self.down
        }
        comparison = compare_directory(directory, usable, checksum=self.options.checksum)
        for host, names in comparison.refused.items():
            self.tally.hosts[host].refused += len(names)
            for name in names:
                self.note(f"refused name on {host}, left alone: {name!r}")
        for host, listing in usable.items():
            self.tally.hosts[host].listed += len(listing.files)
        self._directories -= 1
        self._repairs.append(self._repair(directory, comparison, head_hosts))

    def _repair(
        self, directory: Directory, comparison: Comparison, head_hosts: tuple[str, ...]
    ) -> Iterator[tuple[Job, Handler]]:
        """The jobs that bring this directory in line, made one at a time as room frees up."""
        options = self.options
        for name, facts in directory.files.items():
            differences: dict[str, Difference] = comparison.files.get(name, {})
            asked = head_hosts
            if name.startswith(".") and "missing" in differences.values():
                # nginx's dav-ext module leaves dot names out of its listings: ask each
                # host that "lacks" one with a HEAD, rather than send it again every run.
                unlisted = tuple(h for h, d in differences.items() if d == "missing")
                differences = {h: d for h, d in differences.items() if d != "missing"}
                asked = (*head_hosts, *unlisted)
            self._count(differences)
            path = join(directory.path, name)
            to_check = comparison.checks.get(name, ())
            if to_check:
                yield self._checksum_job(path, facts, to_check, differences)
            if asked:
                yield self._head_job(path, facts, asked)
            if differences and not to_check:
                yield from self._fix(path, facts, differences)
        for host, names in comparison.extra_files.items():
            self.tally.hosts[host].extra += len(names)
        for host, names in comparison.extra_directories.items():
            self.tally.hosts[host].extra += len(names)
        extras: dict[tuple[str, bool], list[str]] = {}
        for is_directory, per_host in (
            (False, comparison.extra_files),
            (True, comparison.extra_directories),
        ):
            for host, names in per_host.items():
                for name in names:
                    extras.setdefault((join(directory.path, name), is_directory), []).append(host)
        for (path, is_directory), hosts in extras.items():
            shown = path + ("/" if is_directory else "")
            if not options.changes or not options.delete:
                if not options.changes:
                    self.say(f"extra     {shown}   on {', '.join(hosts)}")
                continue
            yield self._delete_job(path, tuple(hosts), is_directory)

    def _count(self, differences: dict[str, Difference]) -> None:
        for host, difference in differences.items():
            tally = self.tally.hosts[host]
            if difference == "missing":
                tally.missing += 1
            else:
                tally.differing += 1

    # -- repairs -------------------------------------------------------------------------

    def _fix(
        self, path: str, facts: SourceFacts, differences: dict[str, Difference]
    ) -> Iterator[tuple[Job, Handler]]:
        """Send one file to the hosts that differ, or say it when changing nothing."""
        if not differences:
            return
        if not self.options.changes:
            missing = [host for host, kind in differences.items() if kind == "missing"]
            other = {host: kind for host, kind in differences.items() if kind != "missing"}
            if missing:
                self.say(f"missing   {path}   on {', '.join(missing)}")
            if other:
                details = ", ".join(f"{host} ({kind})" for host, kind in other.items())
                self.say(f"differs   {path}   on {details}")
            return
        blocked = [host for host, kind in differences.items() if kind == "directory"]
        for host in blocked:
            if not self.options.delete:
                self.tally.hosts[host].failed += 1
                self.note(
                    f"{host} has a directory where the source has the file {path!r}: "
                    "sync --delete replaces it"
                )
        if self.options.delete and blocked:
            yield self._delete_job(path, tuple(blocked), True, then=(path, facts))
        hosts = tuple(host for host, kind in differences.items() if kind != "directory")
        if hosts:
            yield self._put_job(path, facts, hosts, attempt=1)

    def _put_job(
        self, path: str, facts: SourceFacts, hosts: tuple[str, ...], *, attempt: int
    ) -> tuple[Job, Handler]:
        tally = self.tally
        tally.to_send += 1
        tally.bytes_to_send += facts[0] * len(hosts)
        options = self.options
        if options.source_dir is not None:
            source: Any = os.path.join(options.source_dir, path)
            job = Job("PUT", path, hosts, source=source, warn=False)
            return job, lambda result: self._sent(path, facts, hosts, attempt, result)
        # From a source host: fetched into a spool (memory up to 1 MiB, then disk), then sent.
        spool = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115
        assert options.source_host is not None
        fetch = Job("GET", path, (options.source_host,), sinks=(spool.write,), warn=False)
        return fetch, lambda result: self._fetched(path, facts, hosts, spool, result)

    def _fetched(
        self,
        path: str,
        facts: SourceFacts,
        hosts: tuple[str, ...],
        spool: IO[bytes],
        result: OperationResult,
    ) -> None:
        answer = result.hosts[0] if result.hosts else None
        if answer is None or answer.error is not None or answer.outcome is not Outcome.FOUND:
            spool.close()
            self.tally.sent += 1
            if answer is not None and answer.outcome is Outcome.MISSING:
                self.tally.vanished += 1
                self.note(f"{path!r} vanished from the source host; left as it is")
                return
            for host in hosts:
                self.tally.hosts[host].failed += 1
            self.note(f"cannot read {path!r} from the source host: {answer and answer.error}")
            return
        spool.seek(0)
        job = Job("PUT", path, hosts, source=spool, warn=False)

        def sent(result: OperationResult) -> None:
            spool.close()
            self._sent(path, facts, hosts, _ATTEMPTS, result)

        self._listings.append((job, sent))  # first in line: the spool is held until then

    def _sent(
        self,
        path: str,
        facts: SourceFacts,
        hosts: tuple[str, ...],
        attempt: int,
        result: OperationResult,
    ) -> None:
        tally = self.tally
        tally.sent += 1
        answered = {host_result.host: host_result for host_result in result.hosts}
        source_path = None
        if self.options.source_dir is not None:
            source_path = os.path.join(self.options.source_dir, path)
        if result.source_error is not None and source_path and file_stamp(source_path) is None:
            tally.vanished += 1
            self.note(f"{path!r} vanished from the source during the run; left as it is")
            return
        for host in hosts:
            answer = answered.get(host)
            if answer is not None and answer.ok and result.source_error is None:
                tally.hosts[host].uploaded += 1
                tally.hosts[host].uploaded_bytes += answer.transferred
            else:
                tally.hosts[host].failed += 1
        if source_path is None or facts[2] is None:
            return
        stamp = file_stamp(source_path)
        if stamp == facts[2]:
            return
        # The source changed while (or since) it was listed: what went out may be half-old.
        if stamp is None:
            tally.vanished += 1
            self.note(f"{path!r} vanished from the source during the run; left as it is")
            return
        live = tuple(host for host in self.hosts if host not in self.down)
        if attempt >= _ATTEMPTS:
            for host in live:
                tally.hosts[host].failed += 1
            self.note(f"{path!r} kept changing while it was sent; left for the next run")
            return
        size = os.stat(source_path).st_size
        self._listings.append(self._put_job(path, (size, 0.0, stamp), live, attempt=attempt + 1))

    def _delete_job(
        self,
        path: str,
        hosts: tuple[str, ...],
        is_directory: bool,
        *,
        then: tuple[str, SourceFacts] | None = None,
    ) -> tuple[Job, Handler]:
        job = Job("DELETE", path, hosts, directory=is_directory, warn=False)

        def deleted(result: OperationResult) -> None:
            answered = {host_result.host: host_result for host_result in result.hosts}
            cleared = []
            for host in hosts:
                answer = answered.get(host)
                if answer is not None and answer.ok:
                    if then is None:
                        self.tally.hosts[host].deleted += 1
                    cleared.append(host)
                else:
                    self.tally.hosts[host].failed += 1
            if then is not None and cleared:  # a directory stood where a file goes: now send it
                self._listings.append(self._put_job(*then, tuple(cleared), attempt=1))

        return job, deleted

    def _head_job(
        self, path: str, facts: SourceFacts, hosts: tuple[str, ...]
    ) -> tuple[Job, Handler]:
        """For hosts that cannot list: one HEAD per file, then what it says is compared."""
        job = Job("HEAD", path, hosts, warn=False)

        def checked(result: OperationResult) -> None:
            answered = {host_result.host: host_result for host_result in result.hosts}
            differences: dict[str, Difference] = {}
            for host in hosts:
                answer = answered.get(host)
                if answer is None or answer.error is not None:
                    self.tally.hosts[host].failed += 1
                    continue
                self.tally.hosts[host].listed += answer.outcome is Outcome.FOUND
                found = (
                    None if answer.outcome is Outcome.MISSING else (answer.size, answer.modified)
                )
                difference = compare_file(facts, found, checksum=False)
                if difference is not None and difference != "same size":
                    differences[host] = difference
            self._count(differences)
            self._repairs.append(self._fix(path, facts, differences))

        return job, checked

    def _checksum_job(
        self,
        path: str,
        facts: SourceFacts,
        hosts: tuple[str, ...],
        differences: dict[str, Difference],
    ) -> tuple[Job, Handler]:
        """``--checksum``: read the same-size copies and compare them with the source's SHA-256.

        From a source host, the source's copy is read in the same request set.
        """
        source_host = self.options.source_host
        asked = (source_host, *hosts) if source_host is not None else hosts
        digests = {host: hashlib.sha256() for host in asked}
        job = Job("GET", path, asked, sinks=[digest.update for digest in digests.values()])

        def compared(result: OperationResult) -> None:
            answered = {host_result.host: host_result for host_result in result.hosts}
            if source_host is not None:
                source = answered.get(source_host)
                if source is None or source.error is not None or not source.ok:
                    for host in hosts:
                        self.tally.hosts[host].failed += 1
                    return
                expected = digests[source_host].hexdigest()
            else:
                digest = _file_digest(os.path.join(self.options.source_dir or "", path))
                if digest is None:  # unreadable now: vanished, or a permission changed
                    for host in hosts:
                        self.tally.hosts[host].failed += 1
                    self.note(f"cannot read {path!r} in the source to compare its content")
                    return
                expected = digest
            found = dict(differences)
            for host in hosts:
                answer = answered.get(host)
                if answer is None or answer.error is not None:
                    self.tally.hosts[host].failed += 1
                elif answer.outcome is Outcome.MISSING:
                    found[host] = "missing"
                    self.tally.hosts[host].missing += 1
                elif digests[host].hexdigest() != expected:
                    found[host] = "content"
                    self.tally.hosts[host].differing += 1
            self._repairs.append(self._fix(path, facts, found))

        return job, compared


def _file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return None
