"""Run phases in order with saved state: resume at the first phase not done, re-run a done phase only when its
inputs changed, record every step atomically."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from affordml import __version__
from affordml.config.model import Config
from affordml.errors import AffordmlError, RebootRequired
from affordml.phases.lock import RunLock
from affordml.phases.registry import PHASES, Phase
from affordml.phases.state import State, now, save_state
from affordml.plan.model import Plan
from affordml.project import Project


@dataclass
class PhaseContext:
    project: Project
    config: Config
    plan: Plan
    lock: dict
    state: State
    say: Callable[[str], None]
    dry_run: bool = False
    ignore_checks: frozenset[str] = frozenset()
    confirm: bool = False  # --yes-i-really-really-mean-it: phases may replace or delete VMs
    notes: list[str] = field(default_factory=list)
    run_lock: RunLock | None = None  # records the ansible-playbook a phase starts
    mirror: Path | None = None  # `init --mirror DIR`; see artifact_store()
    action: str = (
        "deploy"  # what the phase does (roles dispatch on affordml_action): deploy | upgrade | backup | destroy
    )
    run_vars: dict = field(default_factory=dict)  # more variables for the action's playbook (paths only)
    skip_checks: frozenset[str] = frozenset()  # verify's checks left out by name (`affordml verify --skip-check`)
    delete_data: bool = False  # `destroy --delete-data`: a destroy action may delete the users' data too

    def artifact_store(self):
        """Verified downloads for the phases: the project's cache, fed by the mirror (option or config) or internet."""
        from affordml.artifacts.lock import lock_artifacts
        from affordml.artifacts.project_store import project_store

        # the context's lock names the artifacts: an upgrade hop may pin another Kubespray tag than the shipped lock
        artifacts = lock_artifacts(self.lock) if self.lock.get("artifacts") else None
        return project_store(self.project.root, self.config, self.mirror, artifacts=artifacts)


def inputs_hash(phase: Phase, env_dir: Path, state_data: dict | None = None, ctx: PhaseContext | None = None) -> str:
    """Hash of the phase's rendered inputs, of what it takes from the run state and from the run (ctx), and of
    the affordml version."""
    digest = hashlib.sha256(f"{__version__}\n{phase.name}\n{phase.runs}\n".encode())
    if phase.state_inputs is not None:
        digest.update(json.dumps(phase.state_inputs(state_data or {}), sort_keys=True, default=str).encode())
    if phase.run_inputs is not None:
        taken = phase.run_inputs(ctx) if ctx is not None else "<no run>"
        digest.update(json.dumps(taken, sort_keys=True, default=str).encode())
    for pattern in phase.inputs:
        base = env_dir / pattern
        files = sorted(p for p in base.rglob("*") if p.is_file()) if pattern.endswith("/") else [base]
        for path in files:
            digest.update(str(path.relative_to(env_dir)).encode())
            digest.update(path.read_bytes() if path.exists() else b"<absent>")
    return digest.hexdigest()[:16]


def select(only: str | None, skip: set[str]) -> list[Phase]:
    if only:
        return [p for p in PHASES if p.name == only]
    return [p for p in PHASES if p.name not in skip]


REBOOT_KEY = "reboot_required"  # state.data: hosts whose new kernel arguments wait for a reboot
REBOOT_PHASE = "host"  # the phase that records a pending reboot, and checks it again after one


def run_phases(
    ctx: PhaseContext, phases: list[Phase], execute: Callable[[Phase, PhaseContext], str | None], force: bool = False
) -> list[tuple[str, str]]:
    """Each phase: skipped (does not apply), kept (done, inputs unchanged), or run. Returns (phase, outcome).
    A pending reboot stops the run before any phase after the host phase; the host phase runs again to see
    whether the reboot has happened."""
    outcomes = []
    for phase in phases:
        _stop_for_reboot(ctx, phase)
        recheck = phase.name == REBOOT_PHASE and bool(ctx.state.data.get(REBOOT_KEY))
        if recheck and not force:
            ctx.say(f"[{phase.name}] a reboot was pending: running this phase again to check it")
        outcomes.append((phase.name, _one(ctx, phase, execute, force or recheck)))
    return outcomes


def _stop_for_reboot(ctx: PhaseContext, phase: Phase) -> None:
    hosts = ctx.state.data.get(REBOOT_KEY)
    if not hosts or ctx.dry_run or not _after(phase.name, REBOOT_PHASE):
        return
    names = ", ".join(hosts) if isinstance(hosts, list) else str(hosts)
    raise RebootRequired(
        f"{names} must reboot before phase {phase.name}: the kernel arguments and modules the host phase set "
        "are not active yet; init stopped here",
        f"reboot {names}, then run `affordml init` again: it checks the reboot and resumes",
    )


def _after(name: str, other: str) -> bool:
    order = [p.name for p in PHASES]
    return name in order and order.index(name) > order.index(other)


def _one(ctx: PhaseContext, phase: Phase, execute, force: bool) -> str:
    state = ctx.state
    record = state.phase(phase.name)
    reason = phase.applies(ctx.plan)
    if reason:
        ctx.say(f"[{phase.name}] skipped: {reason}")
        if not ctx.dry_run:
            record.status, record.message = "skipped", reason
            _save(ctx)
        return "skipped"
    digest = inputs_hash(phase, ctx.project.env_dir, ctx.state.data, ctx)
    if record.status == "done" and record.inputs_hash == digest and not force:
        ctx.say(f"[{phase.name}] done earlier, inputs unchanged: nothing to do")
        return "kept"
    if record.status == "running":
        ctx.say(f"[{phase.name}] the previous run stopped inside this phase: running it again (phases are idempotent)")
    elif record.status == "done" and record.inputs_hash == digest:
        ctx.say(f"[{phase.name}] done earlier: running it again as asked")
    elif record.status == "done":
        ctx.say(f"[{phase.name}] inputs changed since it ran: running it again")
    if ctx.dry_run:
        ctx.say(f"[{phase.name}] dry run (check mode): {phase.help}")
        execute(phase, ctx)
        return "checked"
    ctx.say(f"[{phase.name}] {phase.help}")
    record.status, record.started, record.ended, record.message = "running", now(), None, ""
    record.inputs_hash = digest
    _save(ctx)
    try:
        record.ident = execute(phase, ctx) or ""
    except AffordmlError as exc:
        record.status, record.ended, record.message = "failed", now(), exc.one_line()
        _save(ctx)
        raise
    except BaseException as exc:
        record.status, record.ended, record.message = "failed", now(), f"{type(exc).__name__}: {exc}"
        _save(ctx)
        raise
    record.status, record.ended = "done", now()
    _save(ctx)
    ctx.say(f"[{phase.name}] done")
    return "ran"


def _save(ctx: PhaseContext) -> None:
    save_state(ctx.project.state_file, ctx.state)
