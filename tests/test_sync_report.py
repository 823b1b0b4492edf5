"""What a resync reports: counts added up across processes, the verdict, the exit status."""

from __future__ import annotations

import dataclasses
import json

import pytest

from resto_fast import ConfigurationError, ReplicatorConfig
from resto_fast._sync import HostTally, SyncOptions, SyncReport, Tally

CONFIG = ReplicatorConfig(hosts=("h1:8080", "h2:8080"), base_url="/media/")


def options(**changes: object) -> SyncOptions:
    given: dict[str, object] = {"source_dir": "/srv/media", **changes}
    return SyncOptions(config=CONFIG, **given)  # type: ignore[arg-type]


def tally(h1: HostTally, h2: HostTally | None = None) -> Tally:
    return Tally(hosts={"h1:8080": h1, "h2:8080": h2 or HostTally()}, files=10, directories=2)


def test_tallies_add_up_across_processes() -> None:
    total = Tally()
    total.add(tally(HostTally(listed=3, missing=1, down="refused"), HostTally(cannot_list=True)))
    total.add(tally(HostTally(listed=4, uploaded=1), HostTally(failed=2)))
    assert total.files == 20
    assert total.hosts["h1:8080"] == HostTally(listed=7, missing=1, uploaded=1, down="refused")
    assert total.hosts["h2:8080"] == HostTally(failed=2, cannot_list=True)


@pytest.mark.parametrize(
    ("changes", "host", "status"),
    [
        ({}, HostTally(listed=10), 0),
        ({}, HostTally(missing=2, uploaded=2), 0),  # repaired
        ({}, HostTally(missing=2, uploaded=1, failed=1), 1),
        ({"verify": True}, HostTally(missing=1), 1),
        ({"dry_run": True}, HostTally(differing=1), 1),
        ({"verify": True}, HostTally(extra=3), 0),  # extras count only with --delete
        ({"verify": True, "delete": True}, HostTally(extra=3), 1),
        ({"delete": True}, HostTally(extra=3, deleted=3), 0),
    ],
)
def test_the_exit_status(changes: dict[str, bool], host: HostTally, status: int) -> None:
    report = SyncReport(options(**changes), tally(host), 1.0)
    assert report.exit_code == status
    assert report.verdict().startswith("OK" if status == 0 else "DIFFERENT")


def test_interrupted_and_incomplete_runs_are_not_ok() -> None:
    assert SyncReport(options(), tally(HostTally()), 1.0, interrupted=True).exit_code == 130
    report = SyncReport(options(), tally(HostTally()), 1.0, incomplete="worker 1 died (-9)")
    assert report.exit_code == 1
    assert report.verdict() == "INCOMPLETE: worker 1 died (-9)"
    unreadable = dataclasses.replace(tally(HostTally()), unreadable=1)
    assert SyncReport(options(), unreadable, 1.0).exit_code == 1


def test_the_table_and_the_json_say_the_same() -> None:
    report = SyncReport(
        options(delete=True),
        tally(HostTally(listed=9, missing=1, uploaded=1), HostTally(failed=10, down="refused: x")),
        0.5,
    )
    table = report.table().splitlines()
    assert table[0].split() == [
        "host", "listed", "missing", "differing", "extra", "uploaded", "deleted", "failed"
    ]  # fmt: skip
    assert table[1].split() == ["h1:8080", "9", "1", "0", "0", "1", "0", "0"]
    assert table[2].startswith("h2:8080")
    assert "given up: refused: x" in table[2]
    assert table[-1] == "DIFFERENT: 1 of 2 hosts still differ: h2:8080"
    summary = json.loads(json.dumps(report.to_json()))
    assert summary["exit_status"] == 1
    assert summary["hosts"]["h2:8080"]["remaining"] == 10
    assert summary["hosts"]["h2:8080"]["down"] == "refused: x"


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"source_dir": None}, "name the source"),
        ({"source_host": "h3:8080"}, "not both"),
        ({"prefix": "../x"}, "invalid --prefix"),
        ({"processes": 0}, "processes must be"),
        ({"concurrency": True}, "concurrency must be"),
    ],
)
def test_options_are_refused_with_a_reason(changes: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        options(**changes)


def test_a_source_host_is_not_a_target() -> None:
    chosen = SyncOptions(config=CONFIG, source_host="h1:8080")
    assert chosen.config.hosts == ("h2:8080",)
    assert chosen.source == "host h1:8080"
    with pytest.raises(ConfigurationError, match="other than the source"):
        SyncOptions(config=dataclasses.replace(CONFIG, hosts=("h1:8080",)), source_host="h1:8080")
    assert options(prefix="/photos/2024/").prefix == "photos/2024"
