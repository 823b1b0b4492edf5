"""Settings and OPTIONS: OPTIONS > RESTO_* settings > defaults, resolved when a storage is built."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import StorageHandler
from django.test import override_settings

from resto_fast.settings import get_setting
from resto_fast.storage import AsyncStorage, DistributedStorage, HybridStorage


def test_get_setting_reads_resto_settings_and_defaults() -> None:
    assert get_setting("MEDIA_HOSTS") == ()
    assert get_setting("FATAL_EXCEPTIONS") is True
    assert get_setting("SHOW_TRACEBACK") is False
    assert get_setting("TIMEOUT") == 2
    with override_settings(RESTO_TIMEOUT=7, RESTO_MEDIA_HOSTS=["m:1"]):
        assert get_setting("TIMEOUT") == 7
        assert get_setting("MEDIA_HOSTS") == ["m:1"]
    with pytest.raises(KeyError):
        get_setting("NOT_A_SETTING")


def test_options_win_over_settings_which_win_over_defaults(tmp_path: Path) -> None:
    with override_settings(RESTO_MEDIA_HOSTS=["s1:8080", "s2:8080"], RESTO_TIMEOUT=9):
        from_settings = HybridStorage(location=str(tmp_path))
        from_options = HybridStorage(location=str(tmp_path), hosts=["o1:8080"], timeout=3)
    assert from_settings.hosts == ("s1:8080", "s2:8080")
    assert from_settings.resto_config.replicator.timeout == 9
    assert from_settings.fatal_exceptions is True
    assert from_options.hosts == ("o1:8080",)
    assert from_options.resto_config.replicator.timeout == 3
    defaults = HybridStorage(location=str(tmp_path))
    assert defaults.hosts == ()
    assert defaults.resto_config.replicator.timeout == 2
    assert defaults.resto_config.replicator.log_tracebacks is False


def test_an_option_given_as_none_wins_over_the_setting(tmp_path: Path) -> None:
    with override_settings(RESTO_TOTAL_TIMEOUT=30, RESTO_MEDIA_HOSTS=["s:8080"]):
        storage = HybridStorage(location=str(tmp_path), total_timeout=None)
    assert storage.resto_config.replicator.total_timeout is None
    assert storage.hosts == ("s:8080",)  # hosts=None, the constructor's default, is "not given"
    with override_settings(RESTO_VERIFY_TLS=True, RESTO_FATAL_EXCEPTIONS=True):
        strict = HybridStorage(location=str(tmp_path), verify_tls=None, fatal_exceptions=None)
    assert strict.resto_config.replicator.verify_tls is True  # None is not False
    assert strict.fatal_exceptions is True


def test_settings_are_read_when_the_storage_is_built(tmp_path: Path) -> None:
    with override_settings(RESTO_MEDIA_HOSTS=["early:8080"]):
        storage = HybridStorage(location=str(tmp_path))
    assert storage.hosts == ("early:8080",)


def test_storages_options_configure_the_backends(tmp_path: Path) -> None:
    config = {
        "default": {
            "BACKEND": "resto_fast.storage.HybridStorage",
            "OPTIONS": {
                "location": str(tmp_path),
                "hosts": ["h1:8080", "h2:8080"],
                "base_url": "http://media.example.com/m/",
                "fatal_exceptions": False,
                "show_traceback": True,
                "timeout": 4,
                "total_timeout": 60,
                "file_permissions_mode": 0o640,
            },
        },
        "remote": {
            "BACKEND": "resto_fast.storage.DistributedStorage",
            "OPTIONS": {"hosts": ["h3:8080"]},
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    handler = StorageHandler(config)  # type: ignore[arg-type]  # django-stubs: wrong type
    storage = handler["default"]
    remote = handler["remote"]
    assert isinstance(storage, HybridStorage)
    assert storage.location == str(tmp_path)
    assert storage.file_permissions_mode == 0o640
    assert storage.hosts == ("h1:8080", "h2:8080")
    assert storage.fatal_exceptions is False
    replicator = storage.resto_config.replicator
    assert (replicator.timeout, replicator.total_timeout, replicator.log_tracebacks) == (
        4,
        60,
        True,
    )
    assert storage.replicator.url("a b.txt", "h1:8080") == "http://h1:8080/m/a%20b.txt"
    assert storage.url("a b.txt") == "http://media.example.com/m/a%20b.txt"
    assert isinstance(remote, DistributedStorage)
    assert remote.url("x.txt") == "/media/x.txt"  # MEDIA_URL


@pytest.mark.parametrize("cls", [HybridStorage, AsyncStorage, DistributedStorage])
def test_an_unknown_option_is_named(cls: type, tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"fatal_exception\b"):
        cls(hosts=["m:8080"], fatal_exception=False)


@pytest.mark.parametrize("base_url", ["/media/?v=1", "/media/#top", "http://x/m/?a"])
def test_a_base_url_with_a_query_or_fragment_is_refused(base_url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"query|fragment"):
        HybridStorage(location=str(tmp_path), base_url=base_url, hosts=["m:8080"])
    with override_settings(MEDIA_URL=base_url), pytest.raises(ValueError, match=r"query|fragment"):
        DistributedStorage(hosts=["m:8080"])


def test_a_bad_host_is_refused_when_the_storage_is_built(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="host"):
        HybridStorage(location=str(tmp_path), hosts="media-1:8080")  # a string, not a list


def test_private_servers_settings_reach_the_replicator(tmp_path: Path) -> None:
    certificate = tmp_path / "client.pem"
    certificate.write_text("PEM")
    with override_settings(
        RESTO_MEDIA_HOSTS=["m1", "m2:9000"],
        RESTO_UPLOAD_URL="http://*:8080/uploads/",
        RESTO_AUTH=("replicator", "s3cret"),
        RESTO_CLIENT_CERT=str(certificate),
        MEDIA_URL="https://cdn.example.com/media/",
    ):
        storage = HybridStorage(location=str(tmp_path))
        with_headers = HybridStorage(
            location=str(tmp_path), auth=None, headers={"Authorization": "Bearer t"}
        )
        assert storage.url("a.txt") == "https://cdn.example.com/media/a.txt"
    config = storage.resto_config.replicator
    assert config.hosts == ("m1:8080", "m2:9000")
    assert (config.scheme, config.base_path) == ("http", "/uploads/")
    assert config.auth == ("replicator", "s3cret")
    assert config.client_cert == str(certificate)
    assert with_headers.resto_config.replicator.auth is None  # None given: no Basic
    assert with_headers.resto_config.replicator.headers == (("Authorization", "Bearer t"),)
    assert "s3cret" not in repr(storage.resto_config)
