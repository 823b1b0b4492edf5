"""System checks: what ``manage.py check`` says about the replicated storages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core import checks
from django.test import override_settings

STATIC = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}


def run_checks(storage: dict[str, Any], **settings: Any) -> list[tuple[str, str]]:
    with override_settings(STORAGES={"default": storage, "staticfiles": STATIC}, **settings):
        messages = checks.run_checks(tags=[checks.Tags.compatibility])
    return [
        (m.id or "", f"{m.obj}: {m.msg}")
        for m in messages
        if (m.id or "").startswith("resto_fast.")
    ]


def hybrid(tmp_path: Path, **options: Any) -> dict[str, Any]:
    return {
        "BACKEND": "resto_fast.storage.HybridStorage",
        "OPTIONS": {"location": str(tmp_path), **options},
    }


def test_a_configured_storage_passes(tmp_path: Path) -> None:
    assert run_checks(hybrid(tmp_path, hosts=["m1:80"])) == []


def test_no_hosts(tmp_path: Path) -> None:
    ((code, message),) = run_checks(hybrid(tmp_path))
    assert code == "resto_fast.W002"
    assert "STORAGES['default']" in message
    ((code, _),) = run_checks({"BACKEND": "resto_fast.storage.DistributedStorage"})
    assert code == "resto_fast.E002"


def test_media_url_with_a_query_or_fragment(tmp_path: Path) -> None:
    ((code, message),) = run_checks(
        hybrid(tmp_path, hosts=["m1:80"]), MEDIA_URL="/media/?version=2"
    )
    assert code == "resto_fast.E001"
    assert "query" in message


def test_distributed_without_fatal_exceptions(tmp_path: Path) -> None:
    storage = {
        "BACKEND": "resto_fast.storage.DistributedStorage",
        "OPTIONS": {"hosts": ["m1:80"], "fatal_exceptions": False},
    }
    ((code, message),) = run_checks(storage)
    assert code == "resto_fast.W003"
    assert "DistributedStorage" in message
    assert run_checks(storage, RESTO_FATAL_EXCEPTIONS=True) == [("resto_fast.W003", message)]
    assert run_checks({**storage, "OPTIONS": {"hosts": ["m1:80"]}}, RESTO_FATAL_EXCEPTIONS=False)


def test_an_unknown_option(tmp_path: Path) -> None:
    ((code, message),) = run_checks(hybrid(tmp_path, hosts=["m1:80"], hots=["typo"]))
    assert code == "resto_fast.E001"
    assert "hots" in message


def test_a_queue_that_cannot_take_tasks_here_is_an_error(tmp_path: Path) -> None:
    wrong = run_checks(
        hybrid(tmp_path, hosts=["m:80"], queue="celery", celery_app="nowhere.celery.app")
    )
    assert wrong == [
        (
            "resto_fast.E003",
            "STORAGES['default']: cannot queue its replication: celery_app "
            "'nowhere.celery.app' cannot be imported: No module named 'nowhere'",
        )
    ]
    assert run_checks(hybrid(tmp_path, hosts=["m:80"], queue="rq")) == []  # rq is installed


def test_the_tasks_queue_needs_the_tasks_framework(tmp_path: Path) -> None:
    from resto_fast.tasks import replicate_task

    messages = run_checks(hybrid(tmp_path, hosts=["m:80"], queue="tasks"))
    if replicate_task is None:  # Django 4.2, or no django-tasks
        assert [id_ for id_, _ in messages] == ["resto_fast.E003"]
        assert "Django's Tasks framework" in messages[0][1]
    else:
        assert messages == []


def test_credentials_over_plain_http_to_another_machine_warn(tmp_path: Path) -> None:
    auth = {"auth": ("replicator", "secret")}
    ((code, message),) = run_checks(hybrid(tmp_path, hosts=["m1", "127.0.0.1:81"], **auth))
    assert code == "resto_fast.W005"
    assert "over plain http to m1, readable" in message  # the loopback host is no concern
    assert "secret" not in message
    token = {"headers": {"Authorization": "Bearer t0k3n"}}
    ((code, _),) = run_checks(hybrid(tmp_path, hosts=["m1"]), RESTO_HEADERS=token["headers"])
    assert code == "resto_fast.W005"
    assert run_checks(hybrid(tmp_path, hosts=["127.0.0.1:81", "[::1]:82"], **auth)) == []
    over_https = {"upload_url": "https://*/media/", **auth}
    assert run_checks(hybrid(tmp_path, hosts=["m1"], **over_https)) == []
    assert run_checks(hybrid(tmp_path, hosts=["m1"]), MEDIA_URL="https://cdn/media/") == []
