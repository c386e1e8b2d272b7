"""`affordml init` killed with SIGKILL in the middle of a phase, then run again: it recovers the lock, resumes the
interrupted phase and ends green. Afterwards every generated secret is found only in the project's 0600 files.

Real CLI, real ansible-runner, a real systemd test host (never this machine); planning from the desktop fixture."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.hosts.affordml_project import (
    DESKTOP_FACTS,
    affordml_command,
    affordml_env,
    run_affordml,
    simulate_reboot,
    write_project,
)

pytestmark = [pytest.mark.testbed, pytest.mark.slow]

LATER_PHASES = ("preflight", "cloud", "kubernetes", "gpu", "ml", "verify")


def init_args() -> list[str]:
    args = ["init", "--facts", str(DESKTOP_FACTS)]
    for phase in LATER_PHASES:
        args += ["--skip-phase", phase]
    return args


def phase_status(project: Path, name: str) -> str | None:
    try:
        state = json.loads((project / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return state.get("phases", {}).get(name, {}).get("status")


def task_events(project: Path) -> int:
    """Tasks finished so far in the host run (ansible-runner writes one JSON file per event)."""
    count = 0
    for path in project.glob("runs/*-host/artifacts/*/job_events/*.json"):
        try:
            count += '"event": "runner_on_ok"' in path.read_text()
        except OSError:
            continue
    return count


def start_and_kill_in_host_phase(project: Path, bed) -> int:
    """Start init, wait (bounded) until the host phase has finished a few tasks, SIGKILL it; return its pid."""
    bed.check_routes()
    proc = subprocess.Popen(
        [*affordml_command(), "-p", str(project), *init_args()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=affordml_env(),
        cwd=project,
    )
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"init ended (rc {proc.returncode}) before it could be killed mid-phase")
            if phase_status(project, "host") == "running" and task_events(project) >= 3:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the host phase did not get going within 300 s")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.pid


def wait_for_orphans(project: Path, timeout: float = 60) -> None:
    """ansible-playbook loses its terminal when its parent dies; wait (bounded) until none of ours is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-f", f"{project}/runs/"], capture_output=True, text=True).stdout.split()
        if not found:
            return
        time.sleep(0.5)
    pytest.fail(f"ansible-playbook processes of the killed run are still alive after {timeout} s")


def secret_values(project: Path) -> set[str]:
    """Every generated secret string (nested values included) in the project's secrets/*.yml."""
    values: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, str) and len(node) >= 12:
            values.update(line for line in node.splitlines() if len(line) >= 12 and "-----" not in line)

    for path in (project / "secrets").glob("*.yml"):
        walk(yaml.safe_load(path.read_text()))
    return values


def test_sigkill_mid_phase_then_init_resumes_and_secrets_stay_private(testbed_factory, tmp_path: Path) -> None:
    bed = testbed_factory(1)
    project = write_project(tmp_path / "project", bed)

    killed_pid = start_and_kill_in_host_phase(project, bed)
    assert phase_status(project, "host") == "running"
    wait_for_orphans(project)

    started = time.monotonic()
    resumed = run_affordml(project, bed, *init_args())
    output = resumed.stdout + resumed.stderr
    assert f"the previous run (pid {killed_pid}) was interrupted; resuming" in output
    assert "[host] the previous run stopped inside this phase: running it again" in output
    # the host phase changed the kernel arguments: init stops before openstack until the host has rebooted
    assert resumed.returncode == 10, output[-6000:]
    assert "must reboot before phase openstack" in resumed.stderr and "[openstack]" not in resumed.stdout
    assert phase_status(project, "host") == "done" and phase_status(project, "openstack") is None
    simulate_reboot(bed)

    resumed = run_affordml(project, bed, *init_args())
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output[-6000:]
    assert "[host] a reboot was pending: running this phase again to check it" in output
    assert "[openstack] done" in output
    assert phase_status(project, "host") == "done" and phase_status(project, "openstack") == "done"
    print(f"resumed init (host + openstack phases) ended green in {time.monotonic() - started:.1f} s")

    again = run_affordml(project, bed, *init_args())
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    assert "[host] done earlier, inputs unchanged: nothing to do" in again.stdout
    assert "[openstack] done earlier, inputs unchanged: nothing to do" in again.stdout

    secrets = secret_values(project)
    assert len(secrets) > 20  # kolla's passwords and affordml's own
    secret_files = set((project / "secrets").glob("*.yml"))
    for path in secret_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    leaks = []
    for path in project.rglob("*"):
        if not path.is_file() or path.is_symlink() or path in secret_files:
            continue
        text = path.read_text(errors="ignore")
        leaks += [(str(path.relative_to(project)), s[:6] + "…") for s in secrets if s in text]
    assert leaks == [], leaks
