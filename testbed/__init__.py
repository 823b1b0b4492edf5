"""The testbed: the real servers and misbehaving peers that the tests and the benchmarks run
against, on free loopback ports, with their files in scratch directories on tmpfs.

=============  ============================================================
``places``     free ports, scratch directories, a server that is not installed
``daemon``     a server run as a child process: stopped, and used in ``with``
``nginx``      nginx media hosts (WebDAV, status hosts, TLS, private hosts)
``dav``        the other WebDAV brands: lighttpd, Apache httpd, WsgiDAV
``redis``      redis-server, the queues' broker
``peers``      hosts that misbehave, and a flaky embedded media server
``wire``       just enough HTTP/1.1 for the peers
=============  ============================================================

Neither tests nor benchmarks: both import from here (``tests/`` holds the
test-only fixtures, ``benchmarks/`` its contenders).  Not part of the
installed package.
"""

from testbed.daemon import Daemon
from testbed.nginx import Nginx, Request, find_dav_ext_module, find_nginx
from testbed.peers import (
    Answering,
    BlackHole,
    EarlyAnswer,
    FixedAnswer,
    FlakyServer,
    Peer,
    Relay,
    Resetter,
    SlowSink,
    Staller,
    SyntheticTree,
    running,
)
from testbed.places import REQUIRE_SERVERS, free_port, free_ports, scratch_dir, unavailable
from testbed.redis import RedisServer, find_redis
from testbed.wire import read_request_head, requests_on

__all__ = [
    "REQUIRE_SERVERS",
    "Answering",
    "BlackHole",
    "Daemon",
    "EarlyAnswer",
    "FixedAnswer",
    "FlakyServer",
    "Nginx",
    "Peer",
    "RedisServer",
    "Relay",
    "Request",
    "Resetter",
    "SlowSink",
    "Staller",
    "SyntheticTree",
    "find_dav_ext_module",
    "find_nginx",
    "find_redis",
    "free_port",
    "free_ports",
    "read_request_head",
    "requests_on",
    "running",
    "scratch_dir",
    "unavailable",
]
