"""`affordml add-node HOST`: another PC joins the platform, as an action over the phase registry.

First contact (host key accepted by fingerprint, facts over SSH), the doctor's checks for that PC, the refusals,
the plan delta; then each phase's add-node action, limited to the new PC, in the registry's order:
host (affordml's host role on it), openstack (kolla-ansible prechecks/pull/deploy --limit), cloud (its VMs in its
availability zone), kubernetes (Kubespray facts.yml, then scale.yml --limit its VMs), gpu (labels and sharing
config for its GPU VMs). Each step's outcome is recorded in state.data["nodes"][HOST]["phases"]: a second run
resumes at the first step not done and changes nothing once all are."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from affordml.errors import AffordmlError, ConfigError, PlanError, StateError
from affordml.lifecycle.node_flags import NodeFlags
from affordml.lifecycle.nodes import NODES_KEY, node_records, save_node_snapshot
from affordml.phases.registry import PHASES, Phase, get_phase
from affordml.phases.state import now, save_state
from affordml.phases.workflow import PhaseContext, inputs_hash
from affordml.plan.model import NodePlan
from affordml.project import Project

NEEDS_DONE = ("host", "openstack")  # the first PC's phases that must be done (and current) before a PC joins


@dataclass(frozen=True)
class AddNodeOptions:
    host: str
    accept_host_key: str | None = None
    facts_file: Path | None = None  # the new PC's facts from a file (rehearsal), instead of SSH
    base_facts_file: Path | None = None  # the first PC's facts from a file, as `init --facts`
    ignore_checks: frozenset[str] = frozenset()
    skip: frozenset[str] = frozenset()
    dry_run: bool = False
    plan_only: bool = False
    flags: NodeFlags = NodeFlags()  # --address/--user/--key/--port: a PC not (yet) in affordml.yaml


def run_add_node(project: Project, options: AddNodeOptions, say: Callable[[str], None]) -> PhaseContext | None:
    from affordml.phases.lock import RunLock
    from affordml.phases.state import load_state

    for name in options.skip:
        get_phase(name)
    project.check(create=False)
    with RunLock(project.lock_file, say) as lock:
        state = load_state(project.state_file)
        ctx, node = _contact_and_plan(project, options, state, say)
        if options.plan_only:
            return None
        ctx.run_lock = lock
        _join(ctx, node, options)
    return ctx


def _contact_and_plan(project: Project, options: AddNodeOptions, state, say) -> tuple[PhaseContext, NodePlan]:
    """Everything before the first change: config, facts, doctor, refusals, plans; the delta is shown. A PC
    given by flags joins the config in memory here; affordml.yaml records it only with the first change."""
    from affordml.facts.gather import gather_snapshot
    from affordml.facts.parse import facts_from_snapshot
    from affordml.lifecycle import node_flags
    from affordml.lifecycle.delta import print_delta
    from affordml.phases.init import prepare
    from affordml.plan.nodes import check_same_os, make_node_plan, with_nodes
    from affordml.versions import version_table

    record = node_records(state.data).get(options.host, {})
    if record.get("status") == "added":
        raise ConfigError(
            f"hosts.{options.host} is already in the platform (added {_when(record.get('added'))}); "
            "nothing was changed",
            "`affordml status` shows it; `affordml init` keeps it up to date with affordml.yaml",
        )
    _refuse_platform_not_ready(project, state)
    addition = node_flags.reconcile(project, options.host, options.flags, say)
    config, base, lock = prepare(project, options.base_facts_file)  # renders env/ for the platform as it is now
    _refuse_stale_platform(project, state, config, lock, options)
    config = addition.config if addition else config
    host = _config_host(config, options.host)
    snapshot = gather_snapshot(project, config, options.facts_file, host.name, options.accept_host_key)
    facts = facts_from_snapshot(snapshot)
    say(f"[add-node] {host.name}: reached {facts.hostname} ({facts.os.pretty_name}), {len(facts.nvidia_gpus)} GPU(s)")
    _refuse_known_hostname(facts.hostname, base, options.host)
    check_same_os(host.name, facts, _first_pc_facts(project, options.base_facts_file))
    versions = version_table(lock)
    platform = base
    _doctor(host.name, facts, config, versions, platform, options.ignore_checks, say)
    node = make_node_plan(host.name, facts, config, versions, platform)
    print_delta(node, say)
    if options.plan_only:
        if addition:
            node_flags.show(project, addition, say)
        return PhaseContext(project, config, platform, lock, state, say), node
    if not options.dry_run:
        if addition:
            node_flags.write(project, addition, say)
        save_node_snapshot(project, host.name, snapshot)
        nodes = state.data.setdefault(NODES_KEY, {})
        nodes.setdefault(host.name, {"status": "adding", "started": now(), "phases": {}})
        nodes[host.name]["hostname"] = facts.hostname
        save_state(project.state_file, state)
    grown = with_nodes(platform, [*platform.nodes, node])
    _render(project, grown, config, lock)
    ctx = PhaseContext(project, config, grown, lock, state, say, options.dry_run, options.ignore_checks)
    return ctx, node


def _doctor(host: str, facts, config, versions, platform, ignore, say) -> None:
    from affordml.plan.checks import plan_feasibility, run_checks, summary
    from affordml.plan.nodes import make_node_plan

    check = plan_feasibility(lambda: make_node_plan(host, facts, config, versions, platform))
    results = run_checks(facts, config, set(ignore), check)
    say(f"[add-node] {host}: {summary(results)} (the checks of `affordml doctor`)")
    failed = [r for r in results if r.status == "fail"]
    if failed:
        first = failed[0]
        raise PlanError(
            f"[add-node] {host}: check {first.name} failed: {first.message}",
            f"{first.fix} (or skip it with --ignore-check {first.name}); nothing was changed",
        )


def _join(ctx: PhaseContext, node: NodePlan, options: AddNodeOptions) -> None:
    """Each registry phase's add-node step for this PC, in order, resumable; then the PC is in the platform."""
    record = ctx.state.data[NODES_KEY][node.host] if not ctx.dry_run else {"phases": {}}
    for phase in PHASES:
        step = NODE_STEPS.get(phase.name)
        if step is None or phase.name in options.skip:
            ctx.say(f"[add-node {phase.name}] " + ("skipped as asked" if step else "nothing of this phase per PC"))
            continue
        _one_step(ctx, node, phase, step, record)
    if not ctx.dry_run:
        record["status"], record["added"] = "added", now()
        _refresh_platform_records(ctx)
        save_state(ctx.project.state_file, ctx.state)
    ctx.say(f"[add-node] {node.host} is in the platform: {', '.join(v.name for v in node.vms)}")


def _one_step(ctx: PhaseContext, node: NodePlan, phase: Phase, step, record: dict) -> None:
    reason = phase.applies(ctx.plan)
    if reason:
        ctx.say(f"[add-node {phase.name}] skipped: {reason}")
        return
    steps = record.setdefault("phases", {})
    digest = inputs_hash(phase, ctx.project.env_dir, ctx.state.data)
    done = steps.get(phase.name) or {}
    if done.get("status") == "done" and done.get("inputs_hash") == digest:
        ctx.say(f"[add-node {phase.name}] done earlier, inputs unchanged: nothing to do")
        return
    ctx.say(f"[add-node {phase.name}] {STEP_HELP[phase.name].format(host=node.host)}")
    if ctx.dry_run:
        step(ctx, node, phase)
        return
    steps[phase.name] = {"status": "running", "inputs_hash": digest, "started": now()}
    save_state(ctx.project.state_file, ctx.state)
    try:
        ident = step(ctx, node, phase)
    except AffordmlError as exc:
        steps[phase.name] |= {"status": "failed", "ended": now(), "message": exc.one_line()}
        save_state(ctx.project.state_file, ctx.state)
        raise
    except BaseException as exc:
        steps[phase.name] |= {"status": "failed", "ended": now(), "message": type(exc).__name__}
        save_state(ctx.project.state_file, ctx.state)
        raise
    steps[phase.name] |= {"status": "done", "ended": now(), "ident": ident or ""}
    save_state(ctx.project.state_file, ctx.state)


# ---------------------------------------------------------------------------------------------- the steps


def _preflight(ctx: PhaseContext, node: NodePlan, _: Phase) -> None:
    """Done at first contact (facts, doctor, refusals); recorded so that `status` shows it."""


def _host(ctx: PhaseContext, node: NodePlan, phase: Phase) -> str:
    from affordml.phases.steps import run_playbook

    controller = ctx.config.hosts[0].name
    return run_playbook(phase, ctx, action="add-node", limit=f"{controller},{node.host}")


def _openstack(ctx: PhaseContext, node: NodePlan, phase: Phase) -> str:
    from affordml.phases.steps import prepare_kolla, run_playbook

    prepare_kolla(ctx)  # kolla's inventory gains the PC, with its own NIC
    # a GPU model new to the platform needs its alias in nova-api on the controllers too (kolla's docs: a --limit
    # that reaches controllers must include them all, hence the group)
    limit = f"{node.host},control" if node.nova_aliases else node.host
    return run_playbook(phase, ctx, action="add-node", extravars={"affordml_limit": limit})


def _cloud(ctx: PhaseContext, node: NodePlan, phase: Phase) -> None:
    from affordml.phases.steps import execute

    execute(phase, ctx)  # the platform's VMs as planned: the PC's are new, in its zone; the others are kept


def _kubernetes(ctx: PhaseContext, node: NodePlan, phase: Phase) -> str | None:
    from affordml.phases.kubernetes import (
        access_from_context,
        kubespray_tree,
        refuse_pending_reboots,
        run_kubespray,
        wait_for_nodes,
    )

    names = [vm.name for vm in node.vms]
    if ctx.dry_run:
        ctx.say(f"[add-node kubernetes] would run Kubespray facts.yml, then scale.yml --limit {','.join(names)}")
        return None
    access = access_from_context(ctx)
    refuse_pending_reboots(ctx, access)
    tree = kubespray_tree(ctx)
    run_kubespray(ctx, access, tree, "playbooks/facts.yml")  # Kubespray: refresh every node's facts first
    ident = run_kubespray(ctx, access, tree, "scale.yml", limit=",".join(names))
    kube = ctx.state.data.get("kubernetes") or {}
    rows = wait_for_nodes(ctx, Path(kube["kubeconfig"]), [n.name for n in access.nodes])
    kube["nodes"] = [r.to_dict() for r in rows]
    return ident


def _gpu(ctx: PhaseContext, node: NodePlan, phase: Phase) -> None:
    from affordml.phases.steps import execute

    execute(phase, ctx)  # labels and the sharing config of every GPU VM, the new ones included; releases kept


NODE_STEPS = {
    "preflight": _preflight,
    "host": _host,
    "openstack": _openstack,
    "cloud": _cloud,
    "kubernetes": _kubernetes,
    "gpu": _gpu,
}
STEP_HELP = {
    "preflight": "facts read over SSH and the doctor's checks passed for {host}",
    "host": "prepare {host} (and the first PC's /etc/hosts) with affordml's host role",
    "openstack": "add {host} as a nova compute host: kolla-ansible prechecks, pull, deploy --limit {host}",
    "cloud": "carve {host}'s VMs in its availability zone",
    "kubernetes": "join {host}'s VMs as workers: Kubespray facts.yml, then scale.yml --limit",
    "gpu": "label {host}'s GPU VMs and apply their sharing config",
}


# ---------------------------------------------------------------------------------------------- helpers


def _refuse_platform_not_ready(project: Project, state) -> None:
    for name in NEEDS_DONE:
        if state.phase(name).status != "done":
            raise StateError(
                f"phase {name} of the first PC is {state.phase(name).status}: a PC joins an installed platform",
                "run `affordml init` until it finishes, then add-node",
            )


def _refuse_stale_platform(project: Project, state, config, lock, options: AddNodeOptions) -> None:
    """The first PC must run what this affordml would deploy (the same kolla-ansible release and configuration);
    otherwise the new PC would get another release than its controller. Its phases may have run before the new PC
    was listed in affordml.yaml (a listed PC is in env/'s inventory): then env/ without it is what they ran."""
    stale = _stale_phase(project.env_dir, state)
    if not stale or _ran_before_listed(project, state, config, lock, options):
        return
    raise StateError(
        f"phase {stale} ran with other inputs than this affordml and affordml.yaml give now (another "
        f"kolla-ansible release or configuration): the new PC would not match the first one",
        "run `affordml init` first (or `affordml upgrade`), then add-node",
    )


def _stale_phase(env_dir: Path, state) -> str | None:
    for name in NEEDS_DONE:
        if state.phase(name).inputs_hash != inputs_hash(get_phase(name), env_dir, state.data):
            return name
    return None


def _ran_before_listed(project: Project, state, config, lock, options: AddNodeOptions) -> bool:
    """Whether the first PC's phases match an env/ rendered (in a temporary folder) from the config without the
    joining PC: they ran before it was listed."""
    import tempfile

    from affordml.lifecycle.nodes import platform_plan
    from affordml.plan.build import make_plan
    from affordml.render.context import build_context
    from affordml.render.engine import render_files, write_env
    from affordml.versions import version_table

    if options.host not in [h.name for h in config.hosts[1:]]:
        return False
    others = config.model_copy(update={"hosts": [h for h in config.hosts if h.name != options.host]})
    versions = version_table(lock)
    plan = make_plan(_first_pc_facts(project, options.base_facts_file), others, versions)
    plan = platform_plan(project, others, versions, plan)
    with tempfile.TemporaryDirectory(prefix="affordml-add-node-") as folder:
        env_dir = Path(folder) / "env"
        write_env(env_dir, render_files(build_context(plan, others, lock)))
        return _stale_phase(env_dir, state) is None


def _config_host(config, name: str):
    if name == config.hosts[0].name:
        raise ConfigError(f"hosts.{name} is the first PC: it is already in the platform", "name another PC")
    for host in config.hosts:
        if host.name == name:
            return host
    raise ConfigError(
        f"add-node: no host named {name!r} in hosts of affordml.yaml",
        f"give its address: `affordml add-node {name} --address A [--user U --key PATH --port N]` records it "
        "there; or add it to hosts yourself",
    )


def _refuse_known_hostname(hostname: str, base, host: str) -> None:
    others = {n.hostname: n.host for n in base.nodes if n.host != host}
    if hostname in others:
        raise PlanError(
            f"hosts.{host}: {hostname} is already in the platform as {others[hostname]}",
            "each PC joins once: check the address in affordml.yaml",
        )


def _first_pc_facts(project: Project, facts_file: Path | None):
    from affordml.facts.parse import facts_from_snapshot
    from affordml.facts.sources import load_snapshot_file

    return facts_from_snapshot(load_snapshot_file(facts_file or project.facts_file))


def _render(project: Project, plan, config, lock) -> None:
    from affordml.render.project import render_project

    render_project(project, plan, config, lock)


def _refresh_platform_records(ctx: PhaseContext) -> None:
    """The platform's own phases are now where the grown plan wants them: their records take the inputs of a
    fresh env/ for it (as `init` renders it), so that the next `init` keeps them instead of running them again."""
    _render(ctx.project, ctx.plan, ctx.config, ctx.lock)
    for name in NODE_STEPS:
        record = ctx.state.phases.get(name)
        if record is not None and record.status == "done":
            digest = inputs_hash(get_phase(name), ctx.project.env_dir, ctx.state.data)
            ctx.state.phases[name] = replace(record, inputs_hash=digest)


def _when(stamp) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stamp)) if isinstance(stamp, int | float) else "earlier"
