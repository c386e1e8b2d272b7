"""Times each step of a bring-up or teardown and reports it as it finishes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

Report = Callable[[str], None]


def print_report(line: str) -> None:
    """The default report: print and flush at once."""
    print(line, flush=True)


@dataclass
class StepTimer:
    """Collects (step, seconds) pairs and reports each step when it ends."""

    report: Report = print_report
    started: float = field(default_factory=time.monotonic)
    steps: list[tuple[str, float]] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time one step; report it even when it fails."""
        begin = time.monotonic()
        outcome = "failed after"
        try:
            yield
            outcome = "took"
        finally:
            seconds = time.monotonic() - begin
            self.steps.append((name, seconds))
            self.report(f"[openstack testbed {self.elapsed():6.1f}s] {name} {outcome} {seconds:.1f}s")

    def elapsed(self) -> float:
        """Seconds since the timer started."""
        return time.monotonic() - self.started

    def summary(self, what: str) -> str:
        """One line with the total time."""
        return f"[openstack testbed {self.elapsed():6.1f}s] {what} in {self.elapsed():.1f}s"
