"""The frozen configuration: hosts, base URL and options are validated once."""

from __future__ import annotations

import dataclasses

import pytest

from resto_fast import ConfigurationError, ReplicatorConfig
from resto_fast._config import parse_host


@pytest.mark.parametrize(
    "host",
    [
        "media",
        "media-01:8080",
        "10.0.0.5",
        "10.0.0.5:80",
        "[::1]",
        "[::1]:8080",
        "[fe80::1%eth0]:80",
    ],
)
def test_valid_hosts(host: str) -> None:
    assert parse_host(f" {host} ") == host


@pytest.mark.parametrize(
    "host",
    ["", "http://media", "media/path", "::1", "[::1", "[nope]:80", "media:0", "media:70000", "a b"],
)
def test_invalid_hosts(host: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_host(host)


def test_bare_ipv6_gets_a_hint() -> None:
    with pytest.raises(ConfigurationError, match="brackets"):
        parse_host("::1:8080")


@pytest.mark.parametrize(
    ("base_url", "scheme", "path"),
    [
        ("/media/", "http", "/media/"),
        ("http://cdn.example.com/media/", "http", "/media/"),
        ("https://cdn.example.com/", "https", "/"),
        ("//cdn.example.com/m/", "http", "/m/"),
        ("/média files/", "http", "/m%C3%A9dia%20files/"),
    ],
)
def test_base_url_gives_scheme_and_path(base_url: str, scheme: str, path: str) -> None:
    config = ReplicatorConfig(base_url=base_url)
    assert (config.scheme, config.base_path) == (scheme, path)


@pytest.mark.parametrize(
    "base_url", ["/media/?x=1", "/media/#top", "/media/?", "ftp://h/media/", "/media", "media/"]
)
def test_bad_base_urls(base_url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ReplicatorConfig(base_url=base_url)
    assert isinstance(caught.value, ValueError)  # as django-resto raised


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timeout", 0),
        ("timeout", -1.0),
        ("timeout", float("inf")),
        ("timeout", "2"),
        ("total_timeout", 0),
        ("concurrency", 0),
        ("concurrency", 1.5),
        ("chunk_size", True),
        ("window_size", 1),
        ("upload_buffer_size", 1024),
        ("upload_buffer_size", 3 * 1024 * 1024),
    ],
)
def test_bad_options(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=field.split("_")[0]):
        ReplicatorConfig(**{field: value})  # type: ignore[arg-type]


def test_hosts_are_normalized_and_duplicates_refused() -> None:
    config = ReplicatorConfig(hosts=[" a:1", "b"])  # type: ignore[arg-type]
    assert config.hosts == ("a:1", "b")
    with pytest.raises(ConfigurationError, match="twice"):
        ReplicatorConfig(hosts=("a", "a"))
    with pytest.raises(ConfigurationError, match="list"):
        ReplicatorConfig(hosts="a:1")  # type: ignore[arg-type]


def test_config_is_frozen_and_replace_validates() -> None:
    config = ReplicatorConfig(hosts=("a",), base_url="/m/")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.timeout = 5  # type: ignore[misc]
    other = dataclasses.replace(config, base_url="https://x/n/")
    assert (other.scheme, other.base_path, other.hosts) == ("https", "/n/", ("a",))
    with pytest.raises(ConfigurationError):
        dataclasses.replace(config, timeout=-1)
    assert "hosts=('a',)" in repr(config)
    assert config.window_chunks == config.window_size // config.chunk_size
