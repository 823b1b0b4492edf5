"""Settings of the Django processes the queue tests start, each in a process of its own: the
site (tests/queue_driver.py, which saves and deletes files) and its workers (db_worker, rq,
Celery).  What varies comes from the JSON in ``RESTO_TEST_SITE``: the SQLite file, the master
copy, the storage's options."""

from __future__ import annotations

import json
import os

import django

from tests.django_settings import *  # noqa: F403
from tests.django_settings import INSTALLED_APPS

SITE = json.loads(os.environ["RESTO_TEST_SITE"])

_DATABASE: dict[str, object] = {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": SITE["database"],
    "OPTIONS": {"timeout": 60},  # a driver and two workers share it
}
DATABASES = {"default": _DATABASE}  # type: ignore[dict-item]  # the base's values are str
MEDIA_ROOT = SITE["master"]
_OPTIONS = dict(SITE["options"])
if django.VERSION >= (5, 1):  # a save overwrites (tests/queue_driver.py does it by hand before)
    _OPTIONS["allow_overwrite"] = True
STORAGES = {
    "media": {"BACKEND": "resto_fast.storage.AsyncStorage", "OPTIONS": _OPTIONS},
    "staticfiles": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
}
if "django_tasks" in INSTALLED_APPS:
    INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db"]
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
LOGGING_CONFIG = "logging.config.dictConfig"  # type: ignore[assignment]  # None in the tests
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"resto_fast": {"handlers": ["stderr"], "level": "INFO"}},
}
