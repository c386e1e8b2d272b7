"""`affordml init`: facts -> plan -> render -> phases, resumable."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from affordml.phases.lock import RunLock
from affordml.phases.registry import get_phase
from affordml.phases.state import load_state, save_state
from affordml.phases.workflow import PhaseContext, run_phases, select
from affordml.project import Project


@dataclass(frozen=True)
class InitOptions:
    facts_file: Path | None = None
    only: str | None = None
    skip: frozenset[str] = frozenset()
    dry_run: bool = False
    ignore_checks: frozenset[str] = frozenset()
    confirm: bool = False
    mirror: Path | None = None  # --mirror: artifacts from a bundle folder instead of the internet


def prepare(project: Project, facts_file: Path | None):
    """Config, facts, plan, lock, and the rendered env/ (pure steps plus one write of env/)."""
    from affordml.config.load import load_config
    from affordml.facts.gather import gather_snapshot
    from affordml.facts.parse import facts_from_snapshot
    from affordml.facts.snapshot import save_project_snapshot
    from affordml.lifecycle.nodes import platform_plan
    from affordml.plan.build import make_plan
    from affordml.render.project import render_project
    from affordml.versions import load_lock, version_table

    config = load_config(project.config_file)
    lock = load_lock()
    snapshot = gather_snapshot(project, config, facts_file)
    plan = make_plan(facts_from_snapshot(snapshot), config, version_table(lock))
    plan = platform_plan(project, config, version_table(lock), plan)  # with the PCs added by add-node
    save_project_snapshot(snapshot, project)  # the facts this plan was made from, for status and support
    render_project(project, plan, config, lock)
    return config, plan, lock


def run_init(project: Project, options: InitOptions, say) -> PhaseContext:
    from affordml.lifecycle.run import check_installed_lock
    from affordml.phases.steps import execute
    from affordml.render.context import plan_hash
    from affordml.secrets import ensure_platform_secrets

    for name in (options.only, *options.skip):
        if name:
            get_phase(name)
    project.check(create=True)
    with RunLock(project.lock_file, say) as lock:
        if lock.recovered_stale:
            say(f"[init] the previous run (pid {lock.previous_pid}) was interrupted; resuming")
        config, plan, versions = prepare(project, options.facts_file)
        ensure_platform_secrets(project)
        state = load_state(project.state_file)
        check_installed_lock(state, versions)
        state.plan_hash = plan_hash(plan)
        ctx = PhaseContext(
            project, config, plan, versions, state, say, options.dry_run, options.ignore_checks, options.confirm
        )
        ctx.run_lock = lock
        ctx.mirror = options.mirror
        if not options.dry_run:
            save_state(project.state_file, state)
        run_phases(ctx, select(options.only, set(options.skip)), execute, force=bool(options.only))
    return ctx
