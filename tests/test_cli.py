"""The resto-fast command: the demo end to end, size parsing, and one voice across subcommands."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from resto_fast import BUFFER_IMPLEMENTATION, ConfigurationError, __version__
from resto_fast._cli import build_parser, connection_config, main, parse_size


def test_the_demo_replicates_and_verifies_every_copy(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["demo", "--servers", "2", "--files", "30", "--file-size", "8KiB", "--large", "3MiB"]
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{BUFFER_IMPLEMENTATION} chunk buffer" in out
    assert "OK: 31 files x 2 hosts, every copy verified" in out
    assert out.count("31/31") == 2  # the per-host table: every copy verified on each host
    # Then one server drifts, and resync finds exactly that, repairs it, and finds nothing more.
    assert "loses 25 files and gains one" in out
    assert out.count("\nmissing   uploads/") == 25
    assert out.count("\nextra     uploads/stray.jpg") == 1
    assert out.count("OK: 2 hosts hold every source file and nothing more") == 2


def test_the_demo_without_a_large_file_does_not_mention_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--servers", "1", "--files", "5", "--large", "0"]) == 0
    out = capsys.readouterr().out
    assert "generating 5 small files (up to 16.0 KiB) in" in out
    assert "MiB in" not in out.splitlines()[1]


@pytest.mark.parametrize(
    ("text", "size"),
    [("512", 512), ("16KiB", 16384), ("16k", 16384), ("1.5MiB", 1572864), ("2MB", 2_000_000)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_bad_sizes() -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size("lots")


def test_version_names_the_buffer() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "resto_fast", "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == f"resto_fast {__version__} ({BUFFER_IMPLEMENTATION} buffer)"


def test_every_subcommand_is_described() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) == {"sync", "verify", "doctor", "demo", "serve"}
    for name, sub in commands.choices.items():
        assert sub.description, name
        assert len(sub.description) > 40, name
        assert all(a.help for a in sub._actions if a.dest not in ("help", "_")), name


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["serve", "--servers", "0"], "serve: error: argument --servers: must be at least 1"),
        (["demo", "--servers", "0"], "demo: error: argument --servers: must be at least 1"),
        (["demo", "--hosts", "2"], "demo: error: demo --hosts is now --servers N"),
        (["serve", "--count", "2"], "serve: error: serve --count is now --servers N"),
        (["sync", "/tmp", "--base-url", "/m/"], "sync: error: the following arguments are"),
    ],
)
def test_usage_errors_are_one_line_from_the_subcommand(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()  # one line, not the usage block
    assert says in line
    assert line.startswith("resto-fast " + argv[0])
    assert line.endswith(f"(see resto-fast {argv[0]} --help)")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--hosts", "a b"], "invalid media host 'a b'"),
        (["--hosts", "h:1", "--base-url", "/m/?q"], "query or fragment"),
    ],
)
def test_configuration_errors_are_one_line_and_status_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    full = ["verify", "/tmp", *argv] + ([] if "--base-url" in argv else ["--base-url", "/m/"])
    assert main(full) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("resto-fast verify: error: ")
    assert says in err


def test_serve_on_a_busy_port_says_so_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--servers", "1", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"resto-fast serve: error: cannot listen on 127.0.0.1:{port}: the port is in use "
        "(choose another --port, or leave it out for free ports)"
    )


@pytest.mark.parametrize(
    ("flag", "expected"),
    [([], "auto"), (["--make-directories"], True), (["--make-directories", "never"], False)],
)
def test_make_directories_when(flag: list[str], expected: object) -> None:
    argv = ["verify", "/tmp", "--hosts", "m1", "--base-url", "/m/", *flag]
    args = build_parser().parse_args(argv)
    assert connection_config(args).make_directories == expected


def test_headers_from_the_command_line_and_a_file(tmp_path: Path) -> None:
    headers = tmp_path / "headers"
    headers.write_text("Authorization: Bearer abc\n\nX-Tenant:  t1  \n")
    argv = ["verify", "/tmp", "--hosts", "m1", "--base-url", "/m/"]
    args = build_parser().parse_args([*argv, "--header", f"@{headers}", "--header", "X-A: b"])
    assert connection_config(args).headers == (
        ("Authorization", "Bearer abc"),
        ("X-Tenant", "t1"),
        ("X-A", "b"),
    )
    with pytest.raises(ConfigurationError, match="NAME: VALUE"):
        connection_config(build_parser().parse_args([*argv, "--header", "just-a-token"]))
