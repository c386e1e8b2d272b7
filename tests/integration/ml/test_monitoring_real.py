"""Monitoring against real engines (outside CI; tests/gpustack/README.md): on the real kube-apiserver,
prepare_monitoring's CRDs (server-side apply), admin Secret and dashboard ConfigMap, then the real
helm installing kube-prometheus-stack 88.5.3 (with its subcharts at their locked versions) with the rendered
values. Checks what the chart made of the values, that Grafana reads its login from the Secret and that the
password is nowhere in the release, and that `affordml report` through the API server's service proxy says in
one line that Prometheus is not there (no kubelet: the operator never runs, so no prometheus-operated Service)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from affordml.phases.workflow import PhaseContext
from tests.cases import phase_context
from tests.kubecp.fixtures import control_plane_factory  # noqa: F401 - fixture

RESULTS: list[str] = []


@pytest.fixture(scope="module")
def monitoring_chart():
    from tests.gpustack import charts

    reason = charts.monitoring_unavailable()
    if reason:
        pytest.skip(reason)
    from tests.artifacts.realfiles import cache_dir, helm_binary

    helm = helm_binary()
    return {"helm": helm, "chart": charts.monitoring_chart(cache_dir() / "gpu-charts")}


def make_context(root: Path, kubeconfig_text: str, lines: list[str]) -> PhaseContext:
    return phase_context({"fixture": "desktop-rtx4090"}, root, kubeconfig_text, lines.append)


def _crds_folder() -> Path:
    import os

    from tests.gpustack import charts

    source = Path(os.environ[charts.SOURCES_ENV]) / charts.CHART_TREES["chart/kube-prometheus-stack"][0]
    return source / "charts" / "crds" / "crds"


@pytest.mark.slow
def test_monitoring_installs_with_the_rendered_values(control_plane_factory, monitoring_chart, tmp_path):  # noqa: F811
    from kubernetes import client

    from affordml.errors import RunError
    from affordml.helm import Release
    from affordml.helm.cluster import NamespaceView
    from affordml.helm.driver import HelmDriver
    from affordml.ml import monitoring
    from affordml.report.prometheus import ProxyPrometheus, query_range
    from affordml.secrets import read_secrets
    from tests.gpustack.kubelet import StandInKubelet

    cp = control_plane_factory()
    cp.register_node("worker-1", capacity={"cpu": "16", "memory": "64Gi", "pods": "250"}, labels={})
    api = cp.client()
    client.CoreV1Api(api).patch_node("worker-1", {"spec": {"taints": []}})
    lines: list[str] = []
    ctx = make_context(tmp_path / "project", cp.admin_kubeconfig(), lines)
    kubeconfig = ctx.project.secrets_dir / "kubeconfig"
    crds = _crds_folder()

    started = time.monotonic()
    monitoring.prepare_monitoring(ctx, kubeconfig, crds)  # a CPU-only platform: no gpu phase applied them
    monitoring.prepare_monitoring(ctx, kubeconfig, crds)  # again: applied and replaced, not refused
    prepared = time.monotonic() - started
    core = client.CoreV1Api(api)
    password = read_secrets(ctx.project.secrets_dir / "platform.yml", ctx.project.root)[monitoring.PASSWORD_KEY]
    secret = core.read_namespaced_secret(monitoring.ADMIN_SECRET, "monitoring")
    assert base64.b64decode(secret.data["admin-password"]).decode() == password
    dashboard = core.read_namespaced_config_map(monitoring.DASHBOARD_CONFIGMAP, "monitoring")
    assert dashboard.metadata.labels["grafana_dashboard"] == "1"
    assert json.loads(dashboard.data[monitoring.DASHBOARD_FILE])["uid"] == "affordml-gpu-shares"

    release = Release(
        "monitoring", "monitoring", "chart/kube-prometheus-stack", values=("ml/kube-prometheus-stack-values.yaml",),
        timeout_s=600,
    )  # fmt: skip
    cache = tmp_path / "helm"
    view = NamespaceView(kubeconfig)
    driver = HelmDriver(monitoring_chart["helm"], kubeconfig, cache / "home", lines.append, view.pods, view.warnings)
    values = [ctx.project.env_dir / v for v in release.values]
    with StandInKubelet(api):
        started = time.monotonic()
        outcome = driver.ensure(release, monitoring_chart["chart"], values, monitoring_chart["chart"])
        installed = time.monotonic() - started
        again = driver.ensure(release, monitoring_chart["chart"], values, monitoring_chart["chart"])
    assert outcome.action == "installed" and again.action == "unchanged", lines

    custom = client.CustomObjectsApi(api)
    [prometheus] = custom.list_namespaced_custom_object("monitoring.coreos.com", "v1", "monitoring", "prometheuses")[
        "items"
    ]
    spec = prometheus["spec"]
    assert (spec["retention"], spec["retentionSize"]) == ("30d", "8GB")
    assert spec["storage"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert spec["serviceMonitorSelector"] == {} and spec["podMonitorSelector"] == {}  # every ServiceMonitor
    assert not custom.list_namespaced_custom_object("monitoring.coreos.com", "v1", "monitoring", "alertmanagers")[
        "items"
    ]
    grafana = client.AppsV1Api(api).read_namespaced_deployment("monitoring-grafana", "monitoring")
    env = {e.name: e for c in grafana.spec.template.spec.containers for e in (c.env or [])}
    assert env["GF_SECURITY_ADMIN_PASSWORD"].value_from.secret_key_ref.name == monitoring.ADMIN_SECRET
    sidecar = [c for c in grafana.spec.template.spec.containers if c.name == "grafana-sc-dashboard"]
    sidecar_env = {e.name: e.value for e in sidecar[0].env}
    assert sidecar_env["LABEL"] == "grafana_dashboard" and sidecar_env["LABEL_VALUE"] == "1"
    # the password is in no Secret of the release, no values, no manifest
    for item in core.list_namespaced_secret("monitoring").items:
        if item.metadata.name == monitoring.ADMIN_SECRET:
            continue
        for blob in (item.data or {}).values():
            assert password not in _decoded(blob), item.metadata.name

    with pytest.raises(RunError) as missing:
        query_range(ProxyPrometheus(kubeconfig), "up", time.time() - 3600, time.time(), 60)
    assert "HTTP 404" in missing.value.one_line() and "prometheus-operated" in missing.value.one_line()
    RESULTS.append(
        f"prepare_monitoring x2 {prepared:.1f} s; kube-prometheus-stack installed in {installed:.0f} s, "
        f"re-run {again.action}; report via proxy: {missing.value.problem}"
    )
    print("[monitoring-real] " + "; ".join(RESULTS))


def _decoded(blob: str) -> str:
    """A Secret value as text; Helm's release Secrets hold base64(gzip(JSON))."""
    import gzip

    raw = base64.b64decode(blob)
    try:
        raw = base64.b64decode(raw)
        raw = gzip.decompress(raw)
    except (ValueError, OSError):
        pass
    return raw.decode(errors="replace")
