"""Interop: one Replicator with default options, on every brand of WebDAV media server.

lighttpd (mod_webdav), Apache httpd (mod_dav_fs) and WsgiDAV, started by
testbed/dav.py, and the session's nginx (its first host, configured as
docs/media-servers.md says).  They answer the same methods in their own ways:
a PUT into a missing directory is 409 on all but nginx, a HEAD of a directory
is a redirect or an empty page, hrefs are encoded differently.  Whatever the
brand, a ``Replicator([host], "/media/")`` must store a file byte for byte
under exactly its name, replace it, delete it, make the directories it needs,
and read back sizes, dates, contents and listings.  Where a brand answers
wrongly in a way no client can see through (nginx's dav-ext lists no dot
files, lighttpd serves a file for the URLs below it), the test says so.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Protocol

import pytest

from resto_fast import NotFoundError, Outcome, Replicator, UnexpectedStatusCode
from testbed import Nginx, unavailable
from testbed.dav import DAV_SERVERS, started
from tests.sync_support import make_tree, run, sync_args


class MediaHost(Protocol):
    """What the tests need of a media server: one host, and where its files land."""

    @property
    def brand(self) -> str: ...
    @property
    def creates_directories(self) -> bool: ...
    @property
    def host(self) -> str: ...
    def path(self, name: str) -> Path: ...
    def clear(self) -> None: ...


class NginxHost:
    """The session's nginx as one media host: its first, with create_full_put_path
    (it makes missing directories itself) and the dav-ext module (PROPFIND)."""

    brand: ClassVar[str] = "nginx"
    creates_directories: ClassVar[bool] = True

    def __init__(self, nginx: Nginx) -> None:
        self.nginx = nginx

    @property
    def host(self) -> str:
        return self.nginx.hosts[0]

    def path(self, name: str) -> Path:
        return self.nginx.path(0, name)

    def clear(self) -> None:
        self.nginx.clear()


@pytest.fixture(scope="module", params=[*DAV_SERVERS, "nginx"])
def server(request: pytest.FixtureRequest) -> Iterator[MediaHost]:
    """Each brand, started once for the module (nginx: the session's)."""
    if request.param == "nginx":
        nginx: Nginx = request.getfixturevalue("nginx")
        if not nginx.propfind:
            unavailable("nginx's dav-ext module is missing (scripts/test installs it)")
        yield NginxHost(nginx)
        return
    with started(DAV_SERVERS[request.param]) as running:
        yield running


@pytest.fixture
def dav(server: MediaHost) -> MediaHost:
    """The brand's server with an empty media directory."""
    server.clear()
    return server


@pytest.fixture
def resto(dav: MediaHost) -> Iterator[Replicator]:
    """A replicator on the brand's host with every option left at its default."""
    with Replicator(hosts=[dav.host], base_url="/media/") as replicator:
        yield replicator


def seed(dav: MediaHost, names: list[str]) -> None:
    """Files (and, for a name ending in a slash, directories) put straight on the disk,
    for tests of reads: each file holds its own name."""
    for name in names:
        path = dav.path(name)
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(name.encode())


# -- writes ----------------------------------------------------------------------------


def test_a_put_lands_byte_for_byte(dav: MediaHost, resto: Replicator) -> None:
    content = bytes(range(256)) * 4
    (result,) = resto.put("a.bin", content)
    assert (result.outcome, result.status, result.error) == (Outcome.CREATED, 201, None)
    assert dav.path("a.bin").read_bytes() == content


def test_an_empty_file(dav: MediaHost, resto: Replicator) -> None:
    (result,) = resto.put("empty.txt", b"")
    assert result.outcome is Outcome.CREATED, result
    assert dav.path("empty.txt").read_bytes() == b""
    assert resto.get("empty.txt") == b""


@pytest.mark.parametrize(
    "name", ["large.bin", "new/dir/large.bin"], ids=["flat", "into new directories"]
)
def test_a_large_file_streams(dav: MediaHost, resto: Replicator, tmp_path: Path, name: str) -> None:
    """Larger than a chunk: read from a file through the window, not sent whole; into new
    directories, refused (409) after some of its body went, then sent again from the start."""
    content = os.urandom(3 * 1024 * 1024 + 1)
    source = tmp_path / "large.bin"
    source.write_bytes(content)
    (result,) = resto.put(name, source)
    assert result.outcome is Outcome.CREATED, result
    assert dav.path(name).read_bytes() == content


def test_a_second_put_replaces_the_file(dav: MediaHost, resto: Replicator) -> None:
    resto.put("a.txt", b"first").raise_for_failures()
    (longer,) = resto.put("a.txt", b"second, longer")
    assert longer.outcome is Outcome.REPLACED, longer
    assert longer.status in (200, 204)
    assert dav.path("a.txt").read_bytes() == b"second, longer"
    (shorter,) = resto.put("a.txt", b"3")
    assert shorter.outcome is Outcome.REPLACED, shorter
    assert dav.path("a.txt").read_bytes() == b"3"  # replaced, not overwritten in place


def test_a_delete_removes_the_file_and_a_second_finds_it_gone(
    dav: MediaHost, resto: Replicator
) -> None:
    resto.put("a.txt", b"a").raise_for_failures()
    (deleted,) = resto.delete("a.txt")
    assert deleted.outcome is Outcome.DELETED, deleted
    assert deleted.status in (200, 204)
    assert not dav.path("a.txt").exists()
    (again,) = resto.delete("a.txt")
    assert (again.outcome, again.status) == (Outcome.ALREADY_GONE, 404)
    assert again.ok
    (never,) = resto.delete("never/was/there.txt")  # nor was its directory
    assert never.outcome is Outcome.ALREADY_GONE, never


def test_deleting_a_directorys_name_leaves_its_files(dav: MediaHost, resto: Replicator) -> None:
    """delete() is for files: a name that is a directory fails, on every brand alike, rather
    than taking the whole tree with it (a collection's DELETE is recursive in WebDAV)."""
    resto.put("dir/sub/f.txt", b"f").raise_for_failures()
    (result,) = resto.delete("dir")
    assert not result.ok, result
    assert dav.path("dir/sub/f.txt").read_bytes() == b"f"


def test_nested_names_get_their_directories(dav: MediaHost, resto: Replicator) -> None:
    """None of the directories exist yet: the brands but nginx refuse the PUT (409) until
    they are made, which the default options do."""
    (result,) = resto.put("a/b/c/file.txt", b"deep")
    assert result.outcome is Outcome.CREATED, result
    assert dav.path("a/b/c/file.txt").read_bytes() == b"deep"
    resto.put("a/b/c/other.txt", b"next to it").raise_for_failures()
    resto.put("a/b/d/x.txt", b"a sibling directory").raise_for_failures()
    resto.put("a/top.txt", b"higher up").raise_for_failures()
    assert dav.path("a/b/d/x.txt").read_bytes() == b"a sibling directory"
    assert resto.listdir("a") == (["b"], ["top.txt"])
    (deleted,) = resto.delete("a/b/c/file.txt")
    assert deleted.outcome is Outcome.DELETED, deleted
    assert not dav.path("a/b/c/file.txt").exists()
    assert dav.path("a/b/c/other.txt").exists()


def test_many_files_into_new_directories_at_once(dav: MediaHost, resto: Replicator) -> None:
    """put_many's loop: files refused side by side, their directories made once, each
    sent again."""
    items = [(f"d{index % 3}/sub/f{index}.txt", b"%d" % index) for index in range(12)]
    results = resto.put_many(items)
    assert [result.hosts[0].outcome for result in results] == [Outcome.CREATED] * 12, results
    for name, content in items:
        assert dav.path(name).read_bytes() == content


def test_a_name_below_a_file_is_refused(dav: MediaHost, resto: Replicator) -> None:
    """Its "directory" is a file: no MKCOL can help (409, 400 or 500 by brand)."""
    resto.put("top.txt", b"top").raise_for_failures()
    (result,) = resto.put("top.txt/x.txt", b"x")
    assert result.outcome is Outcome.FAILED, result
    assert dav.path("top.txt").read_bytes() == b"top"
    if dav.brand == "lighttpd":
        # lighttpd serves a file for any URL below it (the rest is its PATH_INFO).
        assert resto.get("top.txt/x.txt") == b"top"
    else:
        assert not resto.exists("top.txt/x.txt")


def test_a_directory_removed_behind_the_replicators_back(dav: MediaHost, resto: Replicator) -> None:
    resto.put("photos/a.jpg", b"a").raise_for_failures()
    shutil.rmtree(dav.path("photos"))
    (result,) = resto.put("photos/b.jpg", b"b")
    assert result.outcome is Outcome.CREATED, result
    assert dav.path("photos/b.jpg").read_bytes() == b"b"


@pytest.mark.parametrize("size", [5, 3 * 1024 * 1024], ids=["small", "large"])
def test_without_make_directories_a_nested_put_is_refused(
    dav: MediaHost, tmp_path: Path, size: int
) -> None:
    """The stock behaviour the default options work around: 409 Conflict (nginx, with
    create_full_put_path, makes the directories itself).  The connection stays usable."""
    source = tmp_path / "file.bin"
    source.write_bytes(os.urandom(size))
    with Replicator([dav.host], "/media/", make_directories=False) as replicator:
        (result,) = replicator.put("new/dir/file.bin", source)
        if dav.creates_directories:
            assert result.outcome is Outcome.CREATED, result
        else:
            assert result.outcome is Outcome.FAILED, result
            assert isinstance(result.error, UnexpectedStatusCode), result
            assert (result.status, result.error.code, result.error.host) == (409, 409, dav.host)
            assert not dav.path("new").exists()
        (after,) = replicator.put("flat.txt", b"after")
        assert after.outcome is Outcome.CREATED, after


def test_make_directories_true_makes_them_before_the_put(dav: MediaHost) -> None:
    with Replicator([dav.host], "/media/", make_directories=True) as replicator:
        replicator.put("x/y/z.txt", b"z").raise_for_failures()
        replicator.put("x/y/w.txt", b"w").raise_for_failures()
    assert dav.path("x/y/z.txt").read_bytes() == b"z"
    assert dav.path("x/y/w.txt").read_bytes() == b"w"


ODD_NAMES = [
    "a b.txt",
    "100%.txt",
    "%41%2F%00.txt",  # escapes as data: decoded once (to these very characters), not twice
    "c++ x+y.txt",
    "what?#.txt",
    "#hash",
    "?query",
    "semi;colon=&.txt",
    "quotes'\"`.txt",
    "<angle>&amp;.txt",  # XML's own syntax, in the PROPFIND answer's hrefs
    "[brackets]{braces}(parens).txt",
    "a:b@c$d!e,f*.txt",
    "~tilde-dash_under.dot",
    "..hidden",
    "été ß.txt",
    unicodedata.normalize("NFD", "été.txt"),  # stored as sent, not normalized
    "😀.png",
    "日本語.txt",
    "dir with space/été/100%/x+y#z;q?.txt",  # and in directories made for it
]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_names_round_trip(dav: MediaHost, resto: Replicator, name: str) -> None:
    content = name.encode()
    (result,) = resto.put(name, content)
    assert result.outcome is Outcome.CREATED, result
    path = dav.path(name)
    assert path.read_bytes() == content  # stored under exactly that name...
    assert os.listdir(path.parent) == [path.name]  # ...and under no other
    assert resto.get(name) == content
    assert resto.size(name) == len(content)
    assert resto.exists(name)
    directory, _, base = name.rpartition("/")
    if dav.brand == "nginx" and base.startswith("."):
        # nginx's dav-ext module leaves names starting with a dot out of its listings.
        assert resto.listdir(directory) == ([], [])
    else:
        assert resto.listdir(directory) == ([], [base])
    (deleted,) = resto.delete(name)
    assert deleted.outcome is Outcome.DELETED, deleted
    assert not path.exists()


# -- reads -----------------------------------------------------------------------------


def test_stat_size_exists_and_get(dav: MediaHost, resto: Replicator) -> None:
    content = os.urandom(1000)
    resto.put("photo.jpg", content).raise_for_failures()
    stat = resto.stat("photo.jpg")
    assert stat is not None
    assert (stat.host, stat.size) == (dav.host, 1000)
    assert stat.modified is not None
    assert abs(stat.modified - dav.path("photo.jpg").stat().st_mtime) < 1  # whole seconds
    assert resto.size("photo.jpg") == 1000
    assert resto.exists("photo.jpg")
    assert resto.get("photo.jpg") == content
    chunks: list[bytes] = []
    assert resto.get_into("photo.jpg", chunks.append) == 1000
    assert b"".join(chunks) == content


def test_the_size_of_an_empty_file(dav: MediaHost, resto: Replicator) -> None:
    resto.put("empty.txt", b"").raise_for_failures()
    stat = resto.stat("empty.txt")
    assert stat is not None
    assert stat.size == 0
    assert resto.size("empty.txt") == 0


def test_a_missing_file_reads_as_missing(dav: MediaHost, resto: Replicator) -> None:
    assert resto.stat("nope.jpg") is None
    assert not resto.exists("nope.jpg")
    assert not resto.exists("no/such/dir/nope.jpg")
    with pytest.raises(NotFoundError):
        resto.size("nope.jpg")
    with pytest.raises(NotFoundError):
        resto.get("nope.jpg")


def test_a_directory_exists(dav: MediaHost, resto: Replicator) -> None:
    """Servers redirect a directory's name to its URL with a slash (WsgiDAV answers
    a HEAD with an empty page): either way, it is there."""
    seed(dav, ["photos/2024/a.jpg"])
    assert resto.exists("photos")
    assert resto.exists("photos/2024")
    assert not resto.exists("photos/1999")


TREE = [
    "top.txt",
    "photos/b.jpg",
    "photos/a.jpg",
    "photos/2024/c.jpg",
    "photos/2024/deep/d.jpg",
    "été/a b.txt",
    "😀 x/ü.png",
    "odd/100%.txt",
    "odd/x+y (1)&<z>.txt",
    "odd/q?#.txt",
    "odd/semi;colon.txt",
    "odd/space dir/f",
    "empty dir/",
]


def test_listdir(dav: MediaHost, resto: Replicator) -> None:
    seed(dav, TREE)
    listdir = resto.listdir
    assert listdir() == (["empty dir", "odd", "photos", "été", "😀 x"], ["top.txt"])
    assert listdir("photos") == (["2024"], ["a.jpg", "b.jpg"])
    assert listdir("photos/2024/") == (["deep"], ["c.jpg"])
    assert listdir("photos/2024/deep") == ([], ["d.jpg"])
    assert listdir("été") == ([], ["a b.txt"])
    assert listdir("😀 x") == ([], ["ü.png"])
    files = ["100%.txt", "q?#.txt", "semi;colon.txt", "x+y (1)&<z>.txt"]
    assert listdir("odd") == (["space dir"], files)
    assert listdir("odd/space dir") == ([], ["f"])
    assert listdir("empty dir") == ([], [])


def test_listdir_of_a_missing_directory(dav: MediaHost, resto: Replicator) -> None:
    with pytest.raises(NotFoundError) as caught:
        resto.listdir("nowhere")
    assert (caught.value.name, caught.value.host) == ("nowhere", dav.host)


def test_listdir_of_a_file(dav: MediaHost, resto: Replicator) -> None:
    """Not a directory: listdir() says so the same way on every brand, whatever each
    answers to a PROPFIND of the file's name with a slash (207, 400, 403)."""
    seed(dav, ["top.txt"])
    with pytest.raises(NotFoundError) as caught:
        resto.listdir("top.txt")
    assert (caught.value.name, caught.value.host) == ("top.txt", dav.host)


def test_an_empty_media_directory_lists_empty(dav: MediaHost, resto: Replicator) -> None:
    assert resto.listdir() == ([], [])


# -- resync ------------------------------------------------------------------------------


def test_sync_fills_a_brand_and_verify_then_finds_it_in_step(
    dav: MediaHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """resto-fast sync into missing directories (each brand's 409s made good by the default
    make_directories), an extra file deleted with --delete, then verify: in step."""
    files = {f"y{i % 2}/m{i % 3}/f{i}.txt": f"file {i}".encode() for i in range(12)}
    files[".keep"] = b""  # a dot file, which nginx's listing leaves out
    make_tree(tmp_path / "master", files, mtime=1_700_000_000)
    seed(dav, ["stray.txt"])
    code, out, err = run(capsys, *sync_args("sync", tmp_path / "master", [dav.host], "--delete"))
    assert code == 0, out + err
    for name, content in files.items():
        assert dav.path(name).read_bytes() == content
    assert not dav.path("stray.txt").exists()
    code, out, err = run(capsys, *sync_args("verify", tmp_path / "master", [dav.host]))
    assert code == 0, out + err
    assert "OK: 1 hosts hold every source file" in out
