"""The ``resto-fast`` command: ``sync``, ``verify``, ``doctor``, ``demo`` and ``serve``.

One word per idea across the subcommands: ``--hosts`` is always a list of
media hosts (``host[:port]``, repeated or comma-separated, as in
``RESTO_MEDIA_HOSTS``), ``--servers`` a number of embedded servers to start.
Every error is one line on stderr that says what to do, and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import getpass
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from ._argtypes import at_least_one, parse_size, seconds
from ._buffer import IMPLEMENTATION
from ._config import ReplicatorConfig
from ._exceptions import ConfigurationError

__all__ = [
    "CommandError",
    "add_connection_options",
    "connection_config",
    "main",
    "parse_size",
]


class CommandError(Exception):
    """A usage or configuration problem: one line on stderr, exit status 2."""


def host_list(values: Sequence[str] | None) -> list[str]:
    """``--hosts a,b --hosts c`` -> ``["a", "b", "c"]``."""
    return [host.strip() for value in values or () for host in value.split(",") if host.strip()]


def add_connection_options(parser: argparse.ArgumentParser, *, hosts_required: bool) -> None:
    """The options every command that talks to media servers shares, as the Replicator has them."""
    group = parser.add_argument_group("media servers")
    group.add_argument(
        "--hosts",
        action="append",
        metavar="H1,H2,...",
        required=hosts_required,
        help="media hosts, host[:port] as in RESTO_MEDIA_HOSTS; repeat or separate with commas",
    )
    group.add_argument(
        "--base-url",
        required=hosts_required,
        metavar="URL",
        help="scheme and path of the files on every host, e.g. /media/ or https://x/media/",
    )
    group.add_argument(
        "--timeout",
        type=seconds,
        default=None,
        metavar="S",
        help="seconds to connect, and without progress, before a host is given up (default 2)",
    )
    group.add_argument(
        "--total-timeout",
        type=seconds,
        default=None,
        metavar="S",
        help="hard cap on one request to one host, in seconds (default: none)",
    )
    group.add_argument("--ca-file", metavar="PATH", help="CA bundle for https media servers")
    group.add_argument(
        "--no-verify-tls",
        action="store_true",
        help="do not check https media servers' certificates",
    )
    group.add_argument(
        "--user",
        metavar="USER",
        help="HTTP Basic user for the media servers; the password comes from the "
        f"{PASSWORD_VARIABLE} environment variable, else is asked for on a terminal",
    )
    group.add_argument(
        "--header",
        action="append",
        metavar="'NAME: VALUE'",
        help="a header sent with every request (a bearer token...); repeat for more. "
        "@FILE reads them from FILE, one a line, which keeps them out of the process list",
    )
    group.add_argument("--client-cert", metavar="PATH", help="TLS client certificate (PEM)")
    group.add_argument(
        "--client-key", metavar="PATH", help="its private key, when not in the certificate file"
    )
    group.add_argument(
        "--make-directories",
        choices=sorted(_MAKE_DIRECTORIES),
        nargs="?",
        const="always",
        default="auto",
        metavar="WHEN",
        help="WebDAV MKCOL of the directories above a file: auto (after a 409 to its PUT, as "
        "lighttpd, Apache and wsgidav answer; the default), always (before each PUT), never",
    )


_MAKE_DIRECTORIES: dict[str, bool | str] = {"auto": "auto", "always": True, "never": False}
#: Where --user's password comes from: never the command line, which every user can read.
PASSWORD_VARIABLE = "RESTO_FAST_PASSWORD"


def _auth(user: str | None) -> tuple[str, str] | None:
    if user is None:
        return None
    password = os.environ.get(PASSWORD_VARIABLE)
    if password is None:
        if not sys.stdin.isatty():
            raise ConfigurationError(
                f"--user {user} needs a password: set {PASSWORD_VARIABLE} in the environment"
            )
        password = getpass.getpass(f"password of {user} on the media servers: ")
    return user, password


def _headers(values: Sequence[str] | None) -> dict[str, str]:
    """``--header 'Name: value'`` and ``--header @file`` -> {name: value}."""
    lines: list[str] = []
    for value in values or ():
        if value.startswith("@"):
            try:
                lines.extend(Path(value[1:]).read_text().splitlines())
            except OSError as exc:
                raise ConfigurationError(f"--header {value}: {exc.strerror}") from None
        else:
            lines.append(value)
    headers = {}
    for line in lines:
        if not line.strip():
            continue
        name, colon, header_value = line.partition(":")
        if not colon:
            # Not the line itself: it may be a token given without its name.
            raise ConfigurationError("--header takes 'NAME: VALUE' (a line without ':' given)")
        headers[name.strip()] = header_value.strip()
    return headers


def connection_config(args: argparse.Namespace, **overrides: Any) -> ReplicatorConfig:
    """The Replicator config the connection options describe; ConfigurationError when bad."""
    options: dict[str, Any] = {
        "hosts": tuple(host_list(args.hosts)),
        "base_url": args.base_url or "/",
        "verify_tls": not args.no_verify_tls,
        "ca_file": args.ca_file,
        "make_directories": _MAKE_DIRECTORIES[args.make_directories],
        "total_timeout": args.total_timeout,
        "auth": _auth(args.user),
        "headers": _headers(args.header),
        "client_cert": args.client_cert,
        "client_key": args.client_key,
    }
    if args.timeout is not None:
        options["timeout"] = args.timeout
    options.update(overrides)
    if not options["hosts"]:
        raise ConfigurationError("no media host given: name them with --hosts H1,H2,...")
    return ReplicatorConfig(**options)


# -- the subcommands ---------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from .http_server import TestHttpServer

    servers: list[TestHttpServer] = []
    try:
        for index in range(args.servers):
            port = args.port + index if args.port else 0
            root = Path(args.root) / f"host{index}" if args.root else None
            try:
                servers.append(TestHttpServer(args.listen, port, root=root).start())
            except OSError as exc:
                where = f"{args.listen}:{port}" if port else args.listen
                if exc.errno == errno.EADDRINUSE:
                    raise CommandError(
                        f"cannot listen on {where}: the port is in use "
                        "(choose another --port, or leave it out for free ports)"
                    ) from None
                raise CommandError(f"cannot listen on {where}: {exc.strerror or exc}") from None
        for server in servers:
            where = f"files under {server.files.root}" if args.root else "files in memory"  # type: ignore[union-attr]
            print(f"serving http://{server.host}/ ({where})", flush=True)
        print("hosts: " + " ".join(server.host for server in servers), flush=True)
        print(f"RESTO_MEDIA_HOSTS = {[server.host for server in servers]!r}", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    finally:
        for server in servers:
            server.stop()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo(
        servers=args.servers,
        small_files=args.files,
        small_size=args.file_size,
        large_size=args.large,
        workdir=args.workdir,
    )


def _sync(args: argparse.Namespace) -> int:
    from ._sync.command import run_command

    return run_command(args)


def _doctor(args: argparse.Namespace) -> int:
    from ._doctor import run_doctor

    config = connection_config(args)
    return run_doctor(config, max_size=args.max_size, out=sys.stdout)


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line that says where to look, not the whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Renamed(argparse.Action):
    """An option that was renamed: say what to write instead of a bare 'unrecognized'."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object, **__: object) -> None:
        parser.error(str(self.help))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="resto-fast",
        description="Replicate files to several HTTP media servers at once, and keep them in step.",
    )
    parser.add_argument(
        "--version", action="version", version=f"resto_fast {__version__} ({IMPLEMENTATION} buffer)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from ._sync.arguments import add_sync_arguments

    for name, summary, description in (
        (
            "sync",
            "make every media server hold what the source holds",
            "Compare the source (a directory, or --source-host) with every media server, "
            "directory by directory, and upload what is missing or different (and, with "
            "--delete, remove what the source lacks). Exit 0 when every host matches, 1 when "
            "differences remain, 2 for a usage or configuration error.",
        ),
        (
            "verify",
            "report how every media server differs from the source; change nothing",
            "Compare as sync does and report what differs, host by host, without changing "
            "anything. Exit 0 when every host matches, 1 when differences were found, 2 for a "
            "usage or configuration error.",
        ),
    ):
        command = commands.add_parser(name, help=summary, description=description)
        add_sync_arguments(command, mode=name)
        add_connection_options(command, hosts_required=True)
        command.set_defaults(run=_sync)

    doctor = commands.add_parser(
        "doctor",
        help="check that each media server can serve replication, and say how to fix it",
        description="Probe each media server as replication uses it (PUT, replace, GET, HEAD, "
        "DELETE, PROPFIND, MKCOL, body sizes, keep-alive, TLS) with a throw-away name under the "
        "base URL, remove what it wrote, and print what works and how to fix what does not. "
        "Exit 1 when a host cannot serve replication.",
    )
    add_connection_options(doctor, hosts_required=True)
    doctor.add_argument(
        "--max-size",
        type=parse_size,
        default=parse_size("64MiB"),
        metavar="SIZE",
        help="largest body to try (default 64MiB)",
    )
    doctor.set_defaults(run=_doctor)

    demo = commands.add_parser(
        "demo",
        help="replicate a generated set of files to embedded media servers, then verify them",
        description="Start embedded media servers in a child process, replicate many small "
        "files and one large one to all of them with a progress display, then read every copy "
        "back over HTTP and check its size and SHA-256.",
    )
    demo.add_argument(
        "--servers", type=at_least_one, default=3, metavar="N", help="media servers (default 3)"
    )
    demo.add_argument(
        "--files", type=at_least_one, default=500, metavar="N", help="small files (default 500)"
    )
    demo.add_argument(
        "--file-size",
        type=parse_size,
        default=parse_size("16KiB"),
        metavar="SIZE",
        help="largest small file (default 16KiB; sizes vary up to it)",
    )
    demo.add_argument(
        "--large",
        type=parse_size,
        default=parse_size("256MiB"),
        metavar="SIZE",
        help="size of the one large file (default 256MiB; 0 for none)",
    )
    demo.add_argument("--workdir", help="where sources and server roots go (default: a temp dir)")
    demo.add_argument(
        "--hosts", action=_Renamed, nargs=0, help="demo --hosts is now --servers N", dest="_"
    )
    demo.set_defaults(run=_demo)

    serve = commands.add_parser(
        "serve",
        help="run embedded media servers until interrupted",
        description="Run embedded media servers (PUT, DELETE, GET, HEAD, PROPFIND) for trying "
        "resto_fast out; they print their hosts. Not for production: use nginx, lighttpd or "
        "Apache there.",
    )
    serve.add_argument(
        "--servers", type=at_least_one, default=3, metavar="N", help="servers (default 3)"
    )
    serve.add_argument(
        "--listen",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address to listen on (default 127.0.0.1)",
    )
    serve.add_argument(
        "--port", type=int, default=0, help="first port; the others follow (default: free ports)"
    )
    serve.add_argument("--root", help="keep files under this directory (default: in memory)")
    serve.add_argument(
        "--count", action=_Renamed, nargs=0, help="serve --count is now --servers N", dest="_"
    )
    serve.set_defaults(run=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except (CommandError, ConfigurationError) as exc:
        print(f"resto-fast {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
