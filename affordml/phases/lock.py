"""One run at a time per project. The kernel drops the lock when its process dies, so a killed run never
leaves a lock that blocks the next one; the pid written inside tells who holds it, or who held it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from affordml.errors import StateError


class RunLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = None
        self.previous_pid: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held for the whole run
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(self.path)
            handle.close()
            raise StateError(
                f"another affordml run (pid {holder or 'unknown'}) is working on this project",
                "wait for it to finish, or stop it; then run again",
            ) from None
        self.previous_pid = _read_pid(self.path)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self.handle = handle
        return self

    @property
    def recovered_stale(self) -> bool:
        """A pid was left by a run that died without releasing (killed, power loss)."""
        return self.previous_pid is not None and not _alive(self.previous_pid)

    def __exit__(self, *exc) -> None:
        if self.handle:
            self.handle.seek(0)
            self.handle.truncate()
            self.handle.close()
            self.handle = None


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
