"""The ml phase: the ML services as Helm releases through the gpu phase's driver, in order, each only when its
`ml.<component>` is on; hooks after a release (the queue objects after Kueue); releases the plan no longer wants
removed; the admin's password for JupyterHub shown once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from affordml.errors import RunError
from affordml.helm import Release
from affordml.helm.driver import Outcome
from affordml.ml.releases import JUPYTERHUB, KUEUE, MONITORING, all_ml_releases, ml_releases

PHASE = "ml"


def planned_releases(plan) -> list[Release]:
    return ml_releases(plan.ml)


def apply_queues(ctx, kubeconfig: Path) -> None:
    from affordml.ml.queues import apply_queue_objects  # the ml-queue module; imported only when Kueue is in

    apply_queue_objects(ctx, kubeconfig)


def prepare_monitoring(ctx, kubeconfig: Path, fetch: Callable[[str], Path]) -> None:
    """Grafana's admin Secret, the dashboard ConfigMap and the monitoring CRDs (server-side apply) before the
    release: the chart does not carry its CRDs (over the API's 1 MiB release Secret limit), and on a CPU-only
    platform the gpu phase that also applies them does not run."""
    from affordml.gpu.releases import MONITORING_CHART, MONITORING_CRDS_SUBCHART
    from affordml.helm.local import chart_dir
    from affordml.ml.monitoring import prepare_monitoring as prepare

    cache = ctx.project.root / "cache" / "helm"
    prepare(ctx, kubeconfig, chart_dir(fetch(MONITORING_CHART), MONITORING_CRDS_SUBCHART, cache) / "crds")


def after_kueue_removed(ctx, kubeconfig: Path) -> None:
    """The after-hours switch (its CronJobs would keep starting Jobs) and kueue-system once nobody else uses it."""
    from affordml.ml.queues import QueueApi

    api = QueueApi(kubeconfig)
    try:
        removed = api.remove_switches()
        others = api.remove_namespace_if_empty(KUEUE.namespace, KUEUE.name)
    finally:
        api.close()
    ctx.say(f"[{PHASE}] training queue: removed {len(removed)} objects of the after-hours switch")
    if others:
        ctx.say(f"[{PHASE}] namespace {KUEUE.namespace} kept: it holds others' objects ({', '.join(others[:5])})")
    else:
        ctx.say(f"[{PHASE}] namespace {KUEUE.namespace} removed")


AFTER: dict[str, Callable] = {KUEUE.name: apply_queues}  # release name -> hook(ctx, kubeconfig)
AFTER_REMOVAL: dict[str, Callable] = {KUEUE.name: after_kueue_removed}  # release name -> hook(ctx, kubeconfig)
BEFORE: dict[str, Callable] = {MONITORING.name: prepare_monitoring}  # release name -> hook(ctx, kubeconfig, fetch)


def values_files(ctx, release: Release, secret_values: Path | None) -> list[Path]:
    files = [ctx.project.env_dir / v for v in release.values]
    missing = [str(f.relative_to(ctx.project.root)) for f in files if not f.is_file()]
    if missing:
        raise RunError(
            f"[{PHASE}] release {release.name}: no values file {', '.join(missing)}",
            "run `affordml render` (or `affordml init`, which renders first) and try again",
        )
    return files + ([secret_values] if release is JUPYTERHUB and secret_values else [])


def install(ctx, driver, planned, kubeconfig: Path, fetch: Callable[[str], Path]) -> list:
    """Each release in order, its hooks right before and after it (before it also the CRDs of its chart that helm
    never upgrades, release.crd_folders); stops at the first failure (the driver raises)."""
    outcomes = []
    for release, chart, values, digest_from in planned:
        if release.crd_folders:
            from affordml.gpu.phase import apply_chart_crds

            apply_chart_crds(ctx, kubeconfig, release, digest_from, PHASE)
        before = BEFORE.get(release.name)
        if before:
            before(ctx, kubeconfig, fetch)
        outcomes.append(driver.ensure(release, chart, values, digest_from))
        hook = AFTER.get(release.name)
        if hook:
            hook(ctx, kubeconfig)
    return outcomes


def run_ml_phase(ctx, fetch: Callable[[str], Path] | None = None, driver=None) -> None:
    from affordml.gpu.phase import _kubeconfig, chart_for, make_driver

    releases = planned_releases(ctx.plan)
    stale = [r for r in all_ml_releases() if r not in releases]
    if ctx.dry_run:
        ctx.say(f"[{PHASE}] would install: {', '.join(r.name for r in releases) or 'nothing (ml.* all off)'}")
        ctx.say(f"[{PHASE}] would remove if present: {', '.join(r.name for r in stale) or 'nothing'}")
        return
    started = time.monotonic()
    fetch = fetch or ctx.artifact_store().fetch
    kubeconfig = _kubeconfig(ctx, PHASE)
    driver = driver or make_driver(ctx, fetch, PHASE)
    secret_values, password = _admin_secret(ctx) if JUPYTERHUB in releases else (None, None)
    cache = ctx.project.root / "cache" / "helm"
    planned = []
    for release in releases:
        values = values_files(ctx, release, secret_values)
        chart, archive = chart_for(release, fetch, cache)
        planned.append((release, chart, values, archive))
    record = ctx.state.data.setdefault(PHASE, {})
    outcomes = install(ctx, driver, planned, kubeconfig, fetch)
    outcomes += [o for o in remove_releases(ctx, driver, kubeconfig, stale) if o.action != "absent"]
    record["releases"] = [{"name": o.release, "action": o.action} for o in outcomes]
    summary = ", ".join(f"{o.release} {o.action}" for o in outcomes) or "nothing to install"
    ctx.say(f"[{PHASE}] {summary} ({time.monotonic() - started:.0f} s)")
    if password is not None:
        _show_admin_once(ctx, record, password)


def _admin_secret(ctx) -> tuple[Path, str]:
    from affordml.ml.hub import ensure_admin_password, write_secret_values

    password, _ = ensure_admin_password(ctx.project)
    return write_secret_values(ctx.project, password), password


def _show_admin_once(ctx, record: dict, password: str) -> None:
    from affordml.ml.hub import ADMIN_USER, SECRETS_FILE, hub_url

    where = hub_url(ctx.state.data) or "JupyterHub (`affordml status` shows its address)"
    if record.get("admin_password_shown"):
        ctx.say(f"[{PHASE}] {where}: admin account {ADMIN_USER}, password in secrets/{SECRETS_FILE}")
        return
    ctx.say(f"[{PHASE}] {where}: log in as {ADMIN_USER} with password {password} (shown once; kept in "
            f"secrets/{SECRETS_FILE}). Users sign up there; you approve them at /hub/authorize")  # fmt: skip
    record["admin_password_shown"] = True


def release_cleanup(kubeconfig: Path):
    from affordml.ml.kept import ReleaseCleanup

    return ReleaseCleanup(kubeconfig)


def remove_releases(ctx, driver, kubeconfig: Path, releases: list[Release], delete_data: bool = False) -> list:
    """Newest first. A keep_crds release leaves its CRDs and the users' objects (marked before, said after); the
    cluster-wide roles the cluster re-created after helm deleted them go; then the release's removal hook. A release
    whose stored manifest has CRDs without the keep policy (deployed before it) is refused unless delete_data."""
    cleanup = release_cleanup(kubeconfig)
    outcomes = []
    try:
        for release in reversed(releases):
            manifest = driver.deployed_manifest(release)
            if manifest is None:
                outcomes.append(Outcome(release.name, "absent"))
                continue
            if not delete_data:
                refuse_losing_crds(release, manifest)
            roles = [d["metadata"]["name"] for d in manifest if d.get("kind") == "ClusterRole"]
            kept = cleanup.mark_kept(release) if release.keep_crds else []
            outcome = driver.remove(release)
            outcomes.append(outcome)
            if outcome.action != "removed":
                continue
            left = cleanup.delete_leftover_roles(roles)
            if left:
                ctx.say(f"[{PHASE}] {release.name}: ClusterRole(s) {', '.join(left)} re-created by the cluster, left")
            if kept:
                ctx.say(f"[{PHASE}] {release.name}: kept: {len(kept)} CRDs with the users' objects; "
                        "`affordml destroy --delete-data` removes them")  # fmt: skip
            hook = AFTER_REMOVAL.get(release.name)
            if hook:
                hook(ctx, kubeconfig)
    finally:
        cleanup.close()
    return outcomes


def refuse_losing_crds(release: Release, manifest: list[dict]) -> None:
    """helm uninstall deletes the CRDs its stored manifest holds without the keep policy, and every object of them."""
    doomed = [
        d["metadata"]["name"]
        for d in manifest
        if d.get("kind") == "CustomResourceDefinition"
        and (d["metadata"].get("annotations") or {}).get("helm.sh/resource-policy") != "keep"
    ]
    if doomed:
        raise RunError(
            f"[{PHASE}] removing release {release.name} would delete {len(doomed)} CRDs and every object of theirs "
            f"({', '.join(doomed[:3])}{', ...' if len(doomed) > 3 else ''}): it was deployed before affordml kept them",
            "turn its `ml.` switch on and run `affordml init phase ml` once (that re-deploys it with the keep policy), "
            "then turn it off; `affordml destroy --only ml --delete-data` deletes them on purpose",
        )


def remove_ml_releases(ctx, fetch: Callable[[str], Path] | None = None, delete_data: bool = False) -> list[str]:
    """Every release the ml phase may have installed, newest first (also those the plan no longer wants)."""
    from affordml.gpu.phase import _kubeconfig, make_driver

    driver = make_driver(ctx, fetch or ctx.artifact_store().fetch, PHASE)
    outcomes = remove_releases(ctx, driver, _kubeconfig(ctx, PHASE), all_ml_releases(), delete_data)
    return [o.release for o in outcomes if o.action == "removed"]


def delete_kept_crds(ctx) -> list[str]:
    """--delete-data: the CRDs the keep_crds releases left, and with them the users' queues and services."""
    from affordml.gpu.phase import _kubeconfig

    cleanup = release_cleanup(_kubeconfig(ctx, PHASE))
    try:
        deleted = [name for r in all_ml_releases() if r.keep_crds for name in cleanup.delete_crds(r)]
        left = cleanup.still_there(deleted)
    finally:
        cleanup.close()
    ctx.say(f"[data] deleted {len(deleted) - len(left)} kept CRDs of the ml releases and every object of theirs")
    if left:
        ctx.say(f"[data] still being deleted by the API server: {', '.join(left)} (`kubectl get crd` shows when)")
    return deleted
