"""One run at a time per project. The kernel drops the lock when its process dies, so a killed run never
leaves a lock that blocks the next one. The lock file says who holds it (or held it) and which ansible-playbook
that run started (pid, process group, start time): after a SIGKILL that child can outlive its parent, so the
next run waits for it (bounded) and refuses to overlap with it."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from affordml import procs
from affordml.errors import StateError, UnsafeFile

ORPHAN_WAIT_S = 60.0


class RunLock:
    def __init__(self, path: Path, say: Callable[[str], None] | None = None, orphan_wait_s: float | None = None):
        self.path = path
        self.fd: int | None = None
        self.previous_pid: int | None = None
        self.say = say or (lambda _: None)
        self.orphan_wait_s = ORPHAN_WAIT_S if orphan_wait_s is None else orphan_wait_s
        self.record: dict = {}

    def __enter__(self) -> RunLock:
        from affordml.safefile import open_own_rw

        fd = open_own_rw(self.path.parent, self.path.name)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _parse(_read_fd(fd), self.path).get("pid")
            os.close(fd)
            raise StateError(
                f"another affordml run (pid {holder or 'unknown'}) is working on this project",
                "wait for it to finish, or stop it; then run again",
            ) from None
        try:
            previous = _parse(_read_fd(fd), self.path)
            self.previous_pid = previous.get("pid")
            self._wait_for_orphans(previous)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.record = {"pid": os.getpid(), "start": procs.start_time(os.getpid())}
        self._write()
        return self

    def _wait_for_orphans(self, previous: dict) -> None:
        """An ansible-playbook left by a killed run still works on the project: wait for it, then refuse."""
        root = str(self.path.parent)
        deadline = time.monotonic() + self.orphan_wait_s
        told = False
        while True:
            left = procs.survivors(previous.get("child"), root)
            if not left:
                return
            pgid = left[0].pgid
            if not told:
                self.say(
                    f"[init] ansible-playbook of an interrupted run (pid {left[0].pid}) still works on this project: "
                    f"waiting up to {self.orphan_wait_s:.0f} s for it to end"
                )
                told = True
            if time.monotonic() >= deadline:
                raise StateError(
                    f"ansible-playbook of an interrupted affordml run (pid {left[0].pid}, process group {pgid}) "
                    "still works on this project",
                    f"wait for it to end, or stop it (`kill -TERM -- -{pgid}`); then run again",
                )
            time.sleep(0.5)

    def started_child(self, pid: int) -> None:
        """Record the ansible-playbook this run started, so that a run after a SIGKILL can find it."""
        self.record["child"] = {"pid": pid, "pgid": procs.pgid(pid), "start": procs.start_time(pid)}
        self._write()

    def child_ended(self) -> None:
        self.record.pop("child", None)
        self._write()

    def _write(self) -> None:
        if self.fd is None:
            return
        data = (json.dumps(self.record, sort_keys=True) + "\n").encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        os.fsync(self.fd)

    @property
    def recovered_stale(self) -> bool:
        """A pid was left by a run that died without releasing (killed, power loss)."""
        return self.previous_pid is not None and not procs.alive(self.previous_pid)

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None


def _read_fd(fd: int) -> str:
    data = os.pread(fd, 64 * 1024, 0)
    return data.decode(errors="replace")


def _parse(text: str, path: Path) -> dict:
    """The lock's record: JSON from this version, a bare pid from older ones, nothing when empty."""
    text = text.strip()
    if not text:
        return {}
    if text.isdigit():
        return {"pid": int(text)}
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        raise UnsafeFile(
            f"{path} exists and is not affordml's run lock",
            f"move it aside (`mv {path} {path}.moved`), then run again",
        )
    child = data.get("child")
    if child is not None and not (isinstance(child, dict) and all(isinstance(child.get(k), int) for k in ("pid",))):
        data.pop("child")
    return data
