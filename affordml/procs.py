"""Processes as /proc shows them: start times, process groups, and the ansible-playbook processes of a project
that outlived the affordml run that started them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    sid: int
    start: int  # clock ticks after boot: with the pid, it names one process (pids are reused)


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read(pid: int) -> Proc | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: the fields after it follow the last ')'
    rest = text[text.rindex(")") + 2 :].split()
    if rest[0] in ("Z", "X"):  # a zombie works on nothing
        return None
    return Proc(pid, int(rest[1]), int(rest[2]), int(rest[3]), int(rest[19]))


def start_time(pid: int) -> int | None:
    proc = read(pid)
    return proc.start if proc else None


def pgid(pid: int) -> int | None:
    proc = read(pid)
    return proc.pgid if proc else None


def cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir(PROC) if name.isdigit()]


def children(parent: int) -> list[Proc]:
    found = []
    for pid in all_pids():
        proc = read(pid)
        if proc and proc.ppid == parent:
            found.append(proc)
    return found


def ancestors(pid: int) -> set[int]:
    """pid and every process above it (a wrapper script that names the project is not an orphan)."""
    found = set()
    while pid > 1 and pid not in found:
        found.add(pid)
        proc = read(pid)
        pid = proc.ppid if proc else 0
    return found


def survivors(child: dict | None, project_root: str) -> list[Proc]:
    """Live processes of the recorded child's process group (started no earlier than it), and any
    ansible-playbook whose command line names this project's folder; never this process."""
    mine = ancestors(os.getpid())
    marker = project_root.rstrip("/") + "/"
    group = child.get("pgid") if child else None
    born = (child or {}).get("start") or 0
    found = []
    for pid in all_pids():
        if pid in mine:
            continue
        proc = read(pid)
        if proc is None:
            continue
        in_group = group is not None and proc.pgid == group and proc.start >= born
        if in_group or ("ansible" in (line := cmdline(pid)) and marker in line):
            found.append(proc)
    return sorted(found, key=lambda p: p.pid)


def stop_group(pgid: int, grace_s: float = 5.0) -> None:
    """SIGTERM to a whole process group, SIGKILL to what is left after grace_s."""
    import signal
    import time

    for signum, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not any(p.pgid == pgid for p in (read(pid) for pid in all_pids()) if p):
                return
            time.sleep(0.1)
