"""The frozen configuration: hosts, base URL and options are validated once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from resto_fast import ConfigurationError, Replicator, ReplicatorConfig
from resto_fast._config import parse_host


@pytest.mark.parametrize(
    ("host", "normal"),
    [
        ("media", "media"),
        ("media-01:8080", "media-01:8080"),
        ("Media.Example.COM", "media.example.com"),
        ("media.example.com.", "media.example.com"),  # the root's dot
        ("10.0.0.5", "10.0.0.5"),
        ("10.0.0.5:0080", "10.0.0.5:80"),
        ("[::1]", "[::1]"),
        ("[0:0::1]:8080", "[::1]:8080"),
        ("[2001:DB8::0:1]", "[2001:db8::1]"),
    ],
)
def test_valid_hosts_are_normalized(host: str, normal: str) -> None:
    assert parse_host(f" {host} ") == normal


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("", r"expected 'host\[:port\]'"),
        ("http://media", "without a scheme"),
        ("http://127.0.0.1:8080", "without a scheme"),
        ("media/path", "expected"),
        ("::1", "brackets"),
        ("[::1", "expected"),
        ("[nope]:80", "IPv6"),
        ("[fe80::1%eth0]:80", "zone index"),
        ("media:0", "port"),
        ("media:70000", "port"),
        ("a b", "expected"),
        (".", "no DNS name"),
        ("..", "no DNS name"),
        ("-", "no DNS name"),
        ("-media", "no DNS name"),
        ("media..example", "no DNS name"),
        ("999.999.999.999", "IPv4"),
        ("10.0.0", "IPv4"),
        ("a" * 64 + ".example", "no DNS name"),
    ],
)
def test_invalid_hosts_are_refused_with_a_reason(host: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        parse_host(host)


def test_bare_ipv6_gets_a_hint() -> None:
    with pytest.raises(ConfigurationError, match="brackets"):
        parse_host("::1:8080")


@pytest.mark.parametrize(
    ("hosts", "base_url"),
    [
        (["a:1", "A:1"], "/m/"),
        (["a", "a:80"], "/m/"),
        (["a:443", "a"], "https://x/m/"),
        (["[::1]", "[0:0::1]"], "/m/"),
        (["10.0.0.1:8080", "10.0.0.1:08080"], "/m/"),
    ],
)
def test_one_server_spelled_twice_is_refused(hosts: list[str], base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="listed twice"):
        ReplicatorConfig(hosts=tuple(hosts), base_url=base_url)


def test_the_default_port_of_the_scheme_is_dropped() -> None:
    assert ReplicatorConfig(hosts=("a:80", "b:443"), base_url="/m/").hosts == ("a", "b:443")
    assert ReplicatorConfig(hosts=("a:80", "b:443"), base_url="https://x/m/").hosts == (
        "a:80",
        "b",
    )


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
    ("base_url", "says"),
    [
        ("/media/?x=1", "query"),
        ("/media/#top", "query"),
        ("/media/?", "query"),
        ("ftp://h/media/", "http or https"),
        ("/media", "start and end"),
        ("media/", "start and end"),
        ("/a/../b/", "'..' segment"),  # files would land in b/
        ("/a/./b/", "'.' segment"),
        ("/a/%2e%2E/b/", "'..' segment"),
        ("/a//b/", "empty segment"),
        ("/a%2Fb/", "encoded '/'"),  # files would land in a subfolder
        ("/a%zz/", "percent-escape"),
        ("/a%/", "percent-escape"),
        ("http://user:secret@h/media/", "credentials"),
        ("/me\tdia/", "control character"),
        ("/me\x7fdia/", "control character"),
        ("/me\\dia/", "backslash"),
        (5, "must be a string"),
    ],
)
def test_bad_base_urls_are_refused_with_a_reason(base_url: object, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says) as caught:
        ReplicatorConfig(base_url=base_url)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)  # as django-resto raised
    assert "secret" not in str(caught.value)


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
        ("timeout", 1e20),  # overflowed at the first put
        ("total_timeout", 10**9),
        ("concurrency", 10**6),
        ("host_cooldown", -1),
        ("verify_tls", "no"),  # meant True
        ("make_directories", "no"),
        ("log_tracebacks", 1),
        ("ca_file", 5),  # failed at the first put
        ("ca_file", "/nonexistent/ca.pem"),
    ],
)
def test_bad_options(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=field):
        ReplicatorConfig(**{field: value})  # type: ignore[arg-type]


def test_the_replicator_refuses_unknown_options_and_no_host_list() -> None:
    accepted = r"unknown option.*timout.*accepted: auth, ca_file"
    with pytest.raises(ConfigurationError, match=accepted):
        Replicator(["a"], timout=3)
    with pytest.raises(ConfigurationError, match="hosts must be a list"):
        Replicator(None)  # type: ignore[arg-type]


def test_a_ca_file_is_kept_as_a_path_string(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here: libcurl reads it")
    assert ReplicatorConfig(ca_file=ca).ca_file == str(ca)  # type: ignore[arg-type]


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
