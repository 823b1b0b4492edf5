"""The ``resto-fast`` command: ``demo`` replicates generated files, ``serve`` runs media servers."""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from ._buffer import IMPLEMENTATION

__all__ = ["main", "parse_size"]

_UNITS = {
    "": 1,
    "B": 1,
    "K": 1024,
    "KB": 1000,
    "KIB": 1024,
    "M": 1024**2,
    "MB": 1000**2,
    "MIB": 1024**2,
    "G": 1024**3,
    "GB": 1000**3,
    "GIB": 1024**3,
}


def parse_size(text: str) -> int:
    """``"16KiB"`` -> 16384; plain numbers are bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    if match is None or match[2].upper() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 16KiB, 256MiB)")
    return int(float(match[1]) * _UNITS[match[2].upper()])


def _serve(args: argparse.Namespace) -> int:
    from .http_server import TestHttpServer

    servers = []
    for index in range(args.count):
        port = args.port + index if args.port else 0
        root = Path(args.root) / f"host{index}" if args.root else None
        servers.append(TestHttpServer(args.host, port, root=root).start())
    for server in servers:
        where = f"files under {server.files.root}" if args.root else "files in memory"  # type: ignore[union-attr]
        print(f"serving http://{server.host}/ ({where})", flush=True)
    print("hosts: " + " ".join(server.host for server in servers), flush=True)
    print(f"RESTO_MEDIA_HOSTS = {[server.host for server in servers]!r}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.stop()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo(
        hosts=args.hosts,
        small_files=args.files,
        small_size=args.file_size,
        large_size=args.large,
        workdir=args.workdir,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="resto-fast",
        description="Replicate files to several HTTP media servers at once.",
    )
    parser.add_argument(
        "--version", action="version", version=f"resto_fast {__version__} ({IMPLEMENTATION} buffer)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="replicate a generated set of files to embedded media servers"
    )
    demo.add_argument("--hosts", type=int, default=3, help="media servers to start (default 3)")
    demo.add_argument("--files", type=int, default=500, help="small files (default 500)")
    demo.add_argument(
        "--file-size",
        type=parse_size,
        default=parse_size("16KiB"),
        help="largest small file (default 16KiB; sizes vary up to it)",
    )
    demo.add_argument(
        "--large",
        type=parse_size,
        default=parse_size("256MiB"),
        help="size of the one large file (default 256MiB; 0 for none)",
    )
    demo.add_argument("--workdir", help="where sources and server roots go (default: a temp dir)")
    demo.set_defaults(run=_demo)

    serve = commands.add_parser("serve", help="run embedded media servers until interrupted")
    serve.add_argument("--count", type=int, default=3, help="servers to start (default 3)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=0, help="first port (default: any free ports)")
    serve.add_argument("--root", help="keep files under this directory (default: in memory)")
    serve.set_defaults(run=_serve)

    args = parser.parse_args(argv)
    if getattr(args, "hosts", 1) < 1 or getattr(args, "count", 1) < 1:
        parser.error("at least one media server is needed")
    result: int = args.run(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
