"""`affordml upgrade` and `affordml backup` over the phase registry: a backup first, then each hop as its
phase's "upgrade" action (roles and steps dispatch on it, as kolla-ansible dispatches kolla_action), with the
env/ rendered for that hop's lock. Progress is kept in state.data["upgrade"], so a stopped upgrade resumes at
its first hop not done."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from affordml.errors import ConfirmationRequired, StateError
from affordml.lifecycle.rules import lock_summary
from affordml.lifecycle.upgrade import Hop, UpgradePlan
from affordml.project import Project

LOCK_KEY = "lock"  # state.data: the lock summary the platform runs (recorded by init, moved by upgrade)
UPGRADE_KEY = "upgrade"  # state.data: where an upgrade stands


@dataclass(frozen=True)
class UpgradeOptions:
    facts_file: Path | None = None
    confirm: bool = False
    mirror: Path | None = None


def hop_lock(target_lock: dict, hop: Hop) -> dict:
    """The target lock with what this hop pins differently (an intermediate kolla-ansible or Kubespray tag)."""
    lock = copy.deepcopy(target_lock)
    for key, fields in hop.lock.items():
        if key.startswith("artifact:"):
            name = key.split(":", 1)[1]
            for entry in lock.get("artifacts") or []:
                if entry.get("name") == name:
                    entry.update(fields)
        else:
            lock.setdefault(key, {}).update(fields)
    return lock


def recorded_lock(state) -> dict | None:
    """state.data["lock"] when it has the shape lock_summary writes (None when there is none); a record of
    another shape is one line naming its field, never a crash in the planner."""
    from affordml.lifecycle.rules import version_key

    recorded = state.data.get(LOCK_KEY)
    if recorded is None or recorded == {}:
        return None
    fix = "put state.json back from a backup (`affordml backup --list`, `affordml restore`), or repair data.lock"
    if not isinstance(recorded, dict):
        raise StateError(
            f"state.json: data.lock is a {type(recorded).__name__}, not the lock record affordml writes", fix
        )
    missing = [
        key for key in ("name", "kolla_ansible", "openstack_release", "kubespray", "kubernetes") if key not in recorded
    ]
    if missing:
        raise StateError(f"state.json: data.lock has no {missing[0]!r}", fix)
    for key, value in recorded.items():
        versioned = key not in ("name", "cert_manager") or value != ""
        if not isinstance(value, str) or (versioned and key != "name" and not version_key(value)):
            raise StateError(f"state.json: data.lock.{str(key)[:40]} is {str(value)[:60]!r}, not a version", fix)
    return recorded


def installed_lock(state) -> dict:
    recorded = recorded_lock(state)
    if not isinstance(recorded, dict) or not recorded.get("name"):
        raise StateError(
            "the state records no version lock: nothing was installed by this project, or by an affordml too old "
            "to record it",
            "run `affordml init` to install; it records the lock it installs with",
        )
    return recorded


def make_plan_for(state, lock: dict) -> UpgradePlan:
    from affordml.lifecycle.rules import load_rules
    from affordml.lifecycle.upgrade import plan_upgrade

    return plan_upgrade(installed_lock(state), lock_summary(lock), load_rules())


def show_plan(project: Project) -> tuple[UpgradePlan, dict | None]:
    """The hop plan (pure) and the upgrade in progress, if any; nothing is written."""
    from affordml.phases.state import load_state
    from affordml.versions import load_lock

    project.check()
    state = load_state(project.state_file)
    return make_plan_for(state, load_lock()), state.data.get(UPGRADE_KEY)


def run_upgrade(project: Project, options: UpgradeOptions, say: Callable[[str], None]) -> UpgradePlan:
    from affordml.phases.init import prepare
    from affordml.phases.lock import RunLock
    from affordml.phases.state import load_state, save_state
    from affordml.render.project import render_project
    from affordml.secrets import ensure_platform_secrets
    from affordml.versions import load_lock

    project.check()
    with RunLock(project.lock_file, say) as run_lock:
        state = load_state(project.state_file)
        plan = make_plan_for(state, load_lock())
        if not plan.hops:
            say(f"[upgrade] the platform already runs lock {plan.target}: nothing to do")
            return plan
        if not options.confirm:
            raise ConfirmationRequired(
                f"upgrade from lock {plan.source} to {plan.target} in {len(plan.hops)} hop(s) "
                "(`affordml upgrade --plan` shows them); a backup is taken first; nothing was changed",
                "run again with --yes-i-really-really-mean-it",
            )
        config, infra, lock = prepare(project, options.facts_file)
        ensure_platform_secrets(project)
        progress = _progress(state, plan)
        save_state(project.state_file, state)

        contexts = Contexts(project, config, infra, state, say, run_lock, options.mirror)
        if not progress.get("backup"):
            view = installed_view(lock, recorded_lock(state))
            render_project(project, infra, config, view)
            progress["backup"] = str(take_backup(project, state, contexts.with_lock(view), say, "pre-upgrade"))
            save_state(project.state_file, state)
        for number, hop in enumerate(plan.hops, 1):
            if number <= progress["done"]:
                say(f"[upgrade] hop {number}/{len(plan.hops)} ({hop.phase}) done earlier")
                continue
            try:
                _run_hop(project, infra, config, lock, hop, number, len(plan.hops), contexts, state, say)
            except BaseException as exc:
                progress["status"] = f"stopped in hop {number}: {getattr(exc, 'problem', None) or type(exc).__name__}"
                save_state(project.state_file, state)
                raise
            progress["done"] = number
            save_state(project.state_file, state)
        state.data[LOCK_KEY] = lock_summary(lock)
        progress["status"] = "done"
        save_state(project.state_file, state)
        say(f"[upgrade] the platform runs lock {plan.target} now")
    return plan


@dataclass
class Contexts:
    """Phase contexts for one lifecycle run: the same project, plan, state and run lock; an action and a lock
    of their own (the hop's, or the installed one for a backup)."""

    project: Project
    config: object
    infra: object
    state: object
    say: Callable[[str], None]
    run_lock: object
    mirror: Path | None = None

    def make(self, action: str, run_vars: dict, lock: dict):
        from affordml.phases.workflow import PhaseContext

        ctx = PhaseContext(self.project, self.config, self.infra, lock, self.state, self.say)
        ctx.run_lock, ctx.mirror, ctx.action, ctx.run_vars = self.run_lock, self.mirror, action, run_vars
        return ctx

    def with_lock(self, lock: dict) -> Callable[[str, dict], object]:
        return lambda action, run_vars: self.make(action, run_vars, lock)


def _progress(state, plan: UpgradePlan) -> dict:
    """The upgrade record; a record for another lock change (affordml changed again mid-way) starts afresh."""
    current = state.data.get(UPGRADE_KEY)
    if isinstance(current, dict) and (current.get("from"), current.get("to")) == (plan.source, plan.target):
        current["status"] = "running"
        current["hops"] = [h.to_dict() for h in plan.hops]
        return current
    state.data[UPGRADE_KEY] = {
        "from": plan.source,
        "to": plan.target,
        "hops": [h.to_dict() for h in plan.hops],
        "done": 0,
        "backup": "",
        "status": "running",
    }
    return state.data[UPGRADE_KEY]


def _run_hop(project, infra, config, lock, hop: Hop, number: int, total: int, contexts, state, say) -> None:
    from affordml.phases.registry import get_phase
    from affordml.phases.steps import execute
    from affordml.phases.workflow import run_phases
    from affordml.render.project import render_project

    phase = get_phase(hop.phase)
    lines = "; ".join(s.how for s in hop.steps)
    record = state.phases.get(hop.phase)
    if record is None or record.status != "done":
        say(f"[upgrade] hop {number}/{total} ({hop.phase}): the {hop.phase} phase never ran here, nothing to upgrade")
        return
    say(f"[upgrade] hop {number}/{total} ({hop.phase}): {lines}")
    this_lock = hop_lock(lock, hop)
    render_project(project, infra, config, this_lock)
    ctx = contexts.make("upgrade", {}, this_lock)
    if hop.phase == "openstack":
        _merge_kolla_passwords(ctx)
    run_phases(ctx, [phase], execute, force=True)


def _merge_kolla_passwords(ctx) -> None:
    from affordml.lifecycle.kolla import merge_kolla_passwords
    from affordml.run.toolchains import ensure, kolla_toolchain

    toolchain_bin = ensure(kolla_toolchain(ctx.lock), lambda line: ctx.say(f"[openstack] {line}"))
    path = merge_kolla_passwords(ctx.project, toolchain_bin)
    ctx.say(
        f"[openstack] kolla-mergepwd: the passwords of kolla-ansible {ctx.lock['kolla_ansible']['version']} in {path}"
    )


def installed_view(lock: dict, recorded: dict | None) -> dict:
    """The shipped lock as the installed platform runs it: its kolla-ansible (whose virtualenv on the controller
    runs mariadb-backup) and its Kubernetes version."""
    from affordml.lifecycle.rules import load_rules

    view = copy.deepcopy(lock)
    if not recorded:
        return view
    releases = load_rules()["kolla_ansible"]["releases"]
    release = next((r for r in releases if r["openstack_release"] == recorded.get("openstack_release")), None)
    if release:
        view["kolla_ansible"].update(
            version=recorded.get("kolla_ansible", view["kolla_ansible"]["version"]),
            openstack_release=release["openstack_release"],
            openstack_tag=f"{release['openstack_release']}-ubuntu-noble",
            ansible_core=release["ansible_core"],
        )
    view["kubernetes"]["version"] = recorded.get("kubernetes", view["kubernetes"]["version"])
    return view


def check_installed_lock(state, lock: dict) -> None:
    """For `affordml init`: record the lock on the first run; refuse to deploy a different lock over a platform
    that runs another one (that is what `affordml upgrade` is for)."""
    summary = lock_summary(lock)
    recorded = state.data.get(LOCK_KEY)
    ran = any(p.status == "done" for p in state.phases.values())
    if not isinstance(recorded, dict) or not ran:
        state.data[LOCK_KEY] = summary
        return
    if recorded.get("name") != summary["name"]:
        raise StateError(
            f"this platform runs version lock {recorded.get('name')}; this affordml ships lock {summary['name']}",
            "see the hops with `affordml upgrade --plan`, then run `affordml upgrade` (it backs up first)",
        )


def take_backup(project: Project, state, make_ctx, say, reason: str) -> Path:
    from affordml.lifecycle.backup import etcd_part, make_backup, openstack_part

    def access():
        from affordml.phases.kubernetes import access_from_context

        return access_from_context(make_ctx("backup", {}))

    parts = {
        "openstack": openstack_part(make_ctx, project, state),
        "kubernetes": etcd_part(access, project, state),
    }
    return make_backup(project, reason, recorded_lock(state), parts, say)


def run_backup(project: Project, facts_file: Path | None, say: Callable[[str], None]) -> Path:
    """`affordml backup`: the same backup `affordml upgrade` takes first, under the run lock."""
    from affordml.phases.init import prepare
    from affordml.phases.lock import RunLock
    from affordml.phases.state import load_state
    from affordml.render.project import render_project

    project.check()
    with RunLock(project.lock_file, say) as run_lock:
        state = load_state(project.state_file)
        config, infra, lock = prepare(project, facts_file)
        view = installed_view(lock, recorded_lock(state))
        render_project(project, infra, config, view)
        contexts = Contexts(project, config, infra, state, say, run_lock)
        return take_backup(project, state, contexts.with_lock(view), say, "manual")
