"""The example project (example/): uploads through its form and its admin reach every media server.

The example runs in a child process with its own settings (``exampleproject.settings``),
so nothing of it leaks into this session's Django, configured with
``tests.django_settings``.  The child is this module run as a script (:func:`drive`):
it makes a test database, uploads a file through the form view and two through
the admin, deletes the last one through the admin, and writes what it saw to a
JSON report.  The media servers run here, in the parent, which checks what
each one received.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resto_fast.http_server import TestHttpServer
from tests.media_sets import running_embedded

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example"

#: Small enough to stay in memory in Django's upload handling and to go to libcurl whole.
FORM_CONTENT = bytes(range(256)) * 64
#: Larger than Django's 2.5 MB in-memory limit and resto_fast's 1 MiB chunk: streamed.
ADMIN_CONTENT = os.urandom(3 * 1024 * 1024 + 17)


def _environment(hosts: list[str], extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "exampleproject.settings"
    env["RESTO_MEDIA_HOSTS"] = " ".join(hosts)
    env |= extra or {}
    # The example and resto_fast from this checkout, whatever is installed.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(EXAMPLE), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    return env


def _run(
    args: list[str], hosts: list[str], extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", *args],
        cwd=ROOT,
        env=_environment(hosts, extra),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def media_servers() -> Iterator[list[TestHttpServer]]:
    with running_embedded(2) as servers:
        yield servers


def test_uploads_through_form_and_admin_reach_every_media_server(
    media_servers: list[TestHttpServer], tmp_path: Path
) -> None:
    media_root = tmp_path / "media"
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "form upload.bin").write_bytes(FORM_CONTENT)
    (uploads / "admin-upload.bin").write_bytes(ADMIN_CONTENT)
    (uploads / "doomed.txt").write_bytes(b"deleted through the admin\n")
    report_path = tmp_path / "report.json"

    child = _run(
        ["-m", "tests.test_example", str(report_path), str(media_root), str(uploads)],
        [server.host for server in media_servers],
    )
    assert child.returncode == 0, child.stdout + child.stderr
    report = json.loads(report_path.read_text())
    form, admin, doomed = report["form"], report["admin"], report["doomed"]

    # The form redirects to the list, the admin to its change list.
    assert (form["status"], form["location"]) == (302, "/")
    assert (admin["status"], admin["location"]) == (302, "/admin/gallery/document/")
    assert (doomed["status"], doomed["location"]) == (302, "/admin/gallery/document/")
    assert report["deleted_status"] == 302

    # The list page shows what is left, with a link to each media server's copy.
    page = report["page"]
    assert doomed["title"] not in page
    for upload in (form, admin):
        assert upload["name"].startswith("documents/"), upload
        assert upload["title"] in page
        for server in media_servers:
            assert f'href="http://{server.host}/media/{upload["name"]}"' in page

    for upload, content in ((form, FORM_CONTENT), (admin, ADMIN_CONTENT)):
        assert (media_root / upload["name"]).read_bytes() == content  # the master copy
        for server in media_servers:
            assert server.files[f"media/{upload['name']}"] == content
    assert not (media_root / doomed["name"]).exists()
    for server in media_servers:
        assert f"media/{doomed['name']}" not in server.files
        # Exactly one PUT per file and server, and one DELETE for the deleted one.
        assert sorted(server.log) == sorted(
            [
                ("PUT", f"/media/{form['name']}", 201),
                ("PUT", f"/media/{admin['name']}", 201),
                ("PUT", f"/media/{doomed['name']}", 201),
                ("DELETE", f"/media/{doomed['name']}", 204),
            ]
        )


def test_system_checks_pass_and_migrations_are_up_to_date(
    media_servers: list[TestHttpServer],
) -> None:
    hosts = [server.host for server in media_servers]
    check = _run(["example/manage.py", "check", "--fail-level", "WARNING"], hosts)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no issues" in check.stdout

    migrations = _run(["example/manage.py", "makemigrations", "--check", "--dry-run"], hosts)
    assert migrations.returncode == 0, migrations.stdout + migrations.stderr

    # resto_fast's own checks run (it is in INSTALLED_APPS): without hosts, a warning, once,
    # though a model field uses the (lazy) default storage too.
    no_hosts = _run(["example/manage.py", "check"], [])
    assert no_hosts.returncode == 0, no_hosts.stdout + no_hosts.stderr
    assert no_hosts.stderr.count("resto_fast.W002") == 1

    # A typo in a host is reported, once, not a traceback from building the default storage.
    typo = _run(["example/manage.py", "check"], ["media..one:8080"])
    assert typo.returncode == 1
    assert "Traceback" not in typo.stderr
    assert typo.stderr.count("(resto_fast.E001) cannot be built: invalid media host") == 1


def test_default_file_storage_naming_our_class_is_a_warning_on_recent_django(
    media_servers: list[TestHttpServer], tmp_path: Path
) -> None:
    import django

    if django.VERSION < (5, 1):
        pytest.skip("Django before 5.1 still reads DEFAULT_FILE_STORAGE")
    settings = tmp_path / "legacy_settings.py"
    settings.write_text(
        "from exampleproject.settings import *\n"
        "DEFAULT_FILE_STORAGE = 'resto_fast.storage.HybridStorage'  # django-resto's way\n"
    )
    env = {"DJANGO_SETTINGS_MODULE": "legacy_settings", "PYTHONPATH": str(tmp_path)}
    check = _run(["example/manage.py", "check"], [s.host for s in media_servers], env)
    assert "resto_fast.W004" in check.stderr
    assert "ignored by Django 5.1 and later: nothing is replicated" in check.stderr


def test_with_the_tasks_queue_a_worker_replicates_each_upload(
    media_servers: list[TestHttpServer], tmp_path: Path
) -> None:
    pytest.importorskip("django_tasks_db")  # the tasks extra, on Django 5.2 and later
    hosts = [server.host for server in media_servers]
    extra = {
        "EXAMPLE_QUEUE": "tasks",
        "EXAMPLE_DATABASE": str(tmp_path / "db.sqlite3"),
        "EXAMPLE_MEDIA_ROOT": str(tmp_path / "media"),
    }

    def manage(*args: str) -> str:
        done = _run(["example/manage.py", *args], hosts, extra)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    manage("migrate", "-v0")
    saved = manage(
        "shell",
        "-c",
        "from django.core.files.base import ContentFile; from gallery.models import Document;"
        "d = Document(title='queued'); d.file.save('queued.txt', ContentFile(b'in a task'));"
        "print(d.file.name)",
    ).split()[-1]  # the shell may say what it imported first
    assert (tmp_path / "media" / saved).read_bytes() == b"in a task"  # the master copy, at once
    assert all(f"media/{saved}" not in server.files for server in media_servers)  # not yet
    manage("db_worker", "--batch", "--no-startup-delay")
    for server in media_servers:
        assert server.files[f"media/{saved}"] == b"in a task"
        assert server.log == [("PUT", f"/media/{saved}", 201)]


# -- the child process ------------------------------------------------------------------


def drive(report_path: Path, media_root: Path, uploads: Path) -> None:
    """Upload through the example's form and admin with Django's test client; report."""
    import django
    from django.test.utils import (
        override_settings,
        setup_databases,
        setup_test_environment,
        teardown_databases,
        teardown_test_environment,
    )

    django.setup()
    with override_settings(
        MEDIA_ROOT=str(media_root),
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # fast
    ):
        setup_test_environment()
        databases = setup_databases(verbosity=0, interactive=False)
        try:
            report = _uploads(uploads)
        finally:
            teardown_databases(databases, verbosity=0)
            teardown_test_environment()
    report_path.write_text(json.dumps(report))


def _uploads(uploads: Path) -> dict[str, Any]:
    from django.apps import apps
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    document: Any = apps.get_model("gallery", "Document")
    client = Client()

    def upload(url: str, title: str, filename: str, **extra: str) -> dict[str, Any]:
        content = (uploads / filename).read_bytes()
        data = {"title": title, "file": SimpleUploadedFile(filename, content), **extra}
        response = client.post(url, data)
        saved = document.objects.filter(title=title).first()
        return {
            "status": response.status_code,
            "location": response.get("Location"),
            "title": title,
            "name": saved and saved.file.name,
            "pk": saved and saved.pk,
        }

    report: dict[str, Any] = {"form": upload("/", "Through the form", "form upload.bin")}

    User.objects.create_superuser("admin", "admin@example.com", "password")
    if not client.login(username="admin", password="password"):
        raise RuntimeError("the superuser could not log in")
    add = "/admin/gallery/document/add/"
    report["admin"] = upload(add, "Through the admin", "admin-upload.bin", _save="Save")
    report["doomed"] = upload(add, "Deleted through the admin", "doomed.txt", _save="Save")
    pk = report["doomed"]["pk"]
    deleted = client.post(f"/admin/gallery/document/{pk}/delete/", {"post": "yes"})
    report["deleted_status"] = deleted.status_code
    report["page"] = client.get("/").content.decode()
    return report


if __name__ == "__main__":
    drive(*(Path(arg) for arg in sys.argv[1:4]))
