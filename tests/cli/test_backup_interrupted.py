"""Ctrl-C in the middle of `affordml backup`, for real: the openstack part runs the real ansible-playbook (through
ansible-runner) against a host on loopback that accepts the SSH connection and never answers; SIGINT arrives while
it waits. One line, exit 130, ansible-playbook's process group gone, and the half backup listed as incomplete,
never as complete, and refused by restore."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from tests.cli.conftest import FIXTURES, console_script

STATE = {"version": 1, "phases": {name: {"status": "done"} for name in ("preflight", "host", "openstack")}}


@pytest.fixture
def tarpit():
    """A loopback port that accepts connections and never sends a byte (an SSH server that hangs)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


@pytest.mark.skipif(
    shutil.which("ansible-playbook") is None or shutil.which("ssh") is None,
    reason="needs ansible-playbook (ansible-core) and an ssh client",
)
def test_ctrl_c_mid_backup_leaves_no_complete_backup_and_no_child(tmp_path, tarpit):
    project = tmp_path / "p"
    project.mkdir(mode=0o700)
    (project / "affordml.yaml").write_text(f"hosts:\n  - name: main\n    address: 127.0.0.1\n    port: {tarpit}\n")
    (project / "state.json").write_text(json.dumps(STATE))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AFFORDML_", "ANSIBLE_"))}
    env.update({"HOME": str(tmp_path), "NO_COLOR": "1", "COLUMNS": "200"})
    argv = [*console_script(), "-p", str(project), "backup", "--facts", str(FIXTURES / "desktop-rtx4090.json")]
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    said = []
    deadline = time.monotonic() + 90
    for line in run.stdout:  # wait until ansible-playbook is connecting to the host
        said.append(line)
        if "Gathering Facts" in line or time.monotonic() > deadline:
            break
    assert any("Gathering Facts" in line for line in said), "".join(said)
    time.sleep(1)
    run.send_signal(2)  # SIGINT, as Ctrl-C sends it
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err and "interrupted" in lines[0], err
    group = re.search(r"process group (\d+)", lines[0])
    if group:
        with pytest.raises(ProcessLookupError):
            os.killpg(int(group.group(1)), 0)
    listed = subprocess.run([*argv[:-3], "backup", "--json"], capture_output=True, text=True, env=env)
    (row,) = json.loads(listed.stdout)
    assert row["complete"] is False and "did not finish" in row["why"]
    restore = subprocess.run(
        [*argv[:-3], "restore", row["name"], "--yes-i-really-really-mean-it"], capture_output=True, text=True, env=env
    )
    assert restore.returncode == 7 and "did not finish" in restore.stderr
