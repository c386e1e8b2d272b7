"""The gpu phase: labels and the sharing ConfigMap through the API, then the releases with Helm, in order."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from affordml.errors import RunError
from affordml.gpu.releases import gpu_releases
from affordml.helm import Release

PHASE = "gpu"
OPERATOR_NAMESPACE = "gpu-operator"


def planned_releases(plan) -> list[Release]:
    return gpu_releases(
        monitoring=bool(plan.ml.get("monitoring")), hami=any(g.sharing.mode == "hami" for g in plan.gpus)
    )


def _kubeconfig(ctx) -> Path:
    from affordml.kube.kubeconfig import kubeconfig_path

    path = kubeconfig_path(ctx.project.secrets_dir)
    if not path.is_file() or path.is_symlink():
        raise RunError(
            f"[{PHASE}] no cluster kubeconfig at {path}", "run `affordml init phase kubernetes` first (it writes it)"
        )
    return path


def make_driver(ctx, fetch: Callable[[str], Path]):
    from affordml.helm.cluster import NamespaceView
    from affordml.helm.driver import HelmDriver
    from affordml.helm.local import helm_binary

    kubeconfig = _kubeconfig(ctx)
    cache = ctx.project.root / "cache" / "helm"
    helm = helm_binary(fetch("helm"), cache)
    view = NamespaceView(kubeconfig)
    return HelmDriver(helm, kubeconfig, cache / "home", lambda line: ctx.say(f"[{PHASE}] {line}"), view.pods)


def chart_for(release: Release, fetch: Callable[[str], Path], cache: Path) -> tuple[Path, Path]:
    """(what helm installs, the archive whose digest stamps the release)."""
    from affordml.helm.local import chart_dir

    archive = fetch(release.chart)
    return (chart_dir(archive, release.chart_subdir, cache) if release.chart_subdir else archive), archive


def apply_objects(ctx, kubeconfig: Path) -> None:
    """The device plugin's sharing ConfigMap before the operator reads it, and the labels that select it."""
    from affordml.gpu.apply import GpuApi, read_configmap, read_node_labels

    env = ctx.project.env_dir / "gpu"
    configmap = read_configmap(env / "device-plugin-config.yaml")
    labels = read_node_labels(env / "node-labels.yaml")
    api = GpuApi(kubeconfig)
    try:
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


def run_gpu_phase(ctx, fetch: Callable[[str], Path] | None = None) -> None:
    from affordml.helm.driver import install_in_order

    releases = planned_releases(ctx.plan)
    if ctx.dry_run:
        ctx.say(f"[{PHASE}] would label the GPU nodes and install: {', '.join(r.name for r in releases)}")
        return
    fetch = fetch or ctx.artifact_store().fetch
    started = time.monotonic()
    kubeconfig = _kubeconfig(ctx)
    apply_objects(ctx, kubeconfig)
    driver = make_driver(ctx, fetch)
    cache = ctx.project.root / "cache" / "helm"
    planned = []
    for release in releases:
        chart, archive = chart_for(release, fetch, cache)
        values = [ctx.project.env_dir / v for v in release.values]
        planned.append((release, chart, values, archive))
    outcomes = install_in_order(driver, planned)
    ctx.state.data[PHASE] = {"releases": [{"name": o.release, "action": o.action} for o in outcomes]}
    ctx.say(f"[{PHASE}] {', '.join(f'{o.release} {o.action}' for o in outcomes)} ({time.monotonic() - started:.0f} s)")


def remove_gpu_releases(ctx, fetch: Callable[[str], Path] | None = None) -> list[str]:
    """Every release the gpu phase may have installed, newest first (also those the plan no longer wants)."""
    from affordml.helm.driver import remove_in_reverse

    fetch = fetch or ctx.artifact_store().fetch
    driver = make_driver(ctx, fetch)
    outcomes = remove_in_reverse(driver, gpu_releases(monitoring=True, hami=True))
    return [o.release for o in outcomes if o.action == "removed"]
