"""``manage.py resto_sync``: bring the media servers of a storage in line with its master copy."""

from __future__ import annotations

from ._resync import ResyncCommand


class Command(ResyncCommand):
    help = (
        "Make every media server of a resto_fast storage hold what its master copy holds "
        "(MEDIA_ROOT, or --source-host for a DistributedStorage): upload what is missing or "
        "different and, with --delete, remove what the source lacks. Exit 0 when every host "
        "matches, 1 when differences remain, 2 for a usage or configuration error."
    )
    mode = "sync"
