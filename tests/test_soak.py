"""Soak: fuzzed names, and thousands of operations against hosts that misbehave.

Names: every name hypothesis draws (unicode, spaces, ``%``, ``+``, ``#``, ``?``,
``;``, backslashes, control characters, dot and empty segments, leading and
trailing slashes, long segments and deep paths) is either refused with
``InvalidNameError`` before any request, or stored by nginx under exactly that
name, and exists/size/get/delete agree with the disk.  Which names must be
refused is written here from the README's rule, not read from ``_names``, so
the two are checked against each other.  Past nginx's and Linux's own limits
(a segment over 255 bytes, a path over 4 KiB, a request line over 8 KiB) a name
may also fail on every host, with an error of the tree and nothing on disk.

Faults: 2,000 operations (puts from empty to 4 MiB, from bytes, paths and
streams; deletes; ``put_many`` batches) go to the three nginx hosts and one or
two peers picked at random (seeded) from the misbehaving ones in
``testbed/peers.py``.  For every result: a host reported ok holds exactly the
bytes (nginx's disk, the slow sink's record) and a lying peer is never ok (but
for a body small enough to sit whole in the socket buffers of a peer that
answered without reading it: no client can tell); every host targeted is in
the result, every failure is an error of the tree and is logged; no operation
runs past its time bound by more than a second.  At the end each nginx root
holds exactly the files the results said it holds.  Once with every host asked
every time (``host_cooldown=0``), once with dead peers skipped between probes.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import io
import logging
import math
import os
import random
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from resto_fast import (
    HostError,
    InvalidNameError,
    OperationResult,
    Outcome,
    Replicator,
    TransportError,
    UnexpectedStatusCode,
)
from resto_fast._sources import Source
from testbed import (
    Answering,
    BlackHole,
    EarlyAnswer,
    FixedAnswer,
    Nginx,
    Resetter,
    SlowSink,
    Staller,
    free_port,
)

pytestmark = pytest.mark.nginx

KiB = 1024
MiB = 1024 * KiB


def files_under(root: Path) -> dict[str, Path]:
    """Every file below a host's ``/media/`` root, by its name relative to it."""
    base = root / "media"
    found = {}
    for directory, _, files in os.walk(base):
        for file in files:
            path = Path(directory, file)
            found[path.relative_to(base).as_posix()] = path
    return found


def empty_roots(nginx: Nginx) -> None:
    """Remove every file and directory the media hosts hold (nginx leaves directories)."""
    for index in range(nginx.count):
        shutil.rmtree(nginx.root(index) / "media", ignore_errors=True)


# -- names ---------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def refusal(name: str) -> str | None:
    """Why ``name`` must be refused, by the README's rule; None when it must be sent."""
    if not name:
        return "empty"
    if name.startswith("/"):
        return "absolute"
    if _CONTROL.search(name):
        return "control character"
    if "\\" in name:
        return "backslash"
    if any(segment in ("", ".", "..") for segment in name.split("/")):
        return "dot or empty segment"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid Unicode"
    return None


NAME_MAX = 255  # bytes in one path segment (Linux)
PATH_MAX = 4096  # bytes in a path, its NUL included (Linux)
REQUEST_LINE_MAX = 8192  # nginx's large_client_header_buffers: 8k by default


def past_server_limits(name: str, file: Path, url: str, *, slack: int = 0) -> bool:
    """Whether a PUT of ``name`` to ``url``, stored as ``file``, is (with ``slack``: may
    be) more than nginx or Linux takes: a refusal no client-side check can foresee."""
    request_line = f"PUT {urlsplit(url).path} HTTP/1.1\r\n"
    return (
        max(len(segment.encode()) for segment in name.split("/")) > NAME_MAX
        or len(os.fsencode(file)) + slack >= PATH_MAX
        or len(request_line) + slack > REQUEST_LINE_MAX
    )


# Characters a name may hold (with the whole of Unicode but controls and surrogates), and
# those that get it refused: controls, the backslash, a lone surrogate.
HARMLESS = (*" %+#?;&=~:@*!$'\"<>|^`[]{},.-_", *"\xa0\u2028\u200b\ufeff\u0301éßﬁ😀\U0010ffff")
FORBIDDEN = (*"\\\x00\t\n\r\x1b\x7f\x85\x9f", "\ud800")
harmless_character = st.one_of(
    st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="/\\"),
    st.sampled_from(HARMLESS),
)
any_character = st.one_of(st.characters(), st.sampled_from(HARMLESS + FORBIDDEN))


def segments(character: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """One path segment: short text, text with escapes and dots inside, dot-like names,
    or one character repeated up to past NAME_MAX."""
    return st.one_of(
        st.text(character, min_size=1, max_size=12),
        st.lists(
            st.one_of(
                st.text(character, min_size=1, max_size=4),
                st.sampled_from(["%2e", "%2E%2e", "%2f", "%00", "%25", "%", "+", ".", ".."]),
            ),
            min_size=1,
            max_size=4,
        ).map("".join),
        st.sampled_from(["...", ". ", " .", ".hidden", "..x", "~", "%2e%2e"]),
        st.builds(lambda char, count: char * count, character, st.integers(60, 300)),
    )


clean_names = st.lists(segments(harmless_character), min_size=1, max_size=6).map("/".join)
deep_names = st.lists(
    st.text(harmless_character, min_size=1, max_size=3), min_size=20, max_size=80
).map("/".join)
# Segments on both sides of NAME_MAX, paths on both sides of PATH_MAX.
long_names = st.lists(
    st.builds(lambda char, count: char * count, st.sampled_from("aZ_~.-"), st.integers(230, 270)),
    min_size=1,
    max_size=18,
).map("/".join)
# A clean name with one flaw put in somewhere: a slash (leading, trailing, doubled), a dot
# segment, a forbidden character; or, by where it lands, no flaw after all ("a..b").
flaws = st.one_of(
    st.sampled_from(["/", "//", "/./", "/../", "./", "../", "/.", "/..", ".", ".."]),
    st.sampled_from(FORBIDDEN[1:-1]),  # controls
    st.just("\\"),
    st.just("\ud800"),
)
flawed_names = st.builds(
    lambda name, flaw, at: name[: at % (len(name) + 1)] + flaw + name[at % (len(name) + 1) :],
    clean_names,
    flaws,
    st.integers(0, 10**6),
)
chaotic_names = st.builds(
    lambda lead, parts, trail: lead + "/".join(parts) + trail,
    st.sampled_from(["", "", "/", "//"]),
    st.lists(st.one_of(segments(any_character), st.sampled_from(["", ".", ".."])), max_size=6),
    st.sampled_from(["", "", "/"]),
)
names = st.one_of(
    clean_names, flawed_names, deep_names, long_names, chaotic_names, clean_names, flawed_names
)


@pytest.fixture(scope="module")
def name_replicator(nginx: Nginx) -> Iterator[Replicator]:
    nginx.clear()
    with Replicator(nginx.hosts, "/media/", timeout=5, host_cooldown=0) as replicator:
        yield replicator


@pytest.fixture(scope="module")
def tattletale() -> Iterator[tuple[FixedAnswer, Replicator]]:
    """A peer that counts connections, and a replicator on it: a refused name must open none."""
    with (
        FixedAnswer(500, b"a request went out") as peer,
        Replicator([peer.host], "/media/", timeout=5, host_cooldown=0) as replicator,
    ):
        yield peer, replicator


def assert_refused_everywhere(replicator: Replicator, name: str) -> None:
    """Every call that takes a name refuses it, put_many before its first, valid file."""
    calls = (
        lambda: replicator.put(name, b"x"),
        lambda: replicator.put_many([("ok.txt", b"x"), (name, b"x")]),
        lambda: replicator.delete(name),
        lambda: replicator.exists(name),
        lambda: replicator.size(name),
        lambda: replicator.get(name),
    )
    for call in calls:
        with pytest.raises(InvalidNameError) as refused:
            call()
        assert isinstance(refused.value, ValueError)
        assert refused.value.name == name


# The health check is about function-scoped fixtures reused by every example: the conftest's
# autouse breaker reset is one, and harmless here (host_cooldown=0: nothing trips).
@settings(
    max_examples=250,
    deadline=None,  # a shared, noisy machine
    derandomize=True,  # the same names on every run, in CI too
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=names, data=st.binary(max_size=64))
@example(name="a/../b", data=b"x")
@example(name="..", data=b"x")
@example(name="dir/", data=b"x")
@example(name="a\\b", data=b"x")
@example(name="nul\x00", data=b"x")
@example(name="c1\x85control", data=b"x")
@example(name="lone\ud800surrogate", data=b"x")
@example(name="%2e%2e/%2F/100%/c++/what?#;x", data=b"x")
@example(name=" lead and trail /é ß 😀/ ", data=b"")
@example(name="a" * 255, data=b"x")
@example(name="a" * 256, data=b"x")
def test_a_name_is_refused_before_any_request_or_stored_under_exactly_that_name(
    nginx: Nginx,
    name_replicator: Replicator,
    tattletale: tuple[FixedAnswer, Replicator],
    name: str,
    data: bytes,
) -> None:
    """Refused before any request, or on every host's disk under exactly that name (or,
    past nginx's limits, failed everywhere); the reads and the delete agree with the disk."""
    replicator = name_replicator
    hosts = list(nginx.hosts)
    why = refusal(name)
    try:
        result = replicator.put(name, data)
    except InvalidNameError:
        assert why is not None, f"{name!r} was refused, but nothing in it is dangerous"
        event(f"refused: {why}")
        peer, told = tattletale
        assert_refused_everywhere(replicator, name)
        assert_refused_everywhere(told, name)
        assert not peer.connections  # not one request went out for any refused name
        assert all(not files_under(nginx.root(i)) for i in range(nginx.count))
        return
    try:
        assert why is None, f"{name!r} went out, but it has to be refused: {why}"
        assert [host.host for host in result] == hosts
        file = nginx.path(0, name)
        limits = past_server_limits(name, file, result[hosts[0]].url, slack=300)
        if not result.ok:
            # Only a name near or past the server's limits may fail, and then everywhere,
            # with an error of the tree, and leaving nothing behind.
            assert limits, f"{name!r} failed: {result.failures}"
            event("refused by nginx (past its limits)")
            assert not result.succeeded
            for failed in result:
                assert failed.outcome is Outcome.FAILED
                assert isinstance(failed.error, UnexpectedStatusCode), failed.error
            assert all(not files_under(nginx.root(i)) for i in range(nginx.count))
            return
        assert not past_server_limits(name, file, result[hosts[0]].url)
        event("stored" + (" (near nginx's limits)" if limits else ""))
        assert all(stored.outcome is Outcome.CREATED for stored in result)
        for index in range(nginx.count):
            stored = files_under(nginx.root(index))
            assert list(stored) == [name]  # under exactly that name, and nothing else
            assert stored[name].read_bytes() == data
        for host in hosts:
            assert replicator.exists(name, host)
            assert replicator.size(name, host) == len(data)
            assert replicator.get(name, host) == data
        deleted = replicator.delete(name)
        assert [host.outcome for host in deleted] == [Outcome.DELETED] * len(hosts)
        for host in hosts:
            assert not replicator.exists(name, host)
        assert all(not files_under(nginx.root(i)) for i in range(nginx.count))
    finally:
        empty_roots(nginx)


# -- faults ---------------------------------------------------------------------------------

TIMEOUT = 0.3
SLACK = 1.0  # how far past its bound an operation may run: a shared 2-core machine
SLOW_RATE = 32 * MiB  # the slow sink's pace: it keeps reading, so it is never given up
# EarlyAnswer answers 201 having read only the request head: a body its kernel takes
# whole (its socket buffers) is indistinguishable from one it read.  Past that, never ok.
EARLY_UNDETECTABLE = 256 * KiB
CONCURRENCY = 8
# A peer that stops reading still has its kernel take bytes for about a quarter of a second
# (Linux on loopback: the last of its receive buffer goes with the zero-window probe, ~0.26 s
# in): progress, by the rule, so the timeout runs from there.
KERNEL_LINGER = 0.3


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of host in the soak."""

    name: str
    host: str
    waits: bool = False  # costs a whole timeout: silent, stalled, or an answer that trickles
    nginx_index: int | None = None  # a healthy media host: its root is checked


@dataclasses.dataclass
class Peers:
    nginx: list[Kind]
    quick: list[Kind]  # fail at once (or, for the slow sink, succeed honestly)
    waiting: list[Kind]
    slow: SlowSink

    @property
    def by_host(self) -> dict[str, Kind]:
        return {kind.host: kind for kind in [*self.nginx, *self.quick, *self.waiting]}


@contextlib.contextmanager
def soak_peers(nginx: Nginx) -> Iterator[Peers]:
    trickle = b"HTTP/1.1 201 Created\r\nContent-Length: 1000\r\n\r\n"
    with (
        SlowSink(rate=SLOW_RATE) as slow,
        Resetter(after=1) as reset,
        Resetter(after=256 * KiB) as reset_late,
        FixedAnswer(500, b"no") as error,
        Answering(b"garbage\r\n\r\n") as garbage,
        Answering(bytes(range(256))) as binary,
        Answering(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") as chunks,
        EarlyAnswer() as early,
        BlackHole() as hole,
        Staller() as staller,
        Answering(trickle, trickle=1000, pause=0.05) as trickling,
        Answering(b"HTTP/1.0 201 Created\r\n\r\n") as unending,
        Answering(b"HTTP/1.1 100 Continue\r\n\r\n") as continuing,
    ):
        quick = [
            Kind("slow sink", slow.host),
            Kind("refused", f"127.0.0.1:{free_port()}"),
            Kind("reset", reset.host),
            Kind("500 peer", error.host),
            Kind("garbage", garbage.host),
            Kind("binary", binary.host),
            Kind("bad chunks", chunks.host),
            Kind("early 201", early.host),
            *(Kind(f"nginx {code}", nginx.status_host(code)) for code in (403, 500, 202, 302)),
        ]
        waiting = [
            Kind("black hole", hole.host, waits=True),
            Kind("staller", staller.host, waits=True),
            Kind("trickle", trickling.host, waits=True),
            Kind("reset late", reset_late.host, waits=True),  # quick past 256 KiB
            Kind("no length", unending.host, waits=True),
            Kind("100 only", continuing.host, waits=True),
        ]
        healthy = [Kind("nginx", host, nginx_index=i) for i, host in enumerate(nginx.hosts)]
        yield Peers(healthy, quick, waiting, slow)


class FailureLog(logging.Handler):
    """The (method, name, host) of every failure resto_fast logs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: set[tuple[object, object, object]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        key = (
            getattr(record, "resto_method", None),
            getattr(record, "resto_name", None),
            getattr(record, "resto_host", None),
        )
        self.seen.add(key)


class Unseekable:
    """A stream of unknown length (a pipe, a socket): resto_fast spools it first."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1, /) -> bytes:
        return self._data.read(size)


# (share, smallest, largest): mostly small files, some of a few hundred KiB, a few of MiB.
SIZES = (
    (0.03, 0, 0),
    (0.57, 1, 4 * KiB),
    (0.25, 4 * KiB, 256 * KiB),
    (0.12, 256 * KiB, MiB + 1),
    (0.03, MiB, 4 * MiB),
)


def draw_size(rng: random.Random) -> int:
    """A size from SIZES, log-uniform within its range."""
    ((_, low, high),) = rng.choices(SIZES, weights=[share for share, _, _ in SIZES])
    return low if low == high else round(math.exp(rng.uniform(math.log(low), math.log(high))))


def time_bound(kinds: list[Kind], size: int) -> float:
    """How long one operation may take by the timeout rules, before the slack.

    ``timeout`` bounds connecting, any stretch without progress, and a write's
    answer once the request went out; a host that keeps moving is never cut
    off.  Here every peer connects at once (refused, accepted, or completed by
    the kernel's backlog) and then answers, fails, or waits: one timeout, after
    the last progress.  Progress lasts as long as the honest slow sink takes to
    read the body, and, for a peer that stopped reading, as long as its kernel
    still takes bytes: KERNEL_LINGER.
    """
    reading = size / SLOW_RATE if any(kind.name == "slow sink" for kind in kinds) else 0.0
    linger = KERNEL_LINGER if size and any(kind.waits for kind in kinds) else 0.0
    return TIMEOUT + max(reading, linger)


@dataclasses.dataclass
class Soak:
    """One soak run: its state, its checks, and what it saw."""

    media: Nginx
    peers: Peers
    log: FailureLog
    scratch: Path
    rng: random.Random
    # What each nginx root holds by the results: name -> sha256; names whose state a failure
    # on a healthy host left unknown.
    held: list[dict[str, bytes]] = dataclasses.field(default_factory=list)
    unknown: list[set[str]] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    outcomes: dict[str, collections.Counter[str]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    overruns: dict[str, float] = dataclasses.field(default_factory=dict)
    counts: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        self.kind_of = self.peers.by_host
        self.held = [{} for _ in self.peers.nginx]
        self.unknown = [set() for _ in self.peers.nginx]

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def targets(self, waiting_share: float) -> list[Kind]:
        """The nginx hosts and one or two bad peers; a waiting one in ``waiting_share``."""
        bad: list[Kind] = []
        for _ in range(self.rng.choice((1, 1, 2))):
            pool = self.peers.waiting if self.rng.random() < waiting_share else self.peers.quick
            kind = self.rng.choice(pool)
            if kind not in bad:
                bad.append(kind)
        return [*self.peers.nginx, *bad]

    def timed(self, what: str, elapsed: float, bound: float, kinds: list[Kind]) -> None:
        """Check one duration against its bound; keep the largest overrun by what ran and
        the waiting peers it went to (they set its time)."""
        overrun = elapsed - bound
        waiting = "+".join(sorted(kind.name for kind in kinds if kind.waits)) or "quick peers"
        key = f"{what}, {waiting}"
        self.overruns[key] = max(self.overruns.get(key, -math.inf), overrun)
        if overrun > SLACK:
            names = [kind.name for kind in kinds]
            self.problem(f"{what} to {names} took {elapsed:.2f} s, bound {bound:.2f} s")

    @contextlib.contextmanager
    def raising(self, what: str, kinds: list[Kind]) -> Iterator[None]:
        """Say which operation raised, and to which hosts: every failure belongs in the
        result, so anything raised here (a pycurl error, a bare OSError) is a finding."""
        try:
            yield
        except Exception as exc:
            exc.add_note(f"raised by {what} to {[kind.name for kind in kinds]}")
            raise

    def check(
        self, result: OperationResult, kinds: list[Kind], data: bytes | None, bound: float
    ) -> None:
        """Every check of one operation's result (``data``: what a PUT sent)."""
        method, name = result.method, result.name
        where = f"{method} {name!r}"
        targeted = sorted(kind.host for kind in kinds)
        if sorted(host.host for host in result) != targeted:
            self.problem(f"{where}: hosts {[h.host for h in result]}, targeted {targeted}")
        if result.source_error is not None:
            self.problem(f"{where}: source error {result.source_error!r}")
        for host in result:
            kind = self.kind_of[host.host]
            label = "ok" if host.ok else failure_label(host.error)
            self.outcomes[kind.name][label] += 1
            if host.ok and data is not None and host.transferred != len(data):
                self.problem(f"{where} on {kind.name}: ok with {host.transferred} bytes sent")
            if host.elapsed > bound + SLACK:
                self.problem(f"{where} on {kind.name}: {host.elapsed:.2f} s, bound {bound:.2f}")
            if not host.ok:
                self.check_failure(where, method, name, kind, host.outcome, host.error)
            if kind.nginx_index is not None:
                self.check_nginx(where, kind.nginx_index, name, host.ok, host.outcome, data)
            elif host.ok:
                self.check_peer_ok(where, kind, host.url, data)

    def check_failure(
        self,
        where: str,
        method: str,
        name: str,
        kind: Kind,
        outcome: Outcome,
        error: HostError | None,
    ) -> None:
        if not isinstance(error, HostError):
            self.problem(f"{where} on {kind.name}: failed without a HostError: {error!r}")
            return
        if (error.host, error.method) != (kind.host, method):
            self.problem(f"{where} on {kind.name}: error names {error.method} on {error.host}")
        if outcome is Outcome.SKIPPED and not (
            isinstance(error, TransportError) and error.reason == "skipped"
        ):
            self.problem(f"{where} on {kind.name}: skipped, but {error!r}")
        if (method, name, kind.host) not in self.log.seen:
            self.problem(f"{where} on {kind.name}: failure not logged ({error})")

    def check_nginx(
        self,
        where: str,
        index: int,
        name: str,
        ok: bool,
        outcome: Outcome,
        data: bytes | None,
    ) -> None:
        file = self.media.path(index, name)
        held, unknown = self.held[index], self.unknown[index]
        if not ok:  # a healthy host failed: counted; what it holds is unknown from now on
            held.pop(name, None)
            unknown.add(name)
            return
        had = name in held
        if data is not None:
            if not file.is_file() or file.read_bytes() != data:
                self.problem(f"{where}: reported ok on nginx {index}, not the bytes on disk")
            held[name] = hashlib.sha256(data).digest()
            expected = Outcome.REPLACED if had else Outcome.CREATED
        else:
            if file.exists():
                self.problem(f"{where}: reported ok on nginx {index}, the file is still there")
            held.pop(name, None)
            expected = Outcome.DELETED if had else Outcome.ALREADY_GONE
        if name not in unknown and outcome is not expected:
            self.problem(f"{where}: {outcome} on nginx {index}, {expected} expected")
        unknown.discard(name)

    def check_peer_ok(self, where: str, kind: Kind, url: str, data: bytes | None) -> None:
        if kind.name == "slow sink" and data is not None:
            received = self.peers.slow.received.pop(urlsplit(url).path, None)
            if received != data:
                self.problem(f"{where}: reported ok on the slow sink, which got other bytes")
        elif kind.name == "early 201" and data is not None and len(data) <= EARLY_UNDETECTABLE:
            self.counts["early 201 ok, body within its buffers"] += 1
        elif kind.name == "early 201" and data is not None:
            self.problem(
                f"{where} ({len(data)} bytes): reported ok on early 201, which answered after"
                " the request head and read no more"
            )
        else:
            self.problem(f"{where}: reported ok on {kind.name}, which holds nothing")

    def source(self, name: str, data: bytes) -> Source:
        """The same bytes as bytes, a path, a seekable file or a stream of unknown length."""
        kind = self.rng.choice(("bytes", "path", "file", "stream"))
        self.counts[f"source: {kind}"] += 1
        if kind == "bytes":
            return data
        if kind == "stream":
            return Unseekable(data)
        if kind == "file":
            return io.BytesIO(data)
        path = self.scratch / name.replace("/", "_")
        path.write_bytes(data)
        return path

    def put(self, replicator: Replicator, name: str, waiting_share: float) -> None:
        kinds = self.targets(waiting_share)
        data = self.rng.randbytes(draw_size(self.rng))
        source = self.source(name, data)
        bound = time_bound(kinds, len(data))
        started = time.monotonic()
        with self.raising(f"PUT {name!r} ({len(data)} bytes)", kinds):
            result = replicator.put(name, source, hosts=[kind.host for kind in kinds])
        self.timed("put", time.monotonic() - started, bound, kinds)
        self.check(result, kinds, data, bound)
        self.counts["put"] += 1

    def delete(self, replicator: Replicator, name: str, waiting_share: float) -> None:
        kinds = self.targets(waiting_share)
        bound = time_bound(kinds, 0)
        started = time.monotonic()
        with self.raising(f"DELETE {name!r}", kinds):
            result = replicator.delete(name, hosts=[kind.host for kind in kinds])
        self.timed("delete", time.monotonic() - started, bound, kinds)
        self.check(result, kinds, None, bound)
        self.counts["delete"] += 1

    def put_many(self, replicator: Replicator, names: list[str], waiting_share: float) -> None:
        """A batch to the same hosts, ``CONCURRENCY`` at a time: item ``k`` starts once
        ``k - CONCURRENCY`` has finished, so it ends within ``(k // CONCURRENCY + 1)``
        bounds of the batch's start."""
        kinds = self.targets(waiting_share)
        batch = [(name, self.rng.randbytes(draw_size(self.rng))) for name in names]
        bound = max(time_bound(kinds, len(data)) for _, data in batch)
        finished: dict[str, float] = {}

        def note(result: OperationResult) -> None:
            finished[result.name] = time.monotonic()

        sources = [(name, self.source(name, data)) for name, data in batch]
        started = time.monotonic()
        with self.raising(f"put_many of {len(batch)}", kinds):
            results = replicator.put_many(
                sources, hosts=[kind.host for kind in kinds], on_result=note
            )
        elapsed = time.monotonic() - started
        self.timed("put_many", elapsed, math.ceil(len(batch) / CONCURRENCY) * bound, kinds)
        if [result.name for result in results] != names:
            self.problem(f"put_many of {names}: results for {[r.name for r in results]}")
        for position, ((name, data), result) in enumerate(zip(batch, results, strict=False)):
            item_bound = (position // CONCURRENCY + 1) * bound
            self.timed("put_many item", finished.get(name, math.inf) - started, item_bound, kinds)
            self.check(result, kinds, data, bound)
        self.counts["put_many"] += 1
        self.counts["put_many item"] += len(batch)

    def run(self, replicator: Replicator, operations: int) -> None:
        live: list[str] = []  # names put, not deleted since (whatever the results said)
        serial = 0

        def fresh() -> str:
            nonlocal serial
            serial += 1
            return f"soak/{serial % 17:02}/{serial:05}.bin"

        done = 0
        while done < operations:
            self.log.seen.clear()
            roll = self.rng.random()
            if len(live) > 300 or (live and roll < 0.2):
                name = live.pop(self.rng.randrange(len(live)))
                self.delete(replicator, name, waiting_share=0.04)
                done += 1
            elif roll < 0.25:
                self.delete(replicator, fresh(), waiting_share=0.04)  # never put: already gone
                done += 1
            elif roll < 0.33:
                count = min(self.rng.randint(2, 16), operations - done)
                names = [fresh() for _ in range(count)]
                self.put_many(replicator, names, waiting_share=0.4)
                live.extend(names)
                done += count
            else:
                name = self.rng.choice(live) if live and roll < 0.43 else fresh()  # or replace
                self.put(replicator, name, waiting_share=0.04)
                if name not in live:
                    live.append(name)
                done += 1
            for leftover in self.scratch.iterdir():
                leftover.unlink()
        self.check_roots()

    def check_roots(self) -> None:
        """Each nginx root holds exactly what the results said, byte for byte."""
        for index, held in enumerate(self.held):
            on_disk = files_under(self.media.root(index))
            unknown = self.unknown[index]
            for name in sorted(set(on_disk) - unknown):
                digest = hashlib.sha256(on_disk[name].read_bytes()).digest()
                if held.get(name) != digest:
                    self.problem(f"nginx {index}: {name!r} on disk, not as the results said")
            for name in sorted(set(held) - set(on_disk)):
                self.problem(f"nginx {index}: {name!r} said to be there, missing")

    def report(self, title: str, elapsed: float) -> str:
        lines = [f"{title}: {dict(self.counts)} in {elapsed:.1f} s"]
        for kind, labels in sorted(self.outcomes.items()):
            lines.append(f"  {kind:12} {dict(labels.most_common())}")
        lines.append("  largest overrun of the time bound (negative: within it):")
        for what, overrun in sorted(self.overruns.items()):
            lines.append(f"    {what:32} {overrun:+.3f} s")
        return "\n".join(lines)


def failure_label(error: HostError | None) -> str:
    if isinstance(error, TransportError):
        return error.reason
    if isinstance(error, UnexpectedStatusCode):
        return f"HTTP {error.code}"
    return type(error).__name__


@pytest.mark.parametrize(
    ("operations", "cooldown", "seed"),
    [(1600, 0.0, 20261201), (400, 2.0, 20261202)],
    ids=["every-host-every-time", "dead-hosts-skipped"],
)
def test_a_fault_soak_never_reports_a_copy_that_is_not_there(
    media: Nginx,
    scratch: Path,
    monkeypatch: pytest.MonkeyPatch,
    operations: int,
    cooldown: float,
    seed: int,
) -> None:
    """2,000 operations in all: with ``host_cooldown=0`` every host is asked every time;
    with a cool-down, dead peers are skipped (outcome ``skipped``) between probes."""
    logger = logging.getLogger("resto_fast")
    log = FailureLog()
    logger.addHandler(log)
    monkeypatch.setattr(logger, "propagate", False)  # thousands of records: counted, not kept
    try:
        with soak_peers(media) as peers:
            hosts = [kind.host for kind in peers.by_host.values()]
            with Replicator(
                hosts, "/media/", timeout=TIMEOUT, host_cooldown=cooldown, concurrency=CONCURRENCY
            ) as replicator:
                soak = Soak(media, peers, log, scratch, random.Random(seed))
                started = time.monotonic()
                soak.run(replicator, operations)
                elapsed = time.monotonic() - started
    finally:
        logger.removeHandler(log)
    print(soak.report(f"soak of {operations}, host_cooldown={cooldown}", elapsed))
    nginx_failures = sum(n for label, n in soak.outcomes["nginx"].items() if label != "ok")
    assert nginx_failures <= soak.outcomes["nginx"]["ok"] // 100, soak.outcomes["nginx"]
    assert not soak.problems, "\n".join(soak.problems[:30])
