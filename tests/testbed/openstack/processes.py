"""Starting services in the background, waiting for them with bounds, and stopping them by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path


class ServiceFailed(RuntimeError):
    """A service did not start or a setup command failed; the message names it and quotes its log."""


@dataclass(frozen=True)
class Started:
    """A process this testbed started, in a process group of its own that has its PID as id."""

    name: str
    pid: int
    start_ticks: int
    log: str

    def to_json(self) -> dict[str, object]:
        """The record stored in the run's state file."""
        return asdict(self)

    @classmethod
    def from_json(cls, record: Mapping[str, object]) -> Started:
        """Read a record back from the state file."""
        return cls(
            name=str(record["name"]),
            pid=int(record["pid"]),  # type: ignore[call-overload]
            start_ticks=int(record["start_ticks"]),
            log=str(record["log"]),
        )  # type: ignore[call-overload]


def log_tail(path: Path | str, lines: int = 30) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name, or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def start_ticks_of(pid: int) -> int:
    """When a process started, in clock ticks since boot (tells a reused PID apart)."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else -1


def is_running(process: Started) -> bool:
    """Whether the very process that was started still runs (and is not a zombie)."""
    fields = _proc_stat(process.pid)
    return bool(fields) and fields[0] != "Z" and int(fields[19]) == process.start_ticks


def start_background(
    name: str, command: list[str], log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Started:
    """Start a command in a new session with output to its log file and return its record."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    return Started(name=name, pid=child.pid, start_ticks=start_ticks_of(child.pid), log=str(log))


def group_members(pgid: int) -> list[int]:
    """Every live process in a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields and fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def _our_group(process: Started) -> list[int]:
    """Live members of a started process's group; a PID since reused by a stranger is left out."""
    members = group_members(process.pid)
    if not is_running(process):
        members = [pid for pid in members if pid != process.pid]
    return members


def _signal_group(process: Started, signum: int) -> None:
    """Send a signal to every live member of a started process's group."""
    for pid in _our_group(process):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _reap(pid: int) -> None:
    """Collect the exit status of our own child, if it is one, so that it leaves no zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_processes(processes: Iterable[Started], grace_s: float) -> list[str]:
    """SIGTERM each group, wait up to grace_s, then SIGKILL what is left; return the names killed hard."""
    processes = list(processes)
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_still_there(p) for p in processes):
        time.sleep(0.2)
    killed = [p.name for p in processes if _still_there(p)]
    for process in processes:
        _signal_group(process, signal.SIGKILL)
    for process in processes:
        _wait_gone(process, 10.0)
    return killed


def _still_there(process: Started) -> bool:
    """Whether the process or anything else in its group is alive (reaping our own children first)."""
    _reap(process.pid)
    return bool(_our_group(process))


def _wait_gone(process: Started, timeout_s: float) -> None:
    """Wait until a killed group has gone, with a bound."""
    deadline = time.monotonic() + timeout_s
    while _still_there(process) and time.monotonic() < deadline:
        time.sleep(0.1)


def run_checked(
    name: str,
    command: list[str],
    log: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 600,
    input_text: str | None = None,
) -> None:
    """Run a setup command to completion with its output in a log; raise with the log's tail on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(command)}\n".encode())
        out.flush()
        try:
            subprocess.run(
                command,
                input=input_text.encode() if input_text else None,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                timeout=timeout_s,
                check=True,
            )
        except subprocess.TimeoutExpired as error:
            raise ServiceFailed(f"{name} took more than {timeout_s:.0f}s; log {log}:\n{log_tail(log)}") from error
        except subprocess.CalledProcessError as error:
            raise ServiceFailed(f"{name} failed (exit {error.returncode}); log {log}:\n{log_tail(log)}") from error


def wait_until(
    what: str, ready: Callable[[], bool], timeout_s: float, watched: Started | None = None, interval_s: float = 0.25
) -> None:
    """Poll until ready() holds; fail early if the watched process died, and at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        if ready():
            return
        if watched is not None and not is_running(watched):
            raise ServiceFailed(
                f"{watched.name} exited while waiting for {what}; log {watched.log}:\n{log_tail(watched.log)}"
            )
        if time.monotonic() > deadline:
            where = f"; log {watched.log}:\n{log_tail(watched.log)}" if watched else ""
            raise ServiceFailed(f"timed out after {timeout_s:.0f}s waiting for {what}{where}")
        time.sleep(interval_s)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def http_answers(url: str) -> bool:
    """Whether an HTTP server answers the URL with a status below 500."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (OSError, ValueError):
        return False
