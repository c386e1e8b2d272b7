"""Real ansible-runner runs of small real playbooks on localhost: events reach the progress model, return codes
map to one-line errors, and the job sees only the scrubbed environment."""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path

import pytest

from affordml.errors import RunError
from affordml.run.args import build_run_args
from affordml.run.executor import check_result, execute
from affordml.run.progress import Progress
from affordml.run.toolchains import own_bin

PLAY_OK_CHANGED = """
- name: Test | ok and changed
  hosts: all
  gather_facts: false
  tasks:
    - name: Test | report ok
      ansible.builtin.debug:
        msg: fine
    - name: Test | write a file
      ansible.builtin.copy:
        content: "{{ payload }}"
        dest: "{{ target }}"
        mode: "0644"
"""

PLAY_FAIL = """
- name: Test | failure
  hosts: all
  gather_facts: false
  tasks:
    - name: Test | fail on purpose
      ansible.builtin.fail:
        msg: the disk is full
    - name: Test | never reached
      ansible.builtin.debug:
        msg: unreachable
"""

PLAY_SYNTAX_ERROR = """
- name: Test | broken
  hosts: all
  tasks:
    - name: Test | no module here
      this_is_not_a_module: {}
"""


def _inventory(tmp: Path, host_line: str) -> Path:
    path = tmp / "inventory.ini"
    path.write_text(f"[all]\n{host_line}\n")
    return path


def _run(tmp: Path, play: str, inventory: Path, vars_text: str = "", check: bool = False):
    playbook = tmp / "play.yml"
    playbook.write_text(play)
    vars_file = tmp / "vars.yml"
    vars_file.write_text(vars_text or "payload: hello\n")
    args = build_run_args(
        ident="t1",
        runs_dir=tmp / "runs",
        playbook=playbook,
        inventories=[inventory],
        vars_files=[vars_file],
        toolchain_bin=own_bin(),
        check=check,
    )
    progress = Progress("test")
    return execute(args, progress), progress


def _local(tmp: Path) -> Path:
    return _inventory(tmp, f"testhost ansible_connection=local ansible_python_interpreter={sys.executable}")


def test_ok_and_changed_events_reach_progress(tmp_path):
    target = tmp_path / "out.txt"
    inventory = _local(tmp_path)
    result, progress = _run(tmp_path, PLAY_OK_CHANGED, inventory, f"payload: hello\ntarget: {target}\n")
    check_result(result, "test")
    counts = progress.hosts["testhost"]
    assert (counts.ok, counts.changed, counts.failed) == (2, 1, 0)
    assert progress.task == "Test | write a file"
    assert target.read_text() == "hello"
    second, progress2 = _run(tmp_path, PLAY_OK_CHANGED, inventory, f"payload: hello\ntarget: {target}\n")
    assert progress2.hosts["testhost"].changed == 0


def test_check_mode_changes_nothing(tmp_path):
    target = tmp_path / "out.txt"
    result, progress = _run(tmp_path, PLAY_OK_CHANGED, _local(tmp_path), f"payload: x\ntarget: {target}\n", check=True)
    check_result(result, "test")
    assert progress.hosts["testhost"].changed == 1
    assert not target.exists()


def test_failed_task_becomes_one_line_error(tmp_path):
    result, progress = _run(tmp_path, PLAY_FAIL, _local(tmp_path))
    assert result.rc == 2
    assert progress.hosts["testhost"].failed == 1
    with pytest.raises(RunError) as err:
        check_result(result, "host")
    line = err.value.one_line()
    assert "\n" not in line
    assert "Test | fail on purpose" in line and "the disk is full" in line and "testhost" in line


def _closed_loopback_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_host_becomes_one_line_error(tmp_path):
    port = _closed_loopback_port()  # loopback only: nothing leaves this machine
    inventory = _inventory(tmp_path, f"deadhost ansible_host=127.0.0.1 ansible_port={port} ansible_user=nobody")
    result, progress = _run(tmp_path, PLAY_OK_CHANGED, inventory, "payload: x\ntarget: /nonexistent\n")
    assert result.rc == 4
    assert progress.hosts["deadhost"].unreachable == 1
    with pytest.raises(RunError, match="host deadhost is unreachable"):
        check_result(result, "host")


def test_syntax_error_maps_to_clear_error(tmp_path):
    result, progress = _run(tmp_path, PLAY_SYNTAX_ERROR, _local(tmp_path))
    assert result.rc != 0 and not progress.failures
    with pytest.raises(RunError, match="syntax error or a missing file"):
        check_result(result, "host")


def test_environment_is_scrubbed_from_artifacts(tmp_path, monkeypatch):
    marker = "sekret-value-5f3c1d"
    monkeypatch.setenv("OS_PASSWORD", marker)
    monkeypatch.setenv("AFFORDML_TEST_TOKEN", marker)
    target = tmp_path / "out.txt"
    result, _ = _run(tmp_path, PLAY_OK_CHANGED, _local(tmp_path), f"payload: x\ntarget: {target}\n")
    check_result(result, "test")
    leaked = [p for p in (tmp_path / "runs").rglob("*") if p.is_file() and marker in p.read_text(errors="ignore")]
    assert leaked == []
    assert os.environ["OS_PASSWORD"] == marker  # restored for the rest of the process


def test_unparsable_inventory_is_an_error(tmp_path):
    inventory = _inventory(tmp_path, "broken host line with spaces")
    result, _ = _run(tmp_path, PLAY_OK_CHANGED, inventory, "payload: x\ntarget: /nonexistent\n")
    with pytest.raises(RunError):
        check_result(result, "host")


def test_no_matching_host_is_an_error(tmp_path):
    inventory = _inventory(tmp_path, "")
    result, progress = _run(tmp_path, PLAY_OK_CHANGED, inventory, "payload: x\ntarget: /nonexistent\n")
    assert progress.no_hosts_matched
    with pytest.raises(RunError, match="no host"):
        check_result(result, "host")


PLAY_LOOP_HANDLER = """
- name: Test | loops and handlers
  hosts: all
  gather_facts: false
  tasks:
    - name: Test | write files in a loop
      ansible.builtin.copy:
        content: "{{ item }}"
        dest: "{{ target }}.{{ item }}"
        mode: "0644"
      loop: [a, b, c]
      notify: Test | react
  handlers:
    - name: Test | react
      ansible.builtin.command: "true"
      changed_when: true
"""


def test_counts_match_ansibles_own_recap(tmp_path):
    target = tmp_path / "f"
    result, progress = _run(tmp_path, PLAY_LOOP_HANDLER, _local(tmp_path), f"payload: x\ntarget: {target}\n")
    check_result(result, "test")
    recap = re.search(r"testhost\s*:\s*ok=(\d+)\s+changed=(\d+)", (Path(result.artifacts) / "stdout").read_text())
    counts = progress.hosts["testhost"]
    assert (counts.ok, counts.changed) == (int(recap.group(1)), int(recap.group(2))) == (2, 2)


PLAY_REBOOT_FACT = """
- name: Test | reboot fact
  hosts: all
  gather_facts: false
  tasks:
    - name: Test | ask for a reboot
      ansible.builtin.set_fact:
        affordml_reboot_required: true
"""


def test_reboot_fact_reaches_progress(tmp_path):
    result, progress = _run(tmp_path, PLAY_REBOOT_FACT, _local(tmp_path))
    check_result(result, "test")
    assert progress.reboot_required == {"testhost"}


def test_run_variables_reach_the_play_as_data(tmp_path):
    """affordml's own run variables (paths that hold the project folder's name) go in as an !unsafe vars file:
    a real ansible-playbook writes a Jinja payload back literally and never runs it."""
    marker = tmp_path / "marker"
    payload = f"{tmp_path}/x{{{{ lookup('pipe', 'touch {marker}') }}}}$(touch {marker}-shell)"
    target = tmp_path / "out.txt"
    play = tmp_path / "play.yml"
    play.write_text(PLAY_OK_CHANGED.replace("{{ payload }}", "{{ affordml_env_dir }}"))
    args = build_run_args(
        ident="t1",
        runs_dir=tmp_path / "runs",
        playbook=play,
        inventories=[_local(tmp_path)],
        vars_files=[_vars(tmp_path, f"target: {target}\n")],
        extravars={"affordml_env_dir": payload},
        toolchain_bin=own_bin(),
    )
    result = execute(args, Progress("test"))
    check_result(result, "test")
    assert target.read_text() == payload
    assert not list(tmp_path.glob("marker*"))


def _vars(tmp: Path, text: str) -> Path:
    path = tmp / "vars.yml"
    path.write_text(text)
    return path
