"""The Celery app of the queue tests' site: Redis from the site's JSON, resto_fast's task found
as a site's would be, by autodiscovery of its INSTALLED_APPS."""

from __future__ import annotations

import json
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.worker_settings")
_url = json.loads(os.environ["RESTO_TEST_SITE"])["options"]["redis_url"]

app = Celery("resto_tests", broker=_url)
app.conf.update(
    task_acks_late=True,  # a worker killed mid-task: the broker gives the task to another
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["resto_fast"])
