"""The table of request kinds: which kind a request is, and what each kind promises."""

from __future__ import annotations

import pytest

from resto_fast._kinds import FIRST_FLIGHT, KINDS, kind_of
from resto_fast._operation import Operation
from resto_fast._results import Outcome


def test_a_request_is_of_one_kind() -> None:
    assert kind_of("PUT").name == "PUT"
    assert kind_of("PUT", whole=True).name == "PUT_BODY"
    assert kind_of("PUT", whole=True, size=FIRST_FLIGHT).name == "PUT_SMALL"
    assert kind_of("PUT", whole=True, size=FIRST_FLIGHT + 1).name == "PUT_BODY"
    assert kind_of("DELETE").name == "DELETE"
    assert kind_of("DELETE", directory=True).name == "DELETE_TREE"
    assert kind_of("PROPFIND", directory=True).name == "PROPFIND"  # a listing is of one
    with pytest.raises(ValueError, match="unsupported method 'PATCH'"):
        kind_of("PATCH")


def test_what_each_kind_promises() -> None:
    for kind in KINDS.values():
        assert kind.method in ("PUT", "DELETE", "MKCOL", "HEAD", "GET", "PROPFIND")
        # A write's answer is a verdict; a read's body is its progress, and for the kinds
        # that keep one, the body of exactly one status is the answer.
        assert (kind.answer == "read") == (kind.method in ("HEAD", "GET", "PROPFIND"))
        if kind.body_status is not None:
            assert kind.outcomes[kind.body_status] is Outcome.FOUND
        # Only PUTs can be answered before their body arrived, and only one too large for
        # the first flight of packets can be seen to have been.
        assert kind.watch_answer == (kind.method == "PUT" and kind.name != "PUT_SMALL")
    assert b"Depth: 0" in KINDS["DELETE"].headers  # never a directory with all below it
    assert not any(h.startswith(b"Depth") for h in KINDS["DELETE_TREE"].headers)


def test_a_body_that_leaves_in_the_first_flight_is_put_without_an_answer_watch() -> None:
    target = [("a:80", "http://a:80/media/x")]
    small = Operation("PUT", "x", target, body=b"s" * FIRST_FLIGHT)
    large = Operation("PUT", "x", target, body=b"l" * (FIRST_FLIGHT + 1))
    assert (small.kind.name, small.kind.watch_answer) == ("PUT_SMALL", False)
    assert (large.kind.name, large.kind.watch_answer) == ("PUT_BODY", True)
