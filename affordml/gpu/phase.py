"""The gpu phase: labels and the sharing ConfigMap through the API, then the releases with Helm, in order."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from affordml.errors import RunError
from affordml.gpu.releases import (
    MONITORING_CHART,
    MONITORING_CRDS_SUBCHART,
    RUNTIME_CLASS,
    RUNTIME_CLASS_TIMEOUT_S,
    gpu_releases,
)
from affordml.helm import Release

PHASE = "gpu"
OPERATOR_NAMESPACE = "gpu-operator"


def planned_releases(plan) -> list[Release]:
    return gpu_releases(hami=any(g.sharing.mode == "hami" for g in plan.gpus))


def wants_monitoring_crds(plan) -> bool:
    """dcgm-exporter's ServiceMonitor is on when monitoring is: the operator skips it if its CRD is absent when it
    reconciles, so the CRDs go in first."""
    return bool(plan.ml.get("monitoring"))


def _kubeconfig(ctx, phase: str = PHASE) -> Path:
    from affordml.kube.kubeconfig import kubeconfig_path

    path = kubeconfig_path(ctx.project.secrets_dir)
    if not path.is_file() or path.is_symlink():
        raise RunError(
            f"[{phase}] no cluster kubeconfig at {path}", "run `affordml init phase kubernetes` first (it writes it)"
        )
    return path


def make_driver(ctx, fetch: Callable[[str], Path], phase: str = PHASE):
    """The Helm driver for a phase's releases (the ml phase uses it too); its lines carry the phase's name."""
    from affordml.helm.cluster import NamespaceView
    from affordml.helm.driver import HelmDriver
    from affordml.helm.local import helm_binary

    kubeconfig = _kubeconfig(ctx, phase)
    cache = ctx.project.root / "cache" / "helm"
    helm = helm_binary(fetch("helm"), cache)
    view = NamespaceView(kubeconfig)
    say = lambda line: ctx.say(f"[{phase}] {line}")  # noqa: E731
    return HelmDriver(helm, kubeconfig, cache / "home", say, view.pods, view.warnings)


def chart_for(release: Release, fetch: Callable[[str], Path], cache: Path) -> tuple[Path, Path]:
    """(what helm installs, the archive whose digest stamps the release)."""
    from affordml.helm.local import chart_dir

    archive = fetch(release.chart)
    return (chart_dir(archive, release.chart_subdir, cache) if release.chart_subdir else archive), archive


def apply_objects(ctx, kubeconfig: Path, monitoring_crds: Path | None) -> None:
    """The monitoring CRDs and the device plugin's sharing ConfigMap before the operator reads them, and the labels
    that select each node's sharing configuration."""
    from affordml.gpu.apply import GpuApi, apply_crds, read_configmap, read_crds, read_node_labels

    env = ctx.project.env_dir / "gpu"
    configmap = read_configmap(env / "device-plugin-config.yaml")
    labels = read_node_labels(env / "node-labels.yaml")
    crds = read_crds(monitoring_crds) if monitoring_crds else []
    api = GpuApi(kubeconfig)
    try:
        if crds:
            names = apply_crds(api, crds)
            ctx.say(f"[{PHASE}] monitoring CRDs applied and Established: {', '.join(names)}")
        api.ensure_namespace(configmap["metadata"]["namespace"])
        api.apply_configmap(configmap)
        for node, node_labels in labels.items():
            api.label_node(node, node_labels)
            ctx.say(f"[{PHASE}] node {node}: {', '.join(f'{k}={v}' for k, v in node_labels.items())}")
    except RunError:
        raise
    except Exception as exc:  # ApiException, connection errors: one line
        raise RunError(f"[{PHASE}] the Kubernetes API refused or did not answer: {_api_text(exc)}", _API_FIX) from None
    finally:
        api.close()


_API_FIX = "check the cluster with `kubectl --kubeconfig secrets/kubeconfig get nodes`, then run `affordml init` again"


def _api_text(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if body:
        import json

        try:
            return " ".join(str(json.loads(body).get("message", body)).split())[:300]
        except ValueError:
            pass
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def wait_for_runtime_class(ctx, kubeconfig: Path) -> None:
    from affordml.gpu.apply import GpuApi, wait_runtime_class

    api = GpuApi(kubeconfig)
    try:
        say = lambda line: ctx.say(f"[{PHASE}] {line}")  # noqa: E731
        waited = wait_runtime_class(api, RUNTIME_CLASS, RUNTIME_CLASS_TIMEOUT_S, say)
        ctx.say(f"[{PHASE}] RuntimeClass {RUNTIME_CLASS} is there (waited {waited:.0f} s): HAMi can use it")
    finally:
        api.close()


def apply_chart_crds(ctx, kubeconfig: Path, release: Release, archive: Path, phase: str = PHASE) -> None:
    """The CRDs of release.crd_folders from the chart about to be installed, server-side applied and Established
    before helm runs: helm installs a chart's crds/ once and never upgrades them, nor adds the new chart's."""
    from affordml.gpu.apply import GpuApi, apply_crds, read_crds
    from affordml.helm.local import chart_folder

    cache = ctx.project.root / "cache" / "helm"
    crds = [crd for folder in release.crd_folders for crd in read_crds(chart_folder(archive, folder, cache))]
    api = GpuApi(kubeconfig)
    try:
        names = apply_crds(api, crds)
    except RunError:
        raise
    except Exception as exc:  # ApiException, connection errors: one line
        raise RunError(
            f"[{phase}] the Kubernetes API refused the CRDs of {release.name}: {_api_text(exc)}", _API_FIX
        ) from None
    finally:
        api.close()
    ctx.say(
        f"[{phase}] {release.name}: {len(names)} CRDs of its chart applied and Established (helm never upgrades them)"
    )


def before_hooks(ctx, kubeconfig: Path, planned: list) -> dict[str, Callable[[], None]]:
    """What runs right before each release: its chart's CRDs; for HAMi, the wait for the operator's RuntimeClass."""
    hooks: dict[str, Callable[[], None]] = {}
    for release, _chart, _values, archive in planned:
        steps = [lambda r=release, a=archive: apply_chart_crds(ctx, kubeconfig, r, a)] if release.crd_folders else []
        if release.name == "hami":
            steps.append(lambda: wait_for_runtime_class(ctx, kubeconfig))
        if steps:
            hooks[release.name] = _in_turn(steps)
    return hooks


def _in_turn(steps: list[Callable[[], None]]) -> Callable[[], None]:
    def run() -> None:
        for step in steps:
            step()

    return run


def run_gpu_phase(ctx, fetch: Callable[[str], Path] | None = None) -> None:
    from affordml.helm.driver import install_in_order, remove_in_reverse

    releases = planned_releases(ctx.plan)
    if ctx.dry_run:
        ctx.say(f"[{PHASE}] would label the GPU nodes and install: {', '.join(r.name for r in releases)}")
        return
    fetch = fetch or ctx.artifact_store().fetch
    started = time.monotonic()
    kubeconfig = _kubeconfig(ctx)
    cache = ctx.project.root / "cache" / "helm"
    crds = None
    if wants_monitoring_crds(ctx.plan):
        from affordml.helm.local import chart_dir

        crds = chart_dir(fetch(MONITORING_CHART), MONITORING_CRDS_SUBCHART, cache) / "crds"
    apply_objects(ctx, kubeconfig, crds)
    driver = make_driver(ctx, fetch)
    planned = []
    for release in releases:
        chart, archive = chart_for(release, fetch, cache)
        values = [ctx.project.env_dir / v for v in release.values]
        planned.append((release, chart, values, archive))
    outcomes = install_in_order(driver, planned, before_hooks(ctx, kubeconfig, planned))
    stale = [r for r in gpu_releases(hami=True) if r not in releases]  # e.g. HAMi after a switch to MPS
    outcomes += [o for o in remove_in_reverse(driver, stale) if o.action != "absent"]
    ctx.state.data[PHASE] = {"releases": [{"name": o.release, "action": o.action} for o in outcomes]}
    ctx.say(f"[{PHASE}] {', '.join(f'{o.release} {o.action}' for o in outcomes)} ({time.monotonic() - started:.0f} s)")


def remove_gpu_releases(ctx, fetch: Callable[[str], Path] | None = None) -> list[str]:
    """Every release the gpu phase may have installed, newest first (also those the plan no longer wants). The
    monitoring CRDs stay: deleting a CRD deletes every object of its kind, also the ones users made."""
    from affordml.helm.driver import remove_in_reverse

    fetch = fetch or ctx.artifact_store().fetch
    driver = make_driver(ctx, fetch)
    outcomes = remove_in_reverse(driver, gpu_releases(hami=True))
    return [o.release for o in outcomes if o.action == "removed"]
