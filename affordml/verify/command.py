"""`affordml verify`: the verify phase alone, under the run lock, with checks skipped by name; the phase's record
and the results are saved in the state like any phase's."""

from __future__ import annotations

from pathlib import Path

from affordml.project import Project


def run_verify(project: Project, skip: frozenset[str], facts_file: Path | None, say) -> dict:
    """The saved verify record; raises VerifyFailed (after saving) when a check failed."""
    from affordml.phases.init import prepare
    from affordml.phases.lock import RunLock
    from affordml.phases.registry import get_phase
    from affordml.phases.state import load_state, save_state
    from affordml.phases.steps import execute
    from affordml.phases.workflow import PhaseContext, run_phases
    from affordml.render.context import plan_hash
    from affordml.verify.phase import kubeconfig
    from affordml.verify.record import STATE_KEY
    from affordml.verify.runner import check_skips

    check_skips(set(skip))  # a wrong name fails before anything runs
    project.check(create=False)
    kubeconfig(project)  # no cluster yet: say so before reading the host
    with RunLock(project.lock_file, say) as lock:
        config, plan, versions = prepare(project, facts_file)
        state = load_state(project.state_file)
        state.plan_hash = plan_hash(plan)
        ctx = PhaseContext(project, config, plan, versions, state, say, skip_checks=skip)
        ctx.run_lock = lock
        save_state(project.state_file, state)
        run_phases(ctx, [get_phase("verify")], execute, force=True)  # the skipped names go into its inputs
    return state.data.get(STATE_KEY) or {}
