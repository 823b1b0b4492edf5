"""``manage.py resto_verify``: report how the media servers of a storage differ; change nothing."""

from __future__ import annotations

from ._resync import ResyncCommand


class Command(ResyncCommand):
    help = (
        "Report how every media server of a resto_fast storage differs from its master copy "
        "(MEDIA_ROOT, or --source-host for a DistributedStorage), changing nothing. Exit 0 when "
        "every host matches, 1 when differences were found, 2 for a usage or configuration error."
    )
    mode = "verify"
