"""After a SIGKILL of affordml, its ansible-playbook can outlive it: the next run finds it (the lock's record of
the child and /proc) and waits for it, or refuses with one line; it never overlaps with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from affordml import procs
from affordml.errors import StateError
from affordml.phases.lock import RunLock


def orphan(tmp_path, *words: str) -> subprocess.Popen:
    """A process in a session of its own, as ansible-runner starts ansible-playbook."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", *words], start_new_session=True, cwd=tmp_path
    )


def left_by_a_killed_run(lock, child: subprocess.Popen) -> None:
    record = {"pid": 2**22 + 1, "child": {"pid": child.pid, "pgid": child.pid, "start": procs.start_time(child.pid)}}
    lock.write_text(json.dumps(record))


def test_the_recorded_child_of_a_killed_run_is_waited_for_then_refused(tmp_path):
    lock = tmp_path / "run.lock"
    child = orphan(tmp_path)
    try:
        left_by_a_killed_run(lock, child)
        said = []
        started = time.monotonic()
        with pytest.raises(StateError, match=f"pid {child.pid}") as caught, RunLock(lock, said.append, 1.0):
            pass
        assert time.monotonic() - started >= 1.0 and "waiting up to 1 s" in said[0]
        assert f"kill -TERM -- -{child.pid}" in caught.value.one_line()
    finally:
        child.kill()
        child.wait()
    with RunLock(lock, orphan_wait_s=1.0) as held:  # gone: the next run goes on, and says it recovered
        assert held.recovered_stale


def test_the_next_run_starts_only_after_the_orphan_ended(tmp_path):
    lock = tmp_path / "run.lock"
    child = orphan(tmp_path)
    left_by_a_killed_run(lock, child)
    ended = []

    def stop_later() -> None:
        time.sleep(1.0)
        child.kill()
        child.wait()
        ended.append(time.monotonic())

    threading.Thread(target=stop_later).start()
    with RunLock(lock, orphan_wait_s=30):
        entered = time.monotonic()
    assert ended and entered >= ended[0]


def test_an_unrecorded_ansible_of_this_project_is_found_by_its_command_line(tmp_path):
    """A SIGKILL before the child was recorded: its command line names the project folder."""
    lock = tmp_path / "run.lock"
    child = orphan(tmp_path, "ansible-playbook", "-i", f"{tmp_path}/env/inventory/hosts.yml")
    other = orphan(tmp_path, "ansible-playbook", "-i", "/elsewhere/env/inventory/hosts.yml")
    try:
        time.sleep(0.2)
        assert [p.pid for p in procs.survivors(None, str(tmp_path))] == [child.pid]
        with pytest.raises(StateError, match="still works on this project"), RunLock(lock, orphan_wait_s=0.5):
            pass
    finally:
        for proc in (child, other):
            proc.kill()
            proc.wait()


def test_a_reused_pid_is_not_taken_for_the_child(tmp_path):
    lock = tmp_path / "run.lock"
    unrelated = orphan(tmp_path)
    try:
        record = {"pid": 2**22 + 1, "child": {"pid": unrelated.pid, "pgid": unrelated.pid, "start": 2**62}}
        lock.write_text(json.dumps(record))  # same pid, but started after the recorded child: not it
        with RunLock(lock, orphan_wait_s=0.5):
            pass
    finally:
        unrelated.kill()
        unrelated.wait()


def test_stop_group_ends_every_process_of_the_group(tmp_path):
    leader = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"], start_new_session=True, cwd=tmp_path)
    time.sleep(0.3)
    members = [p.pid for p in (procs.read(pid) for pid in procs.all_pids()) if p and p.pgid == leader.pid]
    assert len(members) == 3
    procs.stop_group(leader.pid, grace_s=2)
    leader.wait(5)
    assert not [pid for pid in members if procs.read(pid)]
    assert os.getpgid(os.getpid()) != leader.pid
