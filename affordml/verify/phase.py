"""The verify phase (`affordml init`'s last, or `affordml verify` alone): run the checks on the cluster of
secrets/kubeconfig, keep the results in state.data["verify"], fail with the first failed check's fix."""

from __future__ import annotations

from pathlib import Path

from affordml.errors import RunError
from affordml.verify.record import FAILED, STATE_KEY, CheckResult, record, summary

PHASE = "verify"
BUILT_BY = ("kubernetes", "gpu", "ml")  # the phases that built what verify checks


def phase_inputs(ctx) -> dict:
    """What decides whether `init` keeps a passed verify: what it checked. The plan's nodes, the shares it
    promised and each GPU's sharing, the ml switches, the checks left out by name, and the inputs the platform's
    phases last ran with; another GPU mode, an added PC or an ml switch runs verify again."""
    from dataclasses import asdict

    from affordml.verify import objects as obj
    from affordml.verify.checks import planned_checks

    plan = ctx.plan
    return {
        "nodes": [(vm.name, vm.role) for vm in plan.vms],
        "shares": obj.promised_shares(plan),
        "gpus": [(g.vm, g.address, asdict(g.sharing) | {"reason": ""}) for g in plan.gpus],
        "ml": plan.ml,
        "checks": [check.name for check in planned_checks(plan)],
        "skipped": sorted(ctx.skip_checks),
        "built": {name: _built_with(ctx.state, name) for name in BUILT_BY},
    }


def _built_with(state, name: str) -> tuple[str, str]:
    record = state.phases.get(name)
    return (record.status, record.inputs_hash) if record else ("pending", "")


class VerifyFailed(RunError):
    """At least one check failed (results are saved)."""


def kubeconfig(project) -> Path:
    from affordml.kube.kubeconfig import kubeconfig_path

    path = kubeconfig_path(project.secrets_dir)
    if not path.is_file() or path.is_symlink():
        raise RunError(
            f"[{PHASE}] no cluster kubeconfig at {path}", "run `affordml init` first (the kubernetes phase writes it)"
        )
    return path


def run_verify_phase(ctx, skip: frozenset[str] = frozenset(), transport=None, waits=None, http_get=None) -> list:
    from affordml.verify.checks import VerifyContext
    from affordml.verify.runner import check_skips, run_checks
    from affordml.verify.waits import Waits

    check_skips(set(skip), ctx.plan)
    if ctx.dry_run:
        ctx.say(f"[{PHASE}] dry run: the checks would run on the cluster; nothing was created")
        return []
    owned = transport is None
    if owned:
        from affordml.verify.transport import KubeTransport

        transport = KubeTransport(kubeconfig(ctx.project))
    from affordml.verify.api import VerifyApi

    vc = VerifyContext(VerifyApi(transport), ctx.plan, ctx.lock, ctx.state.data, ctx.say, waits or Waits(), http_get)
    try:
        results = run_checks(vc, set(skip))
    finally:
        if owned:
            transport.close()
    saved = record(results)
    if vc.jupyterhub_url:
        saved["jupyterhub_url"] = vc.jupyterhub_url
    ctx.state.data[STATE_KEY] = saved
    ctx.say(f"[{PHASE}] {summary(saved)}")
    failed = [r for r in results if r.status == FAILED]
    if failed:
        raise _failure(failed)
    return results


def _failure(failed: list[CheckResult]) -> VerifyFailed:
    first = failed[0]
    more = f" ({len(failed) - 1} more failed: {', '.join(r.name for r in failed[1:])})" if len(failed) > 1 else ""
    return VerifyFailed(
        f"[{PHASE}] check {first.name} failed: {first.detail}{more}",
        f"{first.fix} (or skip it: `affordml verify --skip-check {first.name}`)",
    )
