"""Private media servers: HTTP Basic, a bearer token, a TLS client certificate, and an
upload URL other than the public one; secrets kept out of every record and message.

The hosts are real nginx server blocks (``auth_basic``, a check of the
``Authorization`` header, ``ssl_verify_client on``) on host 0's root, with
certificates made by the fixture (testbed/nginx.py).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile

from resto_fast import (
    ConfigurationError,
    ReplicationError,
    Replicator,
    RestoError,
    UnexpectedStatusCode,
)
from resto_fast._cli import PASSWORD_VARIABLE, main
from resto_fast.storage import HybridStorage
from testbed import Nginx

pytestmark = pytest.mark.nginx

MiB = 1024 * 1024
SECRETS = (Nginx.PASSWORD, Nginx.TOKEN)


def status_of(result: object, host: str) -> int:
    error = result[host].error  # type: ignore[index]
    assert isinstance(error, UnexpectedStatusCode), error
    return error.code


@pytest.mark.parametrize("size", [100, 3 * MiB], ids=["whole", "streamed"])
def test_http_basic_lets_every_method_through(media: Nginx, size: int) -> None:
    host = media.private_host("basic")
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    with Replicator([host], "/media/", auth=(Nginx.USER, Nginx.PASSWORD)) as replicator:
        assert replicator.put("private/a.bin", io.BytesIO(data)).ok
        assert media.path(0, "private/a.bin").read_bytes() == data
        assert replicator.exists("private/a.bin")
        assert replicator.get("private/a.bin") == data
        if media.propfind:
            assert replicator.listdir("private") == ([], ["a.bin"])
        assert replicator.delete("private/a.bin").ok
    assert not media.path(0, "private/a.bin").exists()


def test_without_credentials_or_with_wrong_ones_a_private_host_refuses(
    media: Nginx, caplog: pytest.LogCaptureFixture
) -> None:
    host = media.private_host("basic")
    caplog.set_level(logging.DEBUG, logger="resto_fast")
    media.path(0, "public.txt").parent.mkdir(parents=True)
    media.path(0, "public.txt").write_bytes(b"for everyone")
    with Replicator([host], "/media/") as anonymous:
        assert status_of(anonymous.put("no.txt", b"x"), host) == 401
        assert status_of(anonymous.delete("public.txt"), host) == 401
        assert anonymous.get("public.txt") == b"for everyone"  # reads are public
    with Replicator([host], "/media/", auth=(Nginx.USER, "wrong")) as mistaken:
        assert status_of(mistaken.put("no.txt", b"x"), host) == 401
    assert not media.path(0, "no.txt").exists()
    assert any(host in record.getMessage() for record in caplog.records)


def test_a_bearer_token_goes_as_a_header_with_every_request(media: Nginx) -> None:
    host = media.private_host("bearer")
    headers = {"Authorization": f"Bearer {Nginx.TOKEN}", "X-Replicated-By": "tests"}
    with Replicator([host], "/media/", headers=headers, make_directories=True) as replicator:
        assert replicator.put("t/b.txt", b"token").ok  # MKCOL, then PUT
        assert replicator.size("t/b.txt") == 5
        assert replicator.get("t/b.txt") == b"token"
        assert replicator.delete("t/b.txt").ok
    with Replicator([host], "/media/", headers={"Authorization": "Bearer nope"}) as wrong:
        assert status_of(wrong.put("t/c.txt", b"x"), host) == 401


def test_a_client_certificate_is_presented_and_a_stranger_is_refused(media: Nginx) -> None:
    host = media.private_host("client")
    certificate, key = media.client_files()
    tls = {"base_url": "https://127.0.0.1/media/", "ca_file": str(media.certificate)}
    with Replicator([host], client_cert=str(certificate), client_key=str(key), **tls) as trusted:
        assert trusted.put("cert.txt", b"with a certificate").ok
        assert trusted.get("cert.txt") == b"with a certificate"
    stranger_certificate, stranger_key = media.client_files("stranger")
    with Replicator(
        [host], client_cert=str(stranger_certificate), client_key=str(stranger_key), **tls
    ) as stranger:
        assert status_of(stranger.put("cert.txt", b"overwritten"), host) == 400  # nginx's way
    with Replicator([host], **tls) as without:
        assert status_of(without.put("cert.txt", b"overwritten"), host) == 400
    assert media.path(0, "cert.txt").read_bytes() == b"with a certificate"


def test_secrets_stay_out_of_records_reprs_and_errors(
    media: Nginx, caplog: pytest.LogCaptureFixture
) -> None:
    host = media.private_host("basic")
    caplog.set_level(logging.DEBUG)
    options = {
        "auth": (Nginx.USER, Nginx.PASSWORD),
        "headers": {"X-Api-Key": Nginx.TOKEN},
        "log_tracebacks": True,
    }
    seen: list[str] = []
    with Replicator([host], "/media/", **options) as replicator:
        seen += [repr(replicator), repr(replicator.config), str(replicator.config)]
        refused = Replicator([media.status_host(403)], "/media/", **options)
        with refused:
            result = refused.put("refused.txt", b"x")
            seen += [repr(result), str(result.failures)]
            with pytest.raises(ReplicationError) as raised:
                result.raise_for_failures()
            seen += [str(raised.value), repr(raised.value)]
            with pytest.raises(RestoError) as unread:
                refused.get("refused.txt")
            seen.append(str(unread.value))
    for record in caplog.records:
        seen.append(record.getMessage())
        if record.exc_info:
            seen.append(logging.Formatter().formatException(record.exc_info))
    assert caplog.records  # the failures were logged...
    text = "\n".join(seen)
    assert "***" in text  # ...and the config's repr shows that secrets are set
    for secret in SECRETS:
        assert secret not in text


def test_the_configuration_refuses_what_would_misfire(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("not a key")
    cases: dict[str, dict[str, Any]] = {
        "auth must be a pair": {"auth": "user:password"},
        "without ':'": {"auth": ("us:er", "p")},
        "not both": {"auth": ("u", "p"), "headers": {"authorization": "Bearer x"}},
        "may not set Content-Length": {"headers": {"Content-Length": "1"}},
        "no HTTP header name": {"headers": {"Bad Name": "x"}},
        "control character": {"headers": {"X-Token": "a\r\nInjected: yes"}},
        "needs client_cert": {"client_key": str(key)},
        "not a file this process can read": {"client_cert": str(tmp_path / "missing.pem")},
        "may not name a host": {"upload_url": "http://media.internal:8080/media/"},
        "invalid port": {"upload_url": "http://*:99999/media/"},
    }
    for message, options in cases.items():
        with pytest.raises(ConfigurationError, match=message) as raised:
            Replicator(["m1"], "/media/", **options)
        assert "Injected" not in str(raised.value)  # a header's value is never echoed


def test_the_upload_url_sets_scheme_port_and_path_and_url_stays_public(
    media: Nginx, tmp_path: Path
) -> None:
    port = media.hosts[0].rsplit(":", 1)[1]
    storage = HybridStorage(
        hosts=["127.0.0.1", media.hosts[1]],  # the first takes upload_url's port
        base_url="https://cdn.example.com/files/",
        location=str(tmp_path),
        upload_url=f"http://*:{port}/media/",
    )
    assert storage.hosts == (media.hosts[0], media.hosts[1])
    name = storage.save("up/loaded.txt", ContentFile(b"by the private way"))
    assert storage.url(name) == "https://cdn.example.com/files/up/loaded.txt"
    for index in (0, 1):
        assert media.path(index, "up/loaded.txt").read_bytes() == b"by the private way"
    assert not (media.root(0) / "files").exists()


def test_a_host_written_with_the_upload_port_is_the_same_host() -> None:
    with pytest.raises(ConfigurationError, match="listed twice"):
        Replicator(["m1", "m1:8080"], upload_url="http://*:8080/media/")
    with Replicator(["m1", "m1:80"], upload_url="http://*:8080/media/") as replicator:
        assert replicator.hosts == ("m1:8080", "m1:80")  # :80 is not the default any more
        assert replicator.url("a b.txt", "m1") == "http://m1:8080/media/a%20b.txt"


def test_the_command_line_takes_credentials_without_showing_them(
    media: Nginx, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    host = media.private_host("basic")
    monkeypatch.setenv(PASSWORD_VARIABLE, Nginx.PASSWORD)
    arguments = ["--hosts", host, "--base-url", "/media/", "--max-size", "1MiB"]
    code = main(["doctor", *arguments, "--user", Nginx.USER])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"HTTP Basic as '{Nginx.USER}', accepted" in out
    assert Nginx.PASSWORD not in out

    token_file = media.workdir / "token-header"
    token_file.write_text(f"Authorization: Bearer {Nginx.TOKEN}\n")
    bearer = media.private_host("bearer")
    code = main(["doctor", "--hosts", bearer, *arguments[2:], "--header", f"@{token_file}"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "header(s) Authorization, accepted" in out
    assert Nginx.TOKEN not in out

    monkeypatch.delenv(PASSWORD_VARIABLE)
    monkeypatch.setattr("sys.stdin", io.StringIO())  # no terminal to ask on
    code = main(["doctor", *arguments, "--user", Nginx.USER])
    err = capsys.readouterr().err
    assert code == 2
    assert f"set {PASSWORD_VARIABLE}" in err
