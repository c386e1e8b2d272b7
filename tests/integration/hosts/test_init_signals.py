"""Signals to `affordml init phase host` in the middle of the playbook, on a real systemd test host.

SIGINT (Ctrl-C), SIGTERM and SIGHUP: affordml stops the ansible-playbook it started (its whole process group)
before it releases the run lock; it exits 128+signal with one line, and no ansible-playbook of the project is left.
SIGKILL: affordml cannot clean up, so its ansible-playbook may outlive it; the next run finds it from the lock
record and /proc and waits for it: the two never run at the same time.

Real CLI, real ansible-runner, a real test host (never this machine); planning from the desktop fixture."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.hosts.affordml_project import DESKTOP_FACTS, affordml_command, affordml_env, write_project
from tests.integration.hosts.test_init_resume import phase_status, task_events

pytestmark = [pytest.mark.testbed, pytest.mark.slow]

HOST_ARGS = ["init", "--facts", str(DESKTOP_FACTS), "phase", "host"]


@pytest.fixture(scope="module")
def bed(testbed_factory):
    return testbed_factory(1)


def ansible_pids(project: Path, exclude: set[int] = frozenset()) -> set[int]:
    """Live (not zombie) ansible-playbook processes whose command line names this project's folder."""
    found = set()
    marker = f"{project}/".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            line = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if b"ansible" in line and marker in line and state not in ("Z", "X"):
            found.add(int(entry.name))
    return found


def start_host_phase(project: Path, bed) -> subprocess.Popen:
    """Start `init phase host` and wait (bounded) until its playbook has finished a few tasks."""
    bed.check_routes()
    proc = subprocess.Popen(
        [*affordml_command(), "-p", str(project), *HOST_ARGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=affordml_env(),
        cwd=project,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"init ended (rc {proc.returncode}) before the signal: {proc.stderr.read()[-3000:]}")
        if phase_status(project, "host") == "running" and task_events(project) >= 3 and ansible_pids(project):
            return proc
        time.sleep(0.1)
    proc.kill()
    pytest.fail("the host phase did not get going within 300 s")


def lock_is_free(project: Path) -> bool:
    with open(project / "run.lock", "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return True


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_signal_stops_ansible_playbook_before_the_lock_is_released(bed, tmp_path: Path, signum) -> None:
    project = write_project(tmp_path / "project", bed)
    proc = start_host_phase(project, bed)
    before = ansible_pids(project)
    recorded = json.loads((project / "run.lock").read_text())
    assert recorded["pid"] == proc.pid and recorded["child"]["pid"] in before, recorded

    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    left = ansible_pids(project)  # at once: affordml may exit only after its playbook is gone

    assert proc.returncode == 128 + signum, err
    assert left == set(), f"ansible-playbook processes left after {signum.name}: {left}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"stopped by {signum.name}" in lines[0] and "Traceback" not in err, err
    assert lock_is_free(project)
    assert phase_status(project, "host") == "failed"
    print(f"{signum.name}: {len(before)} ansible process(es) stopped; affordml exited after {took:.1f} s")


def test_sigkill_then_the_next_run_never_overlaps_the_orphan(bed, tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", bed)
    proc = start_host_phase(project, bed)
    child = json.loads((project / "run.lock").read_text())["child"]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    orphans = ansible_pids(project)
    if orphans:  # hold the orphan so that the next run has to wait for it
        os.killpg(child["pgid"], signal.SIGSTOP)
    killed_at = time.monotonic()

    log = (tmp_path / "second.log").open("w")
    second = subprocess.Popen(
        [*affordml_command(), "-p", str(project), *HOST_ARGS],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=affordml_env(),
        cwd=project,
    )
    overlaps, released_at, new_seen_at = [], None, None
    while second.poll() is None:
        alive = {pid for pid in orphans if Path(f"/proc/{pid}").exists() and ansible_pids(project) & {pid}}
        fresh = ansible_pids(project, exclude=orphans)
        if alive and fresh:
            overlaps.append((sorted(alive), sorted(fresh)))
        if fresh and new_seen_at is None:
            new_seen_at = time.monotonic()
        if alive and released_at is None and time.monotonic() - killed_at > 5:
            os.killpg(child["pgid"], signal.SIGKILL)  # the user stops the orphan while the next run waits
            released_at = time.monotonic()
        time.sleep(0.05)
    log.close()
    output = (tmp_path / "second.log").read_text()

    assert overlaps == [], overlaps
    assert second.returncode == 0, output[-5000:]
    if orphans:
        assert "still works on this project: waiting" in output, output[-3000:]
        assert new_seen_at is not None and released_at is not None and new_seen_at > released_at
    assert phase_status(project, "host") == "done"
    print(
        f"SIGKILL: {len(orphans)} orphaned ansible process(es) held; the next run waited "
        f"{(new_seen_at or killed_at) - killed_at:.1f} s, then ran the host phase green"
    )
