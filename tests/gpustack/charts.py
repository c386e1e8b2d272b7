"""The real charts at the locked versions, from chart source trees checked out outside the repository
(AFFORDML_CHART_SOURCES), packaged by the real helm into a cache; helm itself from PyPI (tests/artifacts)."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

SOURCES_ENV = "AFFORDML_CHART_SOURCES"
# artifact name -> (folder under AFFORDML_CHART_SOURCES, version the lock pins)
CHART_TREES = {
    "chart/gpu-operator": ("gpu-operator-v26.7.0/deployments/gpu-operator", "v26.7.0"),
    "chart/hami": ("hami-2.10.0/charts/hami", "2.10.0"),
    "chart/kube-prometheus-stack": ("kube-prometheus-stack-88.5.3/charts/kube-prometheus-stack", "88.5.3"),
    "chart/jupyterhub": ("jupyterhub-4.4.0/jupyterhub", "4.4.0"),
    "chart/kueue": ("kueue-v0.19.2/charts/kueue", "0.19.2"),
    # cert-manager's chart folder as its `make helm-chart` lays it out (templates/crds.yaml = deploy/crds/*.yaml)
    "chart/cert-manager": ("cert-manager-v1.17.0/deploy/charts/cert-manager", "v1.17.0"),
    "chart/kserve-crd": ("kserve-v0.20.0/charts/kserve-crd", "v0.20.0"),
    "chart/kserve-resources": ("kserve-v0.20.0/charts/kserve-resources", "v0.20.0"),
}


# The previous lock's charts (tests/fixtures/locks/2026.05.yaml), for the upgrade tests: `git archive <tag> <path>`
# of each chart's repository into AFFORDML_CHART_SOURCES/<folder> (tests/gpustack/README.md). cert-manager is the
# same in both locks.
PREVIOUS_CHART_TREES = {
    "chart/gpu-operator": ("gpu-operator-v26.3.3/deployments/gpu-operator", "v26.3.3"),
    "chart/hami": ("hami-2.9.0/charts/hami", "2.9.0"),
    "chart/kube-prometheus-stack": ("kube-prometheus-stack-87.9.0/charts/kube-prometheus-stack", "87.9.0"),
    "chart/jupyterhub": ("jupyterhub-4.3.5/jupyterhub", "4.3.5"),
    "chart/kueue": ("kueue-v0.18.6/charts/kueue", "0.18.6"),
    "chart/cert-manager": CHART_TREES["chart/cert-manager"],
    "chart/kserve-crd": ("kserve-v0.19.0/charts/kserve-crd", "v0.19.0"),
    "chart/kserve-resources": ("kserve-v0.19.0/charts/kserve-resources", "v0.19.0"),
}


def why_unavailable() -> str | None:
    if os.environ.get("CI"):
        return "CI: the charts' sources are not in any package registry (see tests/gpustack/README.md)"
    root = os.environ.get(SOURCES_ENV)
    if not root:
        return f"set {SOURCES_ENV} to a folder with the chart sources at the locked tags (tests/gpustack/README.md)"
    missing = [rel for rel, _ in CHART_TREES.values() if not (Path(root) / rel / "Chart.yaml").is_file()]
    return f"{SOURCES_ENV}: no Chart.yaml in {', '.join(missing)}" if missing else None


def previous_unavailable() -> str | None:
    reason = monitoring_unavailable()
    if reason:
        return reason
    root = Path(os.environ[SOURCES_ENV])
    wanted = [rel for rel, _ in PREVIOUS_CHART_TREES.values()] + list(PREVIOUS_MONITORING_SUBCHARTS.values())
    missing = [rel for rel in wanted if not (root / rel / "Chart.yaml").is_file()]
    return f"{SOURCES_ENV}: no Chart.yaml in {', '.join(missing)} (the previous lock's charts)" if missing else None


def chart_archives(helm: Path, cache: Path, trees: dict | None = None) -> dict[str, Path]:
    """artifact name -> .tgz. gpu-operator and HAMi packaged by helm at the locked version; kube-prometheus-stack's
    source archived as it is (its subcharts other than crds are fetched by `helm dependency build`, which needs
    the network; the gpu phase installs only its charts/crds). `trees`: another set (PREVIOUS_CHART_TREES)."""
    root = Path(os.environ[SOURCES_ENV])
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (rel, version) in (trees or CHART_TREES).items():
        source = root / rel
        target = cache / f"{source.name}-{version}.tgz"
        if not target.is_file():
            if name == "chart/kube-prometheus-stack":
                with tarfile.open(target, "w:gz") as tar:
                    tar.add(source, arcname=source.name)
            else:
                subprocess.run(
                    [str(helm), "package", str(source), "--version", version, "--app-version", version,
                     "--destination", str(cache)],
                    check=True, capture_output=True, text=True, timeout=120,
                )  # fmt: skip
        out[name] = target
    return out


# kube-prometheus-stack's own subcharts (Chart.yaml dependencies at 88.5.3), for installing the whole chart: folders
# under AFFORDML_CHART_SOURCES, e.g. `git archive kube-state-metrics-8.4.0 charts/kube-state-metrics` of
# prometheus-community/helm-charts and `git archive grafana-12.11.1 charts/grafana` of grafana-community/helm-charts
MONITORING_SUBCHARTS = {
    "kube-state-metrics": "kube-state-metrics-8.4.0/charts/kube-state-metrics",
    "prometheus-node-exporter": "prometheus-node-exporter-4.56.1/charts/prometheus-node-exporter",
    "grafana": "grafana-12.11.1/charts/grafana",
    "prometheus-windows-exporter": "prometheus-windows-exporter-0.12.7/charts/prometheus-windows-exporter",
}


# the same for kube-prometheus-stack 87.9.0 (its Chart.yaml dependencies at that tag)
PREVIOUS_MONITORING_SUBCHARTS = {
    "kube-state-metrics": "kube-state-metrics-7.5.1/charts/kube-state-metrics",
    "prometheus-node-exporter": "prometheus-node-exporter-4.55.0/charts/prometheus-node-exporter",
    "grafana": "grafana-12.7.2/charts/grafana",
    "prometheus-windows-exporter": "prometheus-windows-exporter-0.12.7/charts/prometheus-windows-exporter",
}


def monitoring_unavailable() -> str | None:
    reason = why_unavailable()
    if reason:
        return reason
    root = Path(os.environ[SOURCES_ENV])
    missing = [rel for rel in MONITORING_SUBCHARTS.values() if not (root / rel / "Chart.yaml").is_file()]
    return f"{SOURCES_ENV}: no Chart.yaml in {', '.join(missing)}" if missing else None


def monitoring_chart(cache: Path, previous: bool = False) -> Path:
    """kube-prometheus-stack 88.5.3 (previous: 87.9.0) with its subcharts in charts/ (what `helm dependency build`
    would fetch), as a .tgz helm installs."""
    root = Path(os.environ[SOURCES_ENV])
    rel, version = (PREVIOUS_CHART_TREES if previous else CHART_TREES)["chart/kube-prometheus-stack"]
    subcharts = PREVIOUS_MONITORING_SUBCHARTS if previous else MONITORING_SUBCHARTS
    target = cache / f"kube-prometheus-stack-{version}-full.tgz"
    if not target.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        source = root / rel
        with tarfile.open(target, "w:gz") as tar:
            tar.add(source, arcname=source.name)
            for name, rel in subcharts.items():
                tar.add(root / rel, arcname=f"{source.name}/charts/{name}")
    return target
