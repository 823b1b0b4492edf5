"""How status codes are read, and what results say and raise."""

from __future__ import annotations

import pytest

from resto_fast import (
    HostResult,
    OperationResult,
    Outcome,
    ReplicationError,
    SourceError,
    TransportError,
    UnexpectedStatusCode,
)
from resto_fast._kinds import KINDS


@pytest.mark.parametrize(
    ("method", "status", "outcome"),
    [
        ("PUT", 201, Outcome.CREATED),
        ("PUT", 204, Outcome.REPLACED),
        ("PUT", 200, Outcome.REPLACED),
        ("PUT", 202, None),
        ("PUT", 301, None),
        ("PUT", 404, None),
        ("PUT", 500, None),
        ("DELETE", 200, Outcome.DELETED),
        ("DELETE", 204, Outcome.DELETED),
        ("DELETE", 404, Outcome.ALREADY_GONE),
        ("DELETE", 410, Outcome.ALREADY_GONE),
        ("DELETE", 202, None),
        ("DELETE", 403, None),
        ("HEAD", 200, Outcome.FOUND),
        ("HEAD", 404, Outcome.MISSING),
        ("HEAD", 410, Outcome.MISSING),
        ("HEAD", 302, None),
        ("GET", 200, Outcome.FOUND),
        ("GET", 404, Outcome.MISSING),
        ("GET", 503, None),
        ("PROPFIND", 207, Outcome.FOUND),
        ("PROPFIND", 404, Outcome.MISSING),
        ("PROPFIND", 410, Outcome.MISSING),
        ("PROPFIND", 200, None),
        ("PROPFIND", 405, None),
        ("PROPFIND", 501, None),
    ],
)
def test_status_codes_as_django_resto_reads_them(
    method: str, status: int, outcome: Outcome | None
) -> None:
    assert KINDS[method].outcomes.get(status) is outcome


def host(name: str, outcome: Outcome, error: object = None, status: int | None = 201) -> HostResult:
    return HostResult(
        host=name,
        url=f"http://{name}/media/a",
        method="PUT",
        outcome=outcome,
        status=status,
        transferred=10,
        elapsed=0.01,
        error=error,  # type: ignore[arg-type]
    )


def test_a_clean_result_raises_nothing_and_chains() -> None:
    result = OperationResult(
        "PUT", "a", (host("m1", Outcome.CREATED), host("m2", Outcome.REPLACED, status=204))
    )
    assert result.ok
    assert result.raise_for_failures() is result
    assert result.succeeded == ("m1", "m2")
    assert result["m2"].status == 204
    assert [r.host for r in result] == ["m1", "m2"]
    with pytest.raises(KeyError):
        result["m3"]


def test_failures_raise_one_error_naming_every_failed_host() -> None:
    refused = TransportError(
        "refused: nope", host="m2", url="u", method="PUT", reason="refused", curl_code=7
    )
    broken = UnexpectedStatusCode("HTTP 500", host="m3", url="u", method="PUT", code=500)
    result = OperationResult(
        "PUT",
        "a.jpg",
        (
            host("m1", Outcome.CREATED),
            host("m2", Outcome.FAILED, refused, None),
            host("m3", Outcome.FAILED, broken, 500),
        ),
    )
    assert not result.ok
    with pytest.raises(ReplicationError) as caught:
        result.raise_for_failures()
    error = caught.value
    assert error.failures == {"m2": refused, "m3": broken}
    assert error.succeeded == ("m1",)
    assert str(error) == "PUT 'a.jpg' failed on 2 of 3 hosts: m2 (refused: nope); m3 (HTTP 500)"


def test_a_source_error_comes_first() -> None:
    source_error = SourceError("reading failed", name="a")
    result = OperationResult("PUT", "a", (), source_error)
    assert not result.ok
    with pytest.raises(SourceError):
        result.raise_for_failures()
