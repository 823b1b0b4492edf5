"""resto-fast doctor against real nginx: a healthy host, and each way a host can fall short.

The command runs in-process through ``resto_fast._cli.main``; its table is
read back row by row, and nginx's roots and access log say what it really
did (nothing left behind, nothing touched outside its throw-away directory).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from resto_fast._cli import main
from resto_fast._doctor import _body_sizes
from testbed import BlackHole, FixedAnswer, Nginx, free_port, running

pytestmark = pytest.mark.nginx

MiB = 1024 * 1024
_HTTPS = "https://127.0.0.1/media/"  # the scheme and path; the host part is each host's
_HEADER = re.compile(r"(\S+)  \(probing (\S+)\)")
_ROW = re.compile(r"  (.{13}) (ok|warn|FAIL|skip) +(.*)")
_MORE = re.compile(r" {22}(?!fix: )(\S.*)")  # a detail's wrapped line (a fix's are indented more)

Table = dict[str, tuple[str, str]]  # check -> (state, detail with its wrapped lines)


def doctor(
    capsys: pytest.CaptureFixture[str],
    hosts: str,
    *options: str,
    status: int,
    base_url: str = "/media/",
    max_size: str = "1MiB",
) -> str:
    """Run ``resto-fast doctor`` on ``hosts``, check its exit status; what it printed."""
    arguments = ["--hosts", hosts, "--base-url", base_url, "--max-size", max_size, *options]
    code = main(["doctor", *arguments])
    captured = capsys.readouterr()
    assert (code, captured.err) == (status, ""), captured.out
    return captured.out


def tables(out: str) -> dict[str, Table]:
    """Each host's rows, as printed: check name -> (state, detail); fix lines are left out."""
    found: dict[str, Table] = {}
    table: Table = {}
    last = ""
    for line in out.splitlines():
        if header := _HEADER.fullmatch(line):
            table = found[header[1]] = {}
        elif row := _ROW.fullmatch(line):
            last = row[1].strip()
            table[last] = (row[2], row[3])
        elif more := _MORE.fullmatch(line):
            state, detail = table[last]
            table[last] = (state, f"{detail} {more[1]}")
    return found


def flat(out: str) -> str:
    """The output with its wrapping undone, to look for a phrase whatever the line breaks."""
    return " ".join(out.split())


def only_table(out: str) -> Table:
    (table,) = tables(out).values()
    return table


def left_in(root: Path) -> list[str]:
    """Everything under a host's /media/ directory (which may not exist)."""
    media = root / "media"
    return sorted(str(path.relative_to(media)) for path in media.rglob("*"))


def test_a_healthy_host_passes_every_check_and_leaves_nothing_behind(
    media: Nginx, capsys: pytest.CaptureFixture[str]
) -> None:
    hosts = ",".join(media.hosts)
    out = doctor(capsys, hosts, max_size="4MiB", status=0)
    found = tables(out)
    assert list(found) == media.hosts
    for host, table in found.items():
        assert {state for state, _ in table.values()} == {"ok"}, out
        assert table["largest body"] == ("ok", "4.0 MiB accepted (tried 1.0 MiB, 4.0 MiB)")
        assert f"{host}: ready for replication" in out.splitlines()
    for index, host in enumerate(media.hosts):
        assert left_in(media.root(index)) == []
        requests = media.requests(host)
        assert {r.method for r in requests} == {"PUT", "GET", "HEAD", "PROPFIND", "DELETE"}
        assert all(re.match(r"/media/\.resto-doctor-[0-9a-f]{12}/", r.uri) for r in requests)
        assert len({r.connection for r in requests}) == 1  # keep-alive, seen from nginx's side


def test_without_dav_ext_propfind_only_warns(
    media: Nginx, capsys: pytest.CaptureFixture[str]
) -> None:
    host = media.plain_host
    out = doctor(capsys, host, status=0)
    table = only_table(out)
    assert table["PROPFIND"] == ("warn", "cannot list (HTTP 405)")
    assert "load nginx's dav-ext module (dav_ext_methods PROPFIND OPTIONS;)" in flat(out)
    assert "resync falls back to HEAD per file" in flat(out)
    assert f"{host}: ready for replication (warnings: PROPFIND)" in out.splitlines()
    assert left_in(media.root(0)) == []


def test_a_server_that_makes_no_directories_needs_mkcol_and_make_directories(
    media: Nginx, capsys: pytest.CaptureFixture[str]
) -> None:
    host = media.strict_host
    out = doctor(capsys, host, status=0)
    table = only_table(out)
    state, detail = table["directories"]
    assert state == "warn"
    assert detail.startswith("a PUT into missing directories answered HTTP 500;")  # nginx's way
    assert detail.endswith("after MKCOL it works")
    # nginx answers 500, not the 409 that make_directories="auto" waits for: True is needed.
    assert "use make_directories=True (--make-directories always" in flat(out)
    assert table["PUT new"] == ("ok", "HTTP 201 Created")
    # The base directory did not exist: MKCOL made it, and it stays (replication needs it).
    assert table["cleanup"] == (
        "ok",
        "removed everything written; kept the base directory /media/ it made",
    )
    assert left_in(media.root(0)) == []
    mkcols = [r.uri for r in media.requests(host) if r.method == "MKCOL"]
    assert mkcols[0] == "/media/"
    assert [uri.split("/", 3)[3] for uri in mkcols[1:]] == ["", "a/", "a/b/"]

    out = doctor(capsys, host, "--make-directories", status=0)
    state, detail = only_table(out)["directories"]
    assert state == "ok"
    assert detail.endswith("after MKCOL it works, and make_directories is on")


def test_a_host_that_refuses_this_client_cannot_serve_replication(
    media: Nginx, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="resto_fast")
    host = media.status_host(403)
    out = doctor(capsys, host, status=1)
    table = only_table(out)
    assert table["connect"] == ("ok", "answered HTTP 403")
    assert table["auth"] == ("FAIL", "none configured; PUT answered HTTP 403")
    assert "the server wants credentials or refuses this client's address" in flat(out)
    assert "`allow ADDRESS;`" in flat(out)
    assert table["PUT new"] == ("FAIL", "HTTP 403")
    assert table["GET"] == ("skip", "PUT new failed")
    assert table["cleanup"] == ("ok", "nothing was written")
    assert out.splitlines()[-1].startswith(f"{host}: cannot serve replication: PUT new: HTTP 403")
    assert "DELETE" not in {r.method for r in media.requests(host)}
    assert caplog.records == []  # each failure is a row of the table, not a log line too


def test_one_bad_host_fails_the_run_and_is_named(
    media: Nginx, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = media.hosts[0], media.status_host(500)
    hosts = f"{good},{bad}"
    out = doctor(capsys, hosts, status=1)
    verdicts = out.splitlines()[-2:]
    assert verdicts[0] == f"{good}: ready for replication"
    assert verdicts[1].startswith(f"{bad}: cannot serve replication: PUT new: HTTP 500")
    assert "read its error log" in flat(out)


def test_a_refused_port_is_named_with_its_fix(capsys: pytest.CaptureFixture[str]) -> None:
    host = f"127.0.0.1:{free_port()}"
    out = doctor(capsys, host, status=1)
    table = only_table(out)
    state, detail = table["connect"]
    assert (state, detail.split(":")[0]) == ("FAIL", "refused")
    assert "nothing listens there: start the media server" in flat(out)
    assert {table[name] for name in table if name not in ("connect", "cleanup")} == {
        ("skip", "no connection")
    }
    assert table["cleanup"] == ("ok", "nothing was written")
    assert out.splitlines()[-1].startswith(f"{host}: cannot serve replication: connect: refused")


def test_a_host_that_never_answers_is_given_up(capsys: pytest.CaptureFixture[str]) -> None:
    with running(BlackHole()) as peer:
        out = doctor(capsys, peer.host, "--timeout", "0.3", status=1)
    state, detail = only_table(out)["connect"]
    assert state == "FAIL"
    assert detail.startswith("stalled")


def test_https_with_the_servers_ca_is_verified(
    media: Nginx, capsys: pytest.CaptureFixture[str]
) -> None:
    certificate = str(media.certificate)
    out = doctor(capsys, media.tls_hosts[0], "--ca-file", certificate, base_url=_HTTPS, status=0)
    table = only_table(out)
    assert table["TLS"] == ("ok", "certificate verified")
    assert {state for state, _ in table.values()} == {"ok"}
    assert left_in(media.root(0)) == []


def test_https_without_the_ca_explains_the_tls_failure(
    media: Nginx, capsys: pytest.CaptureFixture[str]
) -> None:
    host = media.tls_hosts[0]
    out = doctor(capsys, host, base_url=_HTTPS, status=1)
    table = only_table(out)
    assert table["connect"] == ("ok", "TCP connection made")
    state, detail = table["TLS"]
    assert state == "FAIL"
    assert detail.startswith("tls:")
    assert "certificate" in detail
    assert "with --ca-file (RESTO_CA_FILE)" in flat(out)
    assert out.splitlines()[-1].startswith(f"{host}: cannot serve replication: TLS: tls:")
    assert media.requests(host) == []  # no request got through


def test_no_verify_tls_works_but_warns(media: Nginx, capsys: pytest.CaptureFixture[str]) -> None:
    out = doctor(capsys, media.tls_hosts[0], "--no-verify-tls", base_url=_HTTPS, status=0)
    assert only_table(out)["TLS"] == ("warn", "certificate not checked (--no-verify-tls)")


def test_a_body_limit_is_found_and_its_fix_named(
    media: Nginx, capsys: pytest.CaptureFixture[str]
) -> None:
    host = media.small_body_host  # client_max_body_size 1m
    out = doctor(capsys, host, max_size="5MiB", status=1)
    table = only_table(out)
    assert table["largest body"] == ("FAIL", "4.0 MiB refused: HTTP 413; 1.0 MiB was accepted")
    assert "nginx `client_max_body_size 0;`" in flat(out)
    assert "Apache `LimitRequestBody 0`" in flat(out)
    assert all(state == "ok" for name, (state, _) in table.items() if name != "largest body")
    assert out.splitlines()[-1].startswith(f"{host}: cannot serve replication: largest body:")
    assert left_in(media.root(0)) == []


def test_what_cannot_be_removed_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    """A peer that answers 201 to everything: it takes PUTs, but no GET, and no DELETE."""
    with running(FixedAnswer(201, b"")) as peer:
        out = doctor(capsys, peer.host, status=1)
    table = only_table(out)
    assert table["GET"] == ("FAIL", "HTTP 201")
    assert table["DELETE"] == ("FAIL", "HTTP 201")
    state, detail = table["cleanup"]
    assert state == "warn"
    assert detail.startswith(f"could not remove http://{peer.host}/media/.resto-doctor-")
    assert detail.endswith("(HTTP 201): do it by hand")


def test_a_largest_body_of_nothing_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", "--hosts", "127.0.0.1:9", "--base-url", "/media/", "--max-size", "0"])
    assert code == 2
    assert "at least 1 byte" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("max_size", "sizes"),
    [
        (64 * MiB, [MiB, 4 * MiB, 16 * MiB, 64 * MiB]),
        (10 * MiB, [MiB, 4 * MiB, 10 * MiB]),
        (MiB, [MiB]),
        (1000, [1000]),
    ],
)
def test_body_sizes_grow_fourfold_up_to_the_limit(max_size: int, sizes: list[int]) -> None:
    assert _body_sizes(max_size) == sizes
