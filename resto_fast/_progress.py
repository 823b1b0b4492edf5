"""Progress for the long commands (``sync``, ``verify``, ``demo``): counters and their display.

A :class:`Meter` counts one phase (files and bytes, with totals when known)
and words it: ``5,000/10,000 files  19.5/39.1 MiB  12.3 MiB/s  ETA 0:02``.
A :class:`Display` shows meters on stderr in one of three ways: ``"live"``,
redrawn in place on a terminal by `rich <https://rich.readthedocs.io>`_ (the
``cli`` extra), with lines printed above it; ``"lines"``, one plain line
per meter every ``interval`` seconds and at the end, for logs and cron mail;
``"off"``.  Without rich a terminal gets plain lines too.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any, Literal, TextIO

__all__ = ["Display", "Meter", "human_bytes"]

Mode = Literal["live", "lines", "off"]
MiB = 1024 * 1024


def human_bytes(count: float) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", MiB), ("KiB", 1024)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"


@dataclasses.dataclass
class Meter:
    """One phase's counters: items (``unit``) and bytes done, and their totals when known."""

    label: str
    unit: str = "files"
    done: int = 0
    total: int | None = None
    bytes_done: int = 0
    bytes_total: int | None = None
    note: str = ""
    started: float = dataclasses.field(default_factory=time.monotonic)
    finished: float | None = None

    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def rate(self) -> float:
        """Bytes a second so far (0 before anything moved)."""
        elapsed = self.elapsed()
        return self.bytes_done / elapsed if elapsed > 0 else 0.0

    def text(self) -> str:
        total = "" if self.total is None else f"/{self.total:,}"
        parts = [f"{self.done:,}{total} {self.unit}"]
        if self.bytes_total is not None or self.bytes_done:
            of = "" if self.bytes_total is None else f"/{human_bytes(self.bytes_total)}"
            parts.append(f"{human_bytes(self.bytes_done)}{of}")
            rate = self.rate()
            parts.append(f"{human_bytes(rate)}/s")
            if self.finished is None and self.bytes_total is not None and rate > 0:
                parts.append(f"ETA {_clock(max(self.bytes_total - self.bytes_done, 0) / rate)}")
        if self.finished is not None:
            parts.append(f"in {self.elapsed():.1f} s")
        if self.note:
            parts.append(self.note)
        return "  ".join(parts)

    @property
    def fraction(self) -> float | None:
        if self.bytes_total:
            return min(self.bytes_done / self.bytes_total, 1.0)
        if self.total:
            return min(self.done / self.total, 1.0)
        return None


class Display:
    """Shows some meters on ``stream`` (stderr by default); a context manager."""

    def __init__(
        self,
        meters: list[Meter],
        *,
        mode: Mode | None = None,
        stream: TextIO | None = None,
        interval: float = 10.0,
        prefix: str = "",
    ) -> None:
        self.meters = meters
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.prefix = prefix
        if mode is None:
            mode = "live" if self.stream.isatty() else "lines"
        self._rich: Any = None
        self._tasks: list[Any] = []
        if mode == "live":
            self._rich = _rich_progress(self.stream)
            if self._rich is None:
                mode = "lines"
        self.mode: Mode = mode
        self._printed = time.monotonic()

    def __enter__(self) -> Display:
        if self._rich is not None:
            self._rich.start()
            self._tasks = [
                self._rich.add_task(meter.label, total=None, detail="") for meter in self.meters
            ]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def refresh(self) -> None:
        """Redraw (live), or print the meters when ``interval`` has passed (lines)."""
        if self._rich is not None:
            for task, meter in zip(self._tasks, self.meters, strict=True):
                fraction = meter.fraction
                self._rich.update(
                    task,
                    total=None if fraction is None else 1000,
                    completed=0 if fraction is None else int(fraction * 1000),
                    detail=meter.text(),
                )
        elif self.mode == "lines" and time.monotonic() - self._printed >= self.interval:
            self._print_meters()

    def print(self, text: str, *, stream: TextIO | None = None) -> None:
        """A line of output (stdout unless ``stream``) that leaves a live display whole."""
        target = stream or sys.stdout
        if self._rich is not None and target.isatty():  # the same terminal: print above the bars
            self._rich.console.print(text, markup=False, highlight=False, soft_wrap=True)
            return
        print(text, file=target, flush=True)

    def close(self) -> None:
        if self._rich is not None:
            self.refresh()
            self._rich.stop()
            self._rich = None
        elif self.mode == "lines":
            self._print_meters()
        self.mode = "off"

    def _print_meters(self) -> None:
        self._printed = time.monotonic()
        for meter in self.meters:
            print(f"{self.prefix}{meter.label}: {meter.text()}", file=self.stream, flush=True)


def _rich_progress(stream: TextIO) -> Any:
    """A rich Progress drawing on ``stream``: description, bar, our own words; None without rich."""
    try:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn
    except ImportError:
        return None
    return Progress(
        TextColumn("  {task.description:<12}"),
        BarColumn(bar_width=30),
        TextColumn("{task.fields[detail]}"),
        console=Console(file=stream),
        refresh_per_second=8,
        redirect_stdout=False,
        redirect_stderr=False,
    )
