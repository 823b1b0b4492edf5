"""Which names may reach a media server, and the URL each gets."""

from __future__ import annotations

import pytest

from resto_fast import InvalidNameError
from resto_fast._names import encode_directory, encode_name, host_url


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("a.txt", "a.txt"),
        ("photos/2024/a b.jpg", "photos/2024/a%20b.jpg"),
        ("100%.txt", "100%25.txt"),
        ("what?#.txt", "what%3F%23.txt"),
        ("c++.txt", "c%2B%2B.txt"),
        ("été/ß.txt", "%C3%A9t%C3%A9/%C3%9F.txt"),
        ("😀.png", "%F0%9F%98%80.png"),
        ("semi;colon=&.txt", "semi%3Bcolon%3D%26.txt"),
        ("..hidden/x..y", "..hidden/x..y"),
    ],
)
def test_names_are_percent_encoded_as_utf8(name: str, encoded: str) -> None:
    assert encode_name(name) == encoded


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/etc/passwd",
        "../up.txt",
        "a/../../b",
        "a/..",
        "./a",
        "a//b",
        "dir/",
        "nul\x00byte",
        "new\nline",
        "tab\there",
        "del\x7f",
        "c1\x85control",
        "back\\slash",
        "lone\udcffsurrogate",
    ],
)
def test_dangerous_names_are_refused_before_any_request(name: str) -> None:
    with pytest.raises(InvalidNameError) as caught:
        encode_name(name)
    assert isinstance(caught.value, ValueError)
    assert caught.value.name == name


def test_a_non_string_name_is_refused() -> None:
    with pytest.raises(InvalidNameError, match="must be a string"):
        encode_name(b"bytes.txt")  # type: ignore[arg-type]


def test_the_host_is_swapped_into_the_base_url() -> None:
    assert host_url("https", "[::1]:8443", "/media/", "a%20b") == "https://[::1]:8443/media/a%20b"


@pytest.mark.parametrize(
    ("path", "encoded"),
    [("", ""), ("photos", "photos/"), ("photos/", "photos/"), ("a b/été", "a%20b/%C3%A9t%C3%A9/")],
)
def test_directories_are_encoded_like_names_and_end_with_a_slash(path: str, encoded: str) -> None:
    assert encode_directory(path) == encoded


@pytest.mark.parametrize("path", ["/", "/abs", "a//", "../up", "a/./b", "a\x00", "..", "."])
def test_dangerous_directories_are_refused(path: str) -> None:
    with pytest.raises(InvalidNameError):
        encode_directory(path)
