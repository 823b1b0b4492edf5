"""``manage.py resto_requeue_lost``: run again the replication tasks a killed worker left behind
(Django's database task backend; see resto_fast._lost_tasks)."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand

from ..._argtypes import seconds
from ..._lost_tasks import requeue_lost
from ...settings import get_setting


class Command(BaseCommand):
    help = (
        "Queue again the resto_fast replication tasks that have been RUNNING for longer than "
        "the lease (RESTO_TASK_LEASE): on the database task backend, a worker that is killed "
        "leaves its task RUNNING for ever. Replication tasks are state-based: a second run "
        "is harmless."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--lease",
            type=seconds,
            metavar="S",
            help="seconds after which a running task counts as lost (default: RESTO_TASK_LEASE)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        lease = options["lease"] or float(get_setting("TASK_LEASE"))
        count = requeue_lost(lease)
        self.stdout.write(f"{count} lost replication tasks queued again")
