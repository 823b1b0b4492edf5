"""Resync: bring media servers in line with a source (``resto-fast sync``/``verify``).

- :mod:`.options`: what one run is asked to do (:class:`SyncOptions`);
- :mod:`.tree`: the source, walked one directory at a time;
- :mod:`.compare`: one directory against each host's listing, pure logic;
- :mod:`.worker`: list, compare, repair, all through one CurlMulti;
- :mod:`.run`: the walk feeding one worker here, or several processes;
- :mod:`.report`: the counts, the table, the JSON, the exit status;
- :mod:`.command` and :mod:`.arguments`: the command line, shared with the
  management commands.
"""

from .options import SyncOptions
from .report import HostTally, SyncReport, Tally
from .run import run_sync

__all__ = ["HostTally", "SyncOptions", "SyncReport", "Tally", "run_sync"]
