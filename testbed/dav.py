"""Other brands of WebDAV media server, for the interop tests: lighttpd, Apache httpd, WsgiDAV.

Each runs as a child process on a free loopback port, with its configuration
and logs in a work directory of its own, and ``workdir/root`` as its document
root: the file ``photos/a.jpg`` under the ``/media/`` base path is
``workdir/root/media/photos/a.jpg``.  WebDAV (PUT, DELETE, MKCOL, PROPFIND)
is on under ``/media/``, GET and HEAD everywhere.  The configurations are
those of docs/media-servers.md (lighttpd, Apache) or WsgiDAV's defaults, with
the allowed network narrowed to loopback: in particular none of them makes
the missing directories of a PUT, which each answers with ``409 Conflict``,
as WebDAV specifies.  That stock behaviour is what the interop tests are for.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Self

from testbed.daemon import Daemon
from testbed.places import free_port, scratch_dir, unavailable

__all__ = ["DAV_SERVERS", "Apache", "DavServer", "Lighttpd", "WsgiDav", "started"]

_SBIN = ("/usr/sbin", "/usr/local/sbin")


def _find_binary(*names: str) -> str | None:
    """The first of ``names`` on PATH or in an sbin directory (not on a user's PATH)."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(_SBIN))
        if found:
            return found
    return None


def _find_module_dir(module: str, directories: tuple[str, ...]) -> Path | None:
    """The first of ``directories`` that holds the shared object ``module``."""
    for directory in directories:
        if (Path(directory) / module).is_file():
            return Path(directory)
    return None


class DavServer(Daemon):
    """One WebDAV server process on a free loopback port, serving ``workdir/root``.

    ``with Brand(workdir) as server:`` starts it (``start()``), and stops it
    at the end (``stop()``); ``host`` is what a Replicator is given, and
    ``path(name)`` where a file put under ``/media/`` lands on disk.
    """

    brand: ClassVar[str]
    #: Whether a PUT into a missing directory makes it: no stock WebDAV server does.
    creates_directories: ClassVar[bool] = False

    def __init__(self, workdir: Path) -> None:
        reason = self.missing()
        if reason is not None:
            raise FileNotFoundError(reason)
        self.workdir = workdir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def missing(cls) -> str | None:
        """Why this brand cannot run here (for a skip), or None when it can."""
        raise NotImplementedError

    # -- what tests use ----------------------------------------------------------

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def media_root(self) -> Path:
        return self.workdir / "root" / "media"

    def path(self, name: str) -> Path:
        """Where file ``name`` (under the /media/ base path) lands on disk."""
        return self.media_root / name

    def clear(self) -> None:
        """Empty the media directory (it stays, as a media server's root does)."""
        shutil.rmtree(self.media_root, ignore_errors=True)
        self.media_root.mkdir(parents=True)
        # Apache's worker drops root for nobody: it writes here, as www-data does in production.
        self.media_root.chmod(0o777)

    def log(self) -> str:
        """What the server wrote to its logs, to say why it did not start."""
        logs = sorted(self.workdir.glob("*.log"))
        return "\n".join(f"{p.name}:\n{p.read_text(errors='replace')}" for p in logs) or "no log"

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # a port picked as free can be taken before the server binds it
            self.port = free_port()
            self.clear()
            if self._launch(self._configure()):
                return self
        raise RuntimeError(f"{self.brand} did not start:\n{self.log()}")

    def _configure(self) -> list[str]:
        """Write the configuration for ``self.port``; return the command that runs it."""
        raise NotImplementedError

    def _launch(self, command: list[str]) -> bool:
        """Run ``command`` in the foreground and wait until the port answers."""
        with (self.workdir / "output.log").open("ab") as output:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:  # refused its configuration, or the port
                self.process = None
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                # Another process may have taken the port: ours then exits on the bind.
                return self.process.poll() is None
            time.sleep(0.02)
        self.stop()
        return False


# -- lighttpd ------------------------------------------------------------------------

LIGHTTPD_MODULE_DIRS = ("/usr/lib/lighttpd", "/usr/lib64/lighttpd", "/usr/local/lib/lighttpd")


def find_lighttpd() -> str | None:
    """lighttpd's binary, when its mod_webdav (Debian: lighttpd-mod-webdav) is there too.

    lighttpd loads modules from the directory it was built for (no setting
    changes it): the module is only looked for there, to say what is missing.
    """
    binary = _find_binary("lighttpd")
    if binary is None or _find_module_dir("mod_webdav.so", LIGHTTPD_MODULE_DIRS) is None:
        return None
    return binary


class Lighttpd(DavServer):
    """lighttpd with mod_webdav, run with ``-D`` (in the foreground).  As root it keeps
    root: lighttpd drops privileges only when told a ``server.username``."""

    brand = "lighttpd"

    @classmethod
    def missing(cls) -> str | None:
        if _find_binary("lighttpd") is None:
            return "lighttpd is not installed (scripts/test installs it)"
        if find_lighttpd() is None:
            return "lighttpd's mod_webdav is missing (scripts/test installs lighttpd-mod-webdav)"
        return None

    def _configure(self) -> list[str]:
        binary = find_lighttpd()
        assert binary is not None
        work = self.workdir
        (work / "upload").mkdir(exist_ok=True)
        # docs/media-servers.md's configuration; the catch-all type gets files a Last-Modified.
        (work / "lighttpd.conf").write_text(f"""
server.modules += ( "mod_webdav" )
server.document-root = "{work / "root"}"
server.bind = "127.0.0.1"
server.port = {self.port}
server.errorlog = "{work / "error.log"}"
server.upload-dirs = ( "{work / "upload"}" )
mimetype.assign = ( "" => "application/octet-stream" )
$HTTP["url"] =~ "^/media/" {{
    $HTTP["remoteip"] == "127.0.0.0/8" {{
        webdav.activate = "enable"
    }}
}}
""")
        return [binary, "-D", "-f", str(work / "lighttpd.conf")]


# -- Apache httpd --------------------------------------------------------------------

APACHE_MODULE_DIRS = (
    "/usr/lib/apache2/modules",  # Debian
    "/usr/lib64/httpd/modules",  # Fedora, RHEL
    "/usr/lib/httpd/modules",
    "/usr/local/apache2/modules",  # built from source
)
#: The modules the configuration uses, by shared object and by the source file ``-l`` names
#: when the binary has it compiled in (Debian compiles mod_unixd in; the MPM is a module).
APACHE_MODULES = (
    ("mpm_event_module", "mod_mpm_event.so", "event.c"),
    ("unixd_module", "mod_unixd.so", "mod_unixd.c"),
    ("authz_core_module", "mod_authz_core.so", "mod_authz_core.c"),
    ("authz_host_module", "mod_authz_host.so", "mod_authz_host.c"),
    ("dir_module", "mod_dir.so", "mod_dir.c"),  # a directory's URL without its slash: 301
    ("dav_module", "mod_dav.so", "mod_dav.c"),
    ("dav_fs_module", "mod_dav_fs.so", "mod_dav_fs.c"),
)


def find_apache() -> tuple[str, Path] | None:
    """Apache's binary (Debian: apache2, elsewhere httpd) and its modules' directory."""
    binary = _find_binary("apache2", "httpd")
    modules = _find_module_dir("mod_dav_fs.so", APACHE_MODULE_DIRS)
    return None if binary is None or modules is None else (binary, modules)


class Apache(DavServer):
    """Apache httpd with mod_dav and mod_dav_fs, its master in the foreground
    (``-DFOREGROUND``), the event MPM with one child.

    Started as root, Apache refuses to serve as root (``User`` root needs a
    build with BIG_SECURITY_HOLE): its child runs as ``nobody``, which is why
    the work directory is world-readable and the media root and the lock
    database's directory world-writable.  Started as anyone else it keeps
    that user, and ``User``/``Group`` are left out.
    """

    brand = "apache"

    @classmethod
    def missing(cls) -> str | None:
        if _find_binary("apache2", "httpd") is None:
            return "Apache httpd is not installed (scripts/test installs apache2-bin)"
        if find_apache() is None:
            return "Apache's mod_dav_fs is missing (scripts/test installs apache2-bin)"
        return None

    def _configure(self) -> list[str]:
        found = find_apache()
        assert found is not None
        binary, modules = found
        work = self.workdir
        work.chmod(0o755)  # mkdtemp made it 0700: nobody could not reach the root
        (work / "root").chmod(0o755)
        (work / "davlock").mkdir(exist_ok=True)
        (work / "davlock").chmod(0o777)
        compiled = subprocess.run([binary, "-l"], capture_output=True, text=True).stdout
        loads = "\n".join(
            f"LoadModule {module} {modules / shared}"
            for module, shared, source in APACHE_MODULES
            if source not in compiled
        )
        user = ""
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            user = f"User #{nobody.pw_uid}\nGroup #{nobody.pw_gid}"
        # The <Directory> block is docs/media-servers.md's, for loopback.
        (work / "httpd.conf").write_text(f"""
ServerRoot "{work}"
ServerName 127.0.0.1
Listen 127.0.0.1:{self.port}
PidFile "{work / "httpd.pid"}"
DefaultRuntimeDir "{work}"
ErrorLog "{work / "error.log"}"
LogLevel warn
{loads}
{user}
StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
MinSpareThreads 1
MaxSpareThreads 16
DavLockDB "{work / "davlock" / "lock"}"
DocumentRoot "{work / "root"}"
<Directory "{self.media_root}">
    Dav On
    LimitRequestBody 0
    <RequireAny>
        Require method GET HEAD
        Require ip 127.0.0.1
    </RequireAny>
</Directory>
""")
        return [binary, "-f", str(work / "httpd.conf"), "-DFOREGROUND"]


# -- WsgiDAV -------------------------------------------------------------------------


def find_wsgidav() -> bool:
    """Whether WsgiDAV and cheroot, its WSGI server, import (the test extras have both)."""
    return all(importlib.util.find_spec(name) is not None for name in ("wsgidav", "cheroot"))


class WsgiDav(DavServer):
    """WsgiDAV on cheroot, in a child interpreter, sharing the document root as ``/``.

    WsgiDAV's defaults but for anonymous access (``simple_dc``'s ``"*": true``,
    its documented way); with them a HEAD of a directory is answered 200 with
    an empty HTML page, not a redirect (its directory browser redirects GET only).
    """

    brand = "wsgidav"

    @classmethod
    def missing(cls) -> str | None:
        if not find_wsgidav():
            return "WsgiDAV or cheroot is not installed (pip install -e '.[test]')"
        return None

    def _configure(self) -> list[str]:
        settings = {
            "host": "127.0.0.1",
            "port": self.port,
            "server": "cheroot",
            "provider_mapping": {"/": str(self.workdir / "root")},
            "simple_dc": {"user_mapping": {"*": True}},
            "verbose": 1,
        }
        config = self.workdir / "wsgidav.json"  # WsgiDAV reads JSON as well as YAML
        config.write_text(json.dumps(settings))
        return [sys.executable, "-m", "wsgidav.server.server_cli", "--config", str(config)]


DAV_SERVERS: dict[str, type[DavServer]] = {
    server.brand: server for server in (Lighttpd, Apache, WsgiDav)
}


@contextlib.contextmanager
def started(brand: type[DavServer]) -> Iterator[DavServer]:
    """One brand running in a scratch directory, removed afterwards; a brand not installed
    skips the test (fails it in CI)."""
    reason = brand.missing()
    if reason is not None:
        unavailable(reason)
    workdir = scratch_dir(f"resto-{brand.brand}-")
    try:
        with brand(workdir) as server:
            yield server
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
