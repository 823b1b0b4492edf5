"""``manage.py resto_sync`` and ``resto_verify``: everything from one storage of STORAGES."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from testbed import Nginx
from tests.media_sets import forget_storages
from tests.sync_support import host_tree, make_tree, standard_files, tree

pytestmark = pytest.mark.nginx


def settings_for(hosts: list[str], location: Path) -> dict[str, Any]:
    return {
        # Not "default": override_settings on Django 4.2 drops the default storage's OPTIONS.
        "STORAGES": {
            "media": {
                "BACKEND": "resto_fast.storage.HybridStorage",
                "OPTIONS": {"hosts": hosts, "location": str(location), "base_url": "/media/"},
            },
            "remote": {
                "BACKEND": "resto_fast.storage.DistributedStorage",
                "OPTIONS": {"hosts": hosts, "base_url": "/media/"},
            },
            "local": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
    }


def command(name: str, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(name, *args, "--processes", "1", stdout=out, stderr=err)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@pytest.fixture
def site(dav_media: Nginx, tmp_path: Path) -> Any:
    master = tmp_path / "media-root"
    make_tree(master, standard_files())
    with override_settings(**settings_for(dav_media.hosts, master)):
        forget_storages()
        yield master
    forget_storages()


def test_resto_sync_repairs_a_hybrid_storage_from_its_master_copy(
    dav_media: Nginx, site: Path
) -> None:
    assert command("resto_verify", "--storage", "media")[0] == 1
    code, out, err = command("resto_sync", "--storage", "media")
    assert code == 0, err
    assert "OK: 3 hosts hold every source file" in out
    for index in range(3):
        assert host_tree(dav_media, index) == tree(site)
    saved = storages["media"].save("later/new.txt", ContentFile(b"new"))
    dav_media.path(1, saved).unlink()  # a save that missed one host, say
    code, out, _ = command("resto_verify", "--storage", "media", "--json")
    assert code == 1
    assert '"missing": 1' in out
    assert command("resto_sync", "--storage", "media")[0] == 0
    assert dav_media.path(1, saved).read_bytes() == b"new"


def test_a_distributed_storage_needs_a_source_host(dav_media: Nginx, site: Path) -> None:
    with pytest.raises(CommandError, match="--source-host") as raised:
        command("resto_sync", "--storage", "remote")
    assert raised.value.returncode == 2
    command("resto_sync", "--storage", "media")  # fill every host from the hybrid's master copy
    dav_media.path(2, "top.txt").unlink()
    full = dav_media.hosts[0]
    assert command("resto_verify", "--storage", "remote", "--source-host", full)[0] == 1
    code, _, err = command("resto_sync", "--storage", "remote", "--source-host", full)
    assert code == 0, err
    assert host_tree(dav_media, 2) == tree(site)


def test_a_storage_that_is_not_ours_is_refused(site: Path) -> None:
    with pytest.raises(CommandError, match="not a resto_fast storage") as raised:
        command("resto_verify", "--storage", "local")
    assert raised.value.returncode == 2
    with pytest.raises(CommandError, match="nowhere"):
        command("resto_verify", "--storage", "nowhere")
