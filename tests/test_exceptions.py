"""The error tree: what each error is, and that every one pickles with its attributes."""

from __future__ import annotations

import pickle

import pytest

from resto_fast import (
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

HOST = {"host": "m1:80", "url": "http://m1:80/media/a", "method": "PUT"}


def samples() -> list[RestoError]:
    status = UnexpectedStatusCode("HTTP 500", code=500, **HOST)
    transport = TransportError("refused: no", reason="refused", curl_code=7, **HOST)
    return [
        ConfigurationError("bad host"),
        InvalidNameError("absolute", name="/a"),
        SourceError("cannot read", name="a"),
        NotFoundError("gone", name="a", host="m1:80"),
        HostError("plain", **HOST),
        InvalidResponseError("not XML", **HOST),
        status,
        transport,
        ReplicationError(
            "failed",
            name="a",
            method="PUT",
            failures={"m1:80": status, "m2:80": transport},
            succeeded=["m3:80"],
        ),
    ]


@pytest.mark.parametrize("error", samples(), ids=lambda e: type(e).__name__)
def test_every_error_pickles_with_its_attributes(error: RestoError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__.keys() == error.__dict__.keys()
    for key, value in error.__dict__.items():
        if isinstance(value, dict):
            assert {k: (type(v), str(v)) for k, v in getattr(copy, key).items()} == {
                k: (type(v), str(v)) for k, v in value.items()
            }
        else:
            assert getattr(copy, key) == value


def test_the_tree() -> None:
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(InvalidNameError, ValueError)
    assert issubclass(SourceError, OSError)
    assert issubclass(NotFoundError, FileNotFoundError)
    assert issubclass(UnexpectedStatusCode, HostError)
    assert issubclass(TransportError, HostError)
    assert issubclass(InvalidResponseError, HostError)
    for cls in (
        ConfigurationError,
        InvalidNameError,
        SourceError,
        NotFoundError,
        HostError,
        ReplicationError,
    ):
        assert issubclass(cls, RestoError)


def test_the_docstring_draws_every_error() -> None:
    from resto_fast import _exceptions

    assert _exceptions.__doc__ is not None
    for name in _exceptions.__all__:
        assert name in _exceptions.__doc__
