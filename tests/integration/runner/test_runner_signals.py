"""A real ansible-runner run of a localhost playbook (a long `sleep` task), stopped by a signal: the whole process
group of ansible-playbook (its workers and the sleep they started) is gone before execute() returns, the run ends
with a one-line Interrupted error, and the signal handlers are as before. Also: the child is reported (for the lock)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = """
import json, signal, sys
from pathlib import Path
from affordml.errors import Interrupted
from affordml.run.args import build_run_args
from affordml.run.executor import execute
from affordml.run.progress import Progress
from affordml.run.toolchains import own_bin

tmp = Path(sys.argv[1])
children = []
args = build_run_args(ident="sig", runs_dir=tmp / "runs", playbook=tmp / "play.yml",
                      inventories=[tmp / "inventory.ini"], toolchain_bin=own_bin())
before = signal.getsignal(signal.SIGTERM)
try:
    execute(args, Progress("test"), on_child=children.append)
except Interrupted as exc:
    same = signal.getsignal(signal.SIGTERM) is before
    (tmp / "result.json").write_text(json.dumps({"line": exc.one_line(), "children": children, "restored": same}))
    sys.exit(exc.exit_code)
sys.exit(0)
"""

PLAY = """
- name: Test | long task
  hosts: all
  gather_facts: false
  tasks:
    - name: Test | sleep for a long time
      ansible.builtin.command: sleep 300.{{ marker }}
"""


def group_members(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                rest = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(rest[2]) == pgid and rest[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def sleepers(marker: str) -> list[int]:
    done = subprocess.run(["pgrep", "-f", f"sleep 300.{marker}"], capture_output=True, text=True)
    return [int(p) for p in done.stdout.split()]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_stops_the_whole_group_before_execute_returns(tmp_path, signum):
    marker = f"{os.getpid()}{signum:02d}{time.time_ns() % 10**6}"  # sleep 300.<marker>: unique, still a number
    (tmp_path / "play.yml").write_text(PLAY)
    (tmp_path / "inventory.ini").write_text(
        f"[all]\ntesthost ansible_connection=local ansible_python_interpreter={sys.executable} marker={marker}\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path)])
    deadline = time.monotonic() + 120
    while not sleepers(marker):
        assert proc.poll() is None and time.monotonic() < deadline, "the sleep task never started"
        time.sleep(0.1)
    sent = time.monotonic()
    proc.send_signal(signum)
    proc.wait(60)
    took = time.monotonic() - sent
    result = json.loads((tmp_path / "result.json").read_text())
    assert proc.returncode == 128 + signum
    assert f"stopped by {signum.name}" in result["line"] and result["restored"]
    assert len(result["children"]) == 1
    assert group_members(result["children"][0]) == [] and sleepers(marker) == []
    assert took < 20
    print(f"{signum.name}: ansible-playbook's group gone, execute() returned {took:.1f} s after the signal")
