"""Reading PROPFIND answers: what nginx, Apache and others send, and what must be refused."""

from __future__ import annotations

import pickle

import pytest

from resto_fast import HostError, InvalidResponseError
from resto_fast._webdav import PROPFIND_BODY, Listing, parse_listing

URL = "http://m1:8080/media/photos/"


def multistatus(*responses: str, namespace: str = 'xmlns:D="DAV:"') -> bytes:
    body = "".join(responses)
    head = '<?xml version="1.0" encoding="utf-8"?>'
    return f"{head}<D:multistatus {namespace}>{body}</D:multistatus>".encode()


def entry(href: str, *, collection: bool, prefix: str = "D") -> str:
    kind = f"<{prefix}:collection/>" if collection else ""
    return (
        f"<{prefix}:response><{prefix}:href>{href}</{prefix}:href><{prefix}:propstat>"
        f"<{prefix}:prop><{prefix}:resourcetype>{kind}</{prefix}:resourcetype></{prefix}:prop>"
        f"<{prefix}:status>HTTP/1.1 200 OK</{prefix}:status></{prefix}:propstat>"
        f"</{prefix}:response>"
    )


def parse(body: bytes, url: str = URL) -> Listing:
    return parse_listing(body, url, host="m1:8080")


def test_an_nginx_answer() -> None:
    body = multistatus(
        entry("/media/photos/", collection=True),
        entry("/media/photos/b.jpg", collection=False),
        entry("/media/photos/2024/", collection=True),
        entry("/media/photos/a.jpg", collection=False),
    )
    assert parse(body) == Listing(("2024",), ("a.jpg", "b.jpg"), is_collection=True)


def test_names_are_decoded_and_only_decoded_once() -> None:
    body = multistatus(
        entry("/media/photos/", collection=True),
        entry("/media/photos/a%20b/", collection=True),
        entry("/media/photos/%C3%A9t%C3%A9%20%F0%9F%98%80.png", collection=False),
        entry("/media/photos/100%2525.txt", collection=False),  # a file named "100%25.txt"
        entry("/media/photos/a+b%20(1)&amp;%3Cx%3E.txt", collection=False),  # nginx leaves +()&
        entry("/media/photos/q%3F%23.txt", collection=False),
    )
    listing = parse(body)
    assert listing.directories == ("a b",)
    assert listing.files == tuple(
        sorted(["été 😀.png", "100%25.txt", "a+b (1)&<x>.txt", "q?#.txt"])
    )


def test_unencoded_unicode_hrefs() -> None:
    body = multistatus(
        entry("/media/photos/", collection=True), entry("/media/photos/ß/", collection=True)
    )
    assert parse(body).directories == ("ß",)


def test_full_url_and_relative_hrefs_are_read_against_the_request() -> None:
    body = multistatus(
        entry("http://media.example.com/media/photos/", collection=True),  # the server's name
        entry("https://m1:8080/media/photos/x.jpg", collection=False),
        entry("y.jpg", collection=False),
        entry("sub/", collection=True),
    )
    assert parse(body) == Listing(("sub",), ("x.jpg", "y.jpg"))


@pytest.mark.parametrize(
    "namespace",
    [
        'xmlns:D="DAV:"',
        'xmlns:D="DAV:" xmlns:lp1="DAV:" xmlns:ns0="urn:other"',  # Apache declares several
    ],
)
def test_other_prefixes_for_the_dav_namespace(namespace: str) -> None:
    body = multistatus(
        entry("/media/photos/", collection=True),
        entry("/media/photos/d/", collection=True, prefix="lp1" if "lp1" in namespace else "D"),
        namespace=namespace,
    )
    assert parse(body).directories == ("d",)


def test_a_default_namespace_and_a_propstat_per_status() -> None:
    body = b"""<?xml version="1.0"?>
    <multistatus xmlns="DAV:">
      <response><href>/media/photos/</href>
        <propstat><prop><resourcetype><collection/></resourcetype></prop>
                  <status>HTTP/1.1 200 OK</status></propstat></response>
      <response><href>/media/photos/d/</href>
        <propstat><prop><displayname/></prop><status>HTTP/1.1 404 Not Found</status></propstat>
        <propstat><prop><resourcetype><collection/></resourcetype></prop>
                  <status>HTTP/1.1 200 OK</status></propstat></response>
      <response><href>
          /media/photos/f.txt
      </href><propstat><prop><resourcetype/></prop></propstat></response>
    </multistatus>"""
    assert parse(body) == Listing(("d",), ("f.txt",))


def test_an_element_in_another_namespace_is_not_a_collection() -> None:
    body = multistatus(
        entry("/media/photos/", collection=True),
        entry("/media/photos/x", collection=False).replace(
            "<D:resourcetype></D:resourcetype>",
            '<D:resourcetype><o:collection xmlns:o="urn:other"/></D:resourcetype>',
        ),
    )
    assert parse(body) == Listing((), ("x",))


def test_the_collection_itself_is_left_out_with_or_without_its_slash() -> None:
    for self_href in ("/media/photos/", "/media/photos", "/media/%70hotos/"):
        body = multistatus(entry(self_href, collection=True))
        assert parse(body) == Listing((), ())


def test_a_file_listed_as_a_directory_says_so() -> None:
    body = multistatus(entry("/media/photos/", collection=False))  # what nginx does
    assert parse(body).is_collection is False


def test_the_root_of_a_server() -> None:
    body = multistatus(entry("/", collection=True), entry("/top.txt", collection=False))
    assert parse(body, "http://m1:8080/") == Listing((), ("top.txt",))


def test_an_empty_multistatus_is_an_empty_collection() -> None:
    assert parse(multistatus()) == Listing((), ())


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not well-formed XML"),
        (b"<html><body>Welcome to nginx!</body></html>", "not DAV: multistatus"),
        (multistatus("<D:response>"), "not well-formed XML"),
        (multistatus("<D:response><D:href> </D:href></D:response>"), "no href"),
        (multistatus(entry("/elsewhere/x", collection=False)), "not directly inside"),
        (multistatus(entry("/media/photos/a/b.jpg", collection=False)), "not directly inside"),
        (multistatus(entry("/media/photos/a%2Fb", collection=False)), "not directly inside"),
        (multistatus(entry("/media/photos/%2e%2e/", collection=True)), "not directly inside"),
        (multistatus(entry("/media/photos/%FF.jpg", collection=False)), "cannot decode"),
        (multistatus(entry("http://[::1/x", collection=False)), "cannot decode"),
    ],
)
def test_what_cannot_be_trusted_is_refused_whole(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidResponseError, match=reason) as caught:
        parse(body)
    error = caught.value
    assert isinstance(error, HostError)
    assert (error.host, error.url, error.method) == ("m1:8080", URL, "PROPFIND")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


def test_the_request_body_asks_for_the_type_size_and_date_only() -> None:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(PROPFIND_BODY)
    assert root.tag == "{DAV:}propfind"
    assert [child.tag for child in root.iter()] == [
        "{DAV:}propfind",
        "{DAV:}prop",
        "{DAV:}resourcetype",
        "{DAV:}getcontentlength",
        "{DAV:}getlastmodified",
    ]


def test_sizes_and_dates_of_files() -> None:
    def with_facts(href: str, length: str, modified: str) -> str:
        return entry(href, collection=False).replace(
            "<D:prop>",
            f"<D:prop><D:getcontentlength>{length}</D:getcontentlength>"
            f"<D:getlastmodified>{modified}</D:getlastmodified>",
        )

    body = multistatus(
        entry("/media/photos/", collection=True),
        with_facts("/media/photos/a.jpg", "4096", "Sun, 06 Nov 1994 08:49:37 GMT"),
        with_facts("/media/photos/b.jpg", " 12 ", "Sunday, 06-Nov-94 08:49:37 GMT"),  # RFC 850
        with_facts("/media/photos/c.jpg", "-1", "yesterday"),  # unreadable: unknown
        entry("/media/photos/d.jpg", collection=False),  # nothing said
    )
    facts = parse(body).facts
    assert facts == {
        "a.jpg": (4096, 784111777.0),
        "b.jpg": (12, 784111777.0),
        "c.jpg": (None, None),
        "d.jpg": (None, None),
    }


def test_sizes_and_dates_in_a_separate_propstat() -> None:
    body = b"""<?xml version="1.0"?>
    <D:multistatus xmlns:D="DAV:">
      <D:response><D:href>/media/photos/x</D:href>
        <D:propstat><D:prop><D:getcontentlength/></D:prop>
                    <D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>
        <D:propstat><D:prop><D:getlastmodified>Sun, 06 Nov 1994 08:49:37 GMT</D:getlastmodified>
                    <D:resourcetype/></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
      </D:response>
    </D:multistatus>"""
    assert parse(body).facts == {"x": (None, 784111777.0)}
