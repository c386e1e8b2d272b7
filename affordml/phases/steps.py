"""What each phase runs: a playbook through ansible-runner, or a Python step."""

from __future__ import annotations

from datetime import UTC, datetime

from affordml.errors import PhaseUnavailable, RunError
from affordml.phases.registry import Phase
from affordml.phases.workflow import REBOOT_KEY, REBOOT_PHASE, PhaseContext
from affordml.resources import data_dir

EXTRA_VARS_FILE = "extra-vars.yml"  # optional, in the project folder: Ansible extra variables for every phase


def execute(phase: Phase, ctx: PhaseContext) -> str | None:
    if phase.kind == "playbook":
        before = PLAYBOOK_PRE_STEPS.get(phase.name)
        if before:
            before(ctx)
        return run_playbook(phase, ctx, ctx.action)
    step = PYTHON_STEPS.get(phase.target)
    if step is None:
        before = (
            "the phases before it were only checked (dry run), nothing was changed"
            if ctx.dry_run
            else ("the phases before it are done")
        )
        raise PhaseUnavailable(
            f"phase {phase.name} is not available in this affordml version; {before}",
            f"run `affordml init --skip-phase {phase.name}` to go on without it, or upgrade affordml",
        )
    return step(ctx)


def new_ident(phase: str) -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{phase}"


def run_playbook(
    phase: Phase, ctx: PhaseContext, action: str = "deploy", limit: str | None = None, extravars: dict | None = None
) -> str:
    from affordml import console
    from affordml.run.args import build_run_args
    from affordml.run.executor import check_result
    from affordml.run.executor import execute as execute_run
    from affordml.run.progress import Progress
    from affordml.run.toolchains import own_bin

    playbook = data_dir("playbooks") / phase.target
    if not playbook.exists():
        raise PhaseUnavailable(
            f"phase {phase.name}: its playbook {phase.target} is not in this affordml version",
            f"run `affordml init --skip-phase {phase.name}`, or upgrade affordml",
        )
    env = ctx.project.env_dir
    secrets = _secret_files(ctx.project)
    extra = ctx.project.root / EXTRA_VARS_FILE
    ident = new_ident(phase.name)
    args = build_run_args(
        ident=ident,
        runs_dir=ctx.project.runs_dir,
        playbook=playbook,
        inventories=[env / "inventory" / "hosts.yml"],
        vars_files=[env / "vars" / "plan.yml", *secrets, *([extra] if extra.is_file() else [])],
        extravars={
            "affordml_action": action,
            "affordml_env_dir": str(env),
            "affordml_secrets_dir": str(ctx.project.secrets_dir),
            **ctx.run_vars,
            **(extravars or {}),
        },
        toolchain_bin=own_bin(),
        check=ctx.dry_run,
        limit=limit,
        config_file=data_dir("playbooks") / "ansible.cfg",
    )
    from affordml.safefile import ensure_folder

    ensure_folder(ctx.project.root, f"runs/{ident}")
    progress = Progress(phase.name)
    lock = ctx.run_lock
    with console.run_view(progress) as on_event:
        result = execute_run(args, progress, on_event, lock.started_child if lock else None)
    if lock:
        lock.child_ended()
    ctx.say(f"[{phase.name}] {progress.summary()}; logs in {result.artifacts}")
    check_result(result, phase.name)
    _note_reboot(ctx, progress, phase.name)
    return ident


def _secret_files(project) -> list:
    """secrets/*.yml for Ansible (-e @file): each must be affordml's own file, never a link to one elsewhere."""
    from affordml.safefile import own_file_exists

    if not project.secrets_dir.exists():
        return []
    files = sorted(project.secrets_dir.glob("*.yml"))
    for path in files:
        own_file_exists(project.root, path.relative_to(project.root))
    return files


def _note_reboot(ctx: PhaseContext, progress, phase: str) -> None:
    """Roles set the fact affordml_reboot_required; init records it (the workflow stops there) and never
    reboots by itself. The host phase runs again after the reboot: when it no longer sets it, it is cleared."""
    hosts = sorted(progress.reboot_required)
    if hosts:
        ctx.state.data[REBOOT_KEY] = hosts
        ctx.notes.append(f"reboot {', '.join(hosts)}, then run `affordml init` again: it resumes")
    elif phase == REBOOT_PHASE and ctx.state.data.get(REBOOT_KEY) and not ctx.dry_run:
        ctx.state.data.pop(REBOOT_KEY)


def preflight(ctx: PhaseContext) -> None:
    """Read each host over SSH (or locally) and run the doctor's checks on it."""
    from affordml.facts.gather import gather_facts
    from affordml.plan.checks import doctor_results, summary
    from affordml.versions import version_table

    failed = []
    for host in ctx.config.hosts:
        facts = gather_facts(ctx.project, ctx.config, None, host.name)
        results = doctor_results(facts, ctx.config, version_table(ctx.lock), ctx.ignore_checks)
        bad = [r for r in results if r.status == "fail"]
        ctx.say(f"[preflight] {host.name}: {summary(results)} (the same checks as `affordml doctor`)")
        failed += [(host.name, r) for r in bad]
    if failed:
        host, first = failed[0]
        raise RunError(
            f"[preflight] {host}: check {first.name} failed: {first.message}",
            f"{first.fix} (or skip it with --ignore-check {first.name})",
        )


def cloud(ctx: PhaseContext) -> None:
    try:
        from affordml.cloud.phase import run_cloud_phase  # imports openstacksdk: only here
    except ImportError:
        raise PhaseUnavailable(
            "phase cloud is not available in this affordml version",
            "run `affordml init --skip-phase cloud`, or upgrade affordml",
        ) from None
    run_cloud_phase(ctx)


def kubernetes(ctx: PhaseContext) -> str:
    from affordml.phases.kubernetes import run_kubernetes_phase

    return run_kubernetes_phase(ctx)


def prepare_kolla(ctx: PhaseContext) -> None:
    """Before the openstack playbook: kolla-ansible's toolchain here, kolla's passwords filled by its own
    kolla-genpwd into secrets/kolla-passwords.yml, and kolla's inventory rendered into env/kolla/."""
    from affordml.render.kolla_inventory import write_kolla_inventory
    from affordml.run.toolchains import ensure, kolla_toolchain
    from affordml.safefile import own_file_exists
    from affordml.secrets import ensure_kolla_passwords, kolla_share

    own_file_exists(ctx.project.root, "secrets/clouds.yaml")  # the role merges into it: refuse a link first
    toolchain_bin = ensure(kolla_toolchain(ctx.lock), lambda line: ctx.say(f"[openstack] {line}"))
    passwords = ensure_kolla_passwords(ctx.project, toolchain_bin)
    all_in_one = kolla_share(toolchain_bin) / "ansible" / "inventory" / "all-in-one"
    inventory = write_kolla_inventory(ctx.project.env_dir, all_in_one, ctx.config.hosts, ctx.plan)
    ctx.say(f"[openstack] kolla passwords in {passwords}, kolla inventory in {inventory}")


def gpu(ctx: PhaseContext) -> None:
    from affordml.gpu.phase import run_gpu_phase  # imports the kubernetes client: only here

    run_gpu_phase(ctx)


def verify(ctx: PhaseContext) -> None:
    from affordml.verify.phase import run_verify_phase  # the kubernetes client: only when it runs

    run_verify_phase(ctx, ctx.skip_checks)


def ml(ctx: PhaseContext) -> None:
    from affordml.ml.phase import run_ml_phase  # imports the kubernetes client: only here

    run_ml_phase(ctx)


PYTHON_STEPS = {
    "preflight": preflight,
    "cloud": cloud,
    "kubernetes": kubernetes,
    "gpu": gpu,
    "ml": ml,
    "verify": verify,
}
PLAYBOOK_PRE_STEPS = {"openstack": prepare_kolla}
