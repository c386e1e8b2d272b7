"""Download progress: a Rich bar with size and speed on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Protocol


class Reporter(Protocol):
    def start(self, name: str, source: str, total: int | None, done: int) -> None: ...
    def advance(self, count: int) -> None: ...
    def finish(self) -> None: ...


class Silent:
    def start(self, name, source, total, done) -> None:
        pass

    def advance(self, count) -> None:
        pass

    def finish(self) -> None:
        pass


def _mib(count: int) -> str:
    return f"{count / 1024**2:.1f} MiB"


class PlainLines:
    """One line at the start, about every 10 seconds, and at the end (logs and CI)."""

    def __init__(self, stream=None, every_s: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.every_s = every_s

    def start(self, name, source, total, done) -> None:
        self.name, self.total, self.done = name, total, done
        self.began = self.last = time.monotonic()
        self._line(f"{name}: from {source}" + (f" (resuming at {_mib(done)})" if done else ""))

    def advance(self, count) -> None:
        self.done += count
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self._line(f"{self.name}: {self._amount()}")

    def finish(self) -> None:
        seconds = max(time.monotonic() - self.began, 1e-6)
        self._line(f"{self.name}: {self._amount()} in {seconds:.1f} s")

    def _amount(self) -> str:
        return _mib(self.done) + (f" of {_mib(self.total)}" if self.total else "")

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


class RichBar:
    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )

    def start(self, name, source, total, done) -> None:
        self.progress.start()
        self.task = self.progress.add_task(name, total=total, completed=done)

    def advance(self, count) -> None:
        self.progress.advance(self.task, count)

    def finish(self) -> None:
        self.progress.stop()


def default_reporter() -> Reporter:
    return RichBar() if sys.stderr.isatty() else PlainLines()
