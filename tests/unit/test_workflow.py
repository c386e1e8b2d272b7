"""The phase engine: resume, re-run on changed inputs, skip, state written atomically, one run at a time."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from affordml.config.model import Config
from affordml.errors import RunError, StateError
from affordml.facts.parse import facts_from_snapshot
from affordml.facts.sources import load_snapshot_file
from affordml.phases.lock import RunLock
from affordml.phases.registry import PHASES, get_phase
from affordml.phases.state import State, load_state, save_state
from affordml.phases.workflow import PhaseContext, inputs_hash, run_phases, select
from affordml.plan.build import make_plan
from affordml.project import Project
from affordml.render.project import render_project
from affordml.versions import load_lock, version_table

FIXTURES = Path(__file__).parents[1] / "fixtures" / "hardware"


def _context(tmp_path: Path, fixture: str = "desktop-rtx4090", config: Config | None = None) -> PhaseContext:
    project = Project(tmp_path / "project")
    config = config or Config()
    lock = load_lock()
    plan = make_plan(facts_from_snapshot(load_snapshot_file(FIXTURES / f"{fixture}.json")), config, version_table(lock))
    render_project(project, plan, config, lock)
    return PhaseContext(project, config, plan, lock, load_state(project.state_file), lambda _: None)


class Recorder:
    def __init__(self, fail_on: str | None = None) -> None:
        self.ran: list[str] = []
        self.fail_on = fail_on

    def __call__(self, phase, ctx) -> str:
        if phase.name == self.fail_on:
            raise RunError(f"{phase.name} broke", "fix it")
        self.ran.append(phase.name)
        return f"ident-{phase.name}"


def test_runs_in_order_then_keeps_done_phases(tmp_path):
    ctx = _context(tmp_path)
    first = Recorder()
    run_phases(ctx, list(PHASES), first)
    assert first.ran == [p.name for p in PHASES]
    saved = load_state(ctx.project.state_file)
    assert all(saved.phases[p.name].status == "done" for p in PHASES)
    again = Recorder()
    ctx2 = PhaseContext(ctx.project, ctx.config, ctx.plan, ctx.lock, saved, lambda _: None)
    outcomes = run_phases(ctx2, list(PHASES), again)
    assert again.ran == [] and {o for _, o in outcomes} == {"kept"}


def test_failure_is_recorded_and_next_run_resumes_there(tmp_path):
    ctx = _context(tmp_path)
    with pytest.raises(RunError):
        run_phases(ctx, list(PHASES), Recorder(fail_on="openstack"))
    saved = load_state(ctx.project.state_file)
    assert saved.phases["host"].status == "done"
    assert saved.phases["openstack"].status == "failed" and "openstack broke" in saved.phases["openstack"].message
    resumed = Recorder()
    run_phases(PhaseContext(ctx.project, ctx.config, ctx.plan, ctx.lock, saved, lambda _: None), list(PHASES), resumed)
    assert resumed.ran[0] == "openstack" and "host" not in resumed.ran


def test_interrupted_phase_runs_again(tmp_path):
    ctx = _context(tmp_path)
    state = State()
    state.phase("preflight").status = "running"
    messages = []
    ctx = PhaseContext(ctx.project, ctx.config, ctx.plan, ctx.lock, state, messages.append)
    recorder = Recorder()
    run_phases(ctx, [get_phase("preflight")], recorder)
    assert recorder.ran == ["preflight"]
    assert any("stopped inside this phase" in m for m in messages)


def test_changed_inputs_rerun_only_affected_phase(tmp_path):
    ctx = _context(tmp_path)
    run_phases(ctx, list(PHASES), Recorder())
    kolla_before = inputs_hash(get_phase("openstack"), ctx.project.env_dir)
    host_before = inputs_hash(get_phase("kubernetes"), ctx.project.env_dir)
    (ctx.project.env_dir / "kolla" / "globals.yml").write_text("changed: true\n")
    assert inputs_hash(get_phase("openstack"), ctx.project.env_dir) != kolla_before
    assert inputs_hash(get_phase("kubernetes"), ctx.project.env_dir) == host_before
    again = Recorder()
    saved = load_state(ctx.project.state_file)
    run_phases(PhaseContext(ctx.project, ctx.config, ctx.plan, ctx.lock, saved, lambda _: None), list(PHASES), again)
    assert again.ran == ["openstack"]


def test_gpu_phase_skipped_without_gpu(tmp_path):
    config = Config.model_validate({"gpu": {"exclude": ["0000:01:00.0"]}})
    ctx = _context(tmp_path, config=config)
    recorder = Recorder()
    outcomes = dict(run_phases(ctx, list(PHASES), recorder))
    assert outcomes["gpu"] == "skipped" and "gpu" not in recorder.ran


def test_dry_run_records_nothing(tmp_path):
    ctx = _context(tmp_path)
    ctx.dry_run = True
    recorder = Recorder()
    run_phases(ctx, list(PHASES), recorder)
    assert recorder.ran == [p.name for p in PHASES if p.name != "gpu" or ctx.plan.gpus]
    assert not ctx.project.state_file.exists()


def test_select_only_and_skip():
    assert [p.name for p in select("host", set())] == ["host"]
    assert "openstack" not in [p.name for p in select(None, {"openstack"})]


def test_state_file_is_replaced_atomically(tmp_path):
    path = tmp_path / "state.json"
    state = State(plan_hash="abc")
    state.phase("host").status = "done"
    save_state(path, state)
    assert json.loads(path.read_text())["phases"]["host"]["status"] == "done"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left behind


def test_corrupt_state_is_a_clear_error(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(StateError, match="unreadable"):
        load_state(path)


def _hold_lock(path: str, ready) -> None:
    with RunLock(Path(path)):
        ready.set()
        time.sleep(60)


def test_second_concurrent_run_is_refused_and_stale_lock_recovered(tmp_path):
    lock_path = tmp_path / "run.lock"
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(str(lock_path), ready))
    holder.start()
    try:
        assert ready.wait(20)
        with pytest.raises(StateError, match=f"pid {holder.pid}"), RunLock(lock_path):
            pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
    with RunLock(lock_path) as lock:
        assert lock.recovered_stale and lock.previous_pid == holder.pid


def test_unavailable_phase_tells_the_truth_about_the_phases_before_it(tmp_path):
    """Finding 23: a dry run that stops at an unavailable phase did nothing: it must not say they are done."""
    import dataclasses

    from affordml.errors import PhaseUnavailable
    from affordml.phases.steps import execute

    unavailable = dataclasses.replace(get_phase("verify"), runs="python:no-such-step")  # a step not in this version
    ctx = _context(tmp_path)
    ctx.dry_run = True
    with pytest.raises(PhaseUnavailable) as dry:
        execute(unavailable, ctx)
    assert "only checked (dry run), nothing was changed" in dry.value.problem and "are done" not in dry.value.problem
    ctx.dry_run = False
    with pytest.raises(PhaseUnavailable) as real:
        execute(unavailable, ctx)
    assert "the phases before it are done" in real.value.problem


class RebootingHost(Recorder):
    """The host phase records a pending reboot until `rebooted` is set, as the host role does."""

    def __init__(self) -> None:
        super().__init__()
        self.rebooted = False

    def __call__(self, phase, ctx) -> str:
        ident = super().__call__(phase, ctx)
        if phase.name == "host":
            if self.rebooted:
                ctx.state.data.pop("reboot_required", None)
            else:
                ctx.state.data["reboot_required"] = ["pc"]
        return ident


def test_a_pending_reboot_stops_init_before_the_next_phase(tmp_path):
    from affordml.errors import RebootRequired

    ctx = _context(tmp_path)
    host = RebootingHost()
    with pytest.raises(RebootRequired, match="pc must reboot before phase openstack"):
        run_phases(ctx, list(PHASES), host)
    assert host.ran == ["preflight", "host"]
    saved = load_state(ctx.project.state_file)
    assert saved.phases["host"].status == "done" and "openstack" not in saved.phases

    # not rebooted yet: the host phase runs again (although done), still pending: stopped again
    with pytest.raises(RebootRequired):
        run_phases(PhaseContext(ctx.project, ctx.config, ctx.plan, ctx.lock, saved, lambda _: None), list(PHASES), host)
    # a later phase alone is refused while the reboot is pending
    with pytest.raises(RebootRequired):
        run_phases(ctx, [get_phase("openstack")], host, force=True)

    host.rebooted, host.ran = True, []
    saved = load_state(ctx.project.state_file)
    run_phases(PhaseContext(ctx.project, ctx.config, ctx.plan, ctx.lock, saved, lambda _: None), list(PHASES), host)
    assert host.ran[:2] == ["host", "openstack"] and "reboot_required" not in load_state(ctx.project.state_file).data


def test_a_dry_run_goes_on_past_a_pending_reboot(tmp_path):
    ctx = _context(tmp_path)
    ctx.dry_run = True
    host = RebootingHost()
    run_phases(ctx, list(PHASES), host)
    assert "openstack" in host.ran
