"""Monitoring as code: the GPU shares dashboard and the report's PromQL use only metrics and labels the exporters
emit (as Prometheus stores them through their ServiceMonitors), the objects prepare_monitoring sends are valid
Kubernetes objects, and the rendered values name the Secret and the dashboard label those objects carry.

The emitted names, from upstream at the locked versions (checked against the sources when
AFFORDML_DCGM_EXPORTER_GIT / AFFORDML_HAMI_GIT name bare git mirrors of NVIDIA/dcgm-exporter and Project-HAMi/HAMi):
- dcgm-exporter: the GPU Operator v26.7.0 runs it with DCGM_EXPORTER_COLLECTORS=/etc/dcgm-exporter/
  dcp-metrics-included.csv (assets/state-dcgm-exporter/0800_daemonset.yaml); that file's fields at tag
  4.5.3-4.8.2; labels from internal/pkg/rendermetrics/render_metrics.go and transformation/const.go.
- HAMi v2.10.0: cmd/scheduler/metrics.go and cmd/vGPUmonitor/metrics.go (legacyMetrics off, the chart's default).
Through a ServiceMonitor (honorLabels false) an exporter's namespace/pod/container become exported_*, and the
target's labels (namespace, pod, container, service, endpoint, job, instance) are added."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from affordml.ml import monitoring
from affordml.report.queries import QUERIES

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "templates" / "ml" / "grafana-gpu-shares-dashboard.json"
TARGET_LABELS = {"namespace", "pod", "container", "service", "endpoint", "job", "instance"}
DCGM_FIELDS = {  # etc/dcp-metrics-included.csv at 4.5.3-4.8.2 (the ones this project reads or may chart)
    "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_DEC_UTIL",
    "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_RESERVED",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_PROF_DRAM_ACTIVE",
}  # fmt: skip
DCGM_LABELS = {"gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION"}
DCGM_MIG_LABELS = {"GPU_I_PROFILE", "GPU_I_ID"}  # on a MIG slice's samples only
DCGM_POD_LABELS = {"namespace", "pod", "container"}  # transformation/const.go podAttribute, ...
HAMI_METRICS = {  # name -> its own labels
    "hami_gpu_memory_limit_bytes": {"node", "device_uuid", "device_index", "device_type"},
    "hami_gpu_core_limit_ratio": {"node", "device_uuid", "device_index", "device_type"},
    "hami_gpu_memory_allocated_bytes": {"node", "device_uuid", "device_index", "device_cores", "device_type"},
    "hami_gpu_shared_count": {"node", "device_uuid", "device_index", "device_type"},
    "hami_gpu_core_allocated_ratio": {"node", "device_uuid", "device_index", "device_type"},
    "hami_node_gpu_memory_allocated_ratio": {"node", "device_uuid", "device_index", "device_type"},
    "hami_vgpu_memory_allocated_bytes": {"namespace", "node", "pod", "container_index", "device_uuid"},
    "hami_vgpu_core_allocated_ratio": {"namespace", "node", "pod", "container_index", "device_uuid"},
    "hami_host_gpu_memory_used_bytes": {"node", "device_index", "device_uuid", "device_type"},
    "hami_host_gpu_utilization_ratio": {"node", "device_index", "device_uuid", "device_type"},
    "hami_vgpu_memory_used_bytes": {"namespace", "pod", "container", "vdevice_index", "device_uuid"},
    "hami_vgpu_memory_limit_bytes": {"namespace", "pod", "container", "vdevice_index", "device_uuid"},
    "hami_container_device_utilization_ratio": {"namespace", "pod", "container", "vdevice_index", "device_uuid"},
}
PROMQL_WORDS = set(
    [
        "sum",
        "max",
        "min",
        "avg",
        "count",
        "by",
        "without",
        "rate",
        "irate",
        "increase",
        "and",
        "or",
        "unless",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "topk",
        "bottomk",
    ]
)


def stored_labels(own: set[str]) -> set[str]:
    """The labels a series has in Prometheus after a ServiceMonitor scrape with honorLabels false."""
    return (own - TARGET_LABELS) | {f"exported_{name}" for name in own & TARGET_LABELS} | TARGET_LABELS


STORED = {name: stored_labels(DCGM_LABELS | DCGM_MIG_LABELS | DCGM_POD_LABELS) for name in DCGM_FIELDS}
STORED.update({name: stored_labels(labels) for name, labels in HAMI_METRICS.items()})


def parse(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) a PromQL expression uses: matchers in {...} and by/without (...) lists."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    labels = set()
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    for grouping in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", text):
        labels |= {name.strip() for name in grouping.split(",") if name.strip()}
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(?:by|without)\s*\([^)]*\)", "", text)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text)) - PROMQL_WORDS
    return names, labels


def dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def check_expr(expr: str) -> list[str]:
    metrics, labels = parse(expr)
    problems = [f"{name}: no exporter emits it" for name in sorted(metrics - set(STORED))]
    if not metrics:
        problems.append("uses no metric")
    for label in sorted(labels):
        if not any(label in STORED[m] for m in metrics if m in STORED):
            problems.append(f"label {label}: not on {', '.join(sorted(metrics))} as stored")
    return problems


def test_dashboard_is_a_grafana_dashboard_on_the_stacks_datasource():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "affordml-gpu-shares" and dashboard["schemaVersion"] >= 36
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 8 and len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    # kube-prometheus-stack's Grafana provisions its Prometheus datasource with uid `prometheus`
    assert all(p["datasource"] == {"type": "prometheus", "uid": "prometheus"} for p in panels)
    titles = " ".join(p["title"] for p in panels)
    assert "per GPU" in titles and "by namespace" in titles and "HAMi" in titles


@pytest.mark.parametrize(("title", "expr"), dashboard_exprs())
def test_every_dashboard_query_uses_emitted_metrics_and_labels(title, expr):
    assert not check_expr(expr), f"{title}: {expr}"


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_report_query_uses_emitted_metrics_and_labels(name):
    assert not check_expr(QUERIES[name]), QUERIES[name]


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("sum by (namespace_name) (DCGM_FI_DEV_GPU_UTIL)", "label namespace_name"),
        ('DCGM_FI_DEV_GPU_UTILIZATION{gpu="0"}', "DCGM_FI_DEV_GPU_UTILIZATION: no exporter emits it"),
        ("sum by (exported_namespace) (vGPUMemoryAllocated)", "vGPUMemoryAllocated"),  # HAMi's legacy name
        ("sum by (exported_namespace) (hami_gpu_shared_count)", "label exported_namespace"),
    ],
)
def test_the_check_catches_wrong_names(expr, problem):
    assert any(problem in p for p in check_expr(expr))


def _git_show(env: str, rev_path: str) -> str:
    git_dir = os.environ.get(env)
    if not git_dir:
        pytest.skip(f"set {env} to a bare git mirror to check the names against the upstream source")
    return subprocess.run(
        ["git", "--git-dir", git_dir, "show", rev_path], capture_output=True, text=True, check=True
    ).stdout


def test_dcgm_names_match_upstream():
    fields = _git_show("AFFORDML_DCGM_EXPORTER_GIT", "4.5.3-4.8.2:etc/dcp-metrics-included.csv")
    upstream = {line.split(",")[0].strip() for line in fields.splitlines() if line.startswith("DCGM_")}
    assert upstream >= DCGM_FIELDS
    const = _git_show("AFFORDML_DCGM_EXPORTER_GIT", "4.5.3-4.8.2:internal/pkg/transformation/const.go")
    for label in DCGM_POD_LABELS:
        assert re.search(rf'\b(pod|namespace|container)Attribute\s*=\s*"{label}"', const), label


def test_hami_names_match_upstream():
    source = _git_show("AFFORDML_HAMI_GIT", "v2.10.0:cmd/scheduler/metrics.go") + _git_show(
        "AFFORDML_HAMI_GIT", "v2.10.0:cmd/vGPUmonitor/metrics.go"
    )
    for name, labels in HAMI_METRICS.items():
        match = re.search(rf'"{name}",\s*"[^"]*",\s*\[\]string\{{([^}}]*)\}}', source)
        assert match, name
        assert set(re.findall(r'"([^"]+)"', match.group(1))) == labels, name


def _validate(obj: dict) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(obj, "1.33", strict=True)


def test_admin_secret_is_a_valid_secret_with_the_password():
    secret = monitoring.admin_secret("s3cr3t-\"'$(x)")
    _validate(secret)
    assert secret["metadata"] == {
        "name": "affordml-grafana-admin",
        "namespace": "monitoring",
        "labels": {"app.kubernetes.io/managed-by": "affordml"},
    }
    assert base64.b64decode(secret["data"]["admin-password"]).decode() == "s3cr3t-\"'$(x)"
    assert base64.b64decode(secret["data"]["admin-user"]).decode() == "admin"


def test_dashboard_configmap_carries_the_sidecar_label_and_the_file():
    text = monitoring.read_dashboard()
    configmap = monitoring.dashboard_configmap(text)
    _validate(configmap)
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["data"] == {"grafana-gpu-shares-dashboard.json": DASHBOARD.read_text()}
    assert len(json.dumps(configmap)) < 1024 * 1024  # a ConfigMap holds at most 1 MiB


@pytest.mark.parametrize("broken", ["{", "[]", '{"title": "no uid"}'])
def test_a_damaged_dashboard_is_one_line(tmp_path, broken):
    from affordml.errors import RunError

    path = tmp_path / "d.json"
    path.write_text(broken)
    with pytest.raises(RunError) as damaged:
        monitoring.read_dashboard(path)
    assert str(path) in damaged.value.one_line() and "reinstall affordml" in damaged.value.one_line()


def _rendered_values(case: str = "desktop-rtx4090") -> dict:
    return yaml.safe_load((REPO / "tests" / "golden" / case / "ml" / "kube-prometheus-stack-values.yaml").read_text())


def test_values_name_what_prepare_monitoring_makes():
    grafana = _rendered_values()["grafana"]
    assert grafana["admin"] == {"existingSecret": monitoring.ADMIN_SECRET, "userKey": "admin-user",
                                "passwordKey": "admin-password"}  # fmt: skip
    dashboards = grafana["sidecar"]["dashboards"]
    assert (dashboards["label"], dashboards["labelValue"]) == monitoring.DASHBOARD_LABEL and dashboards["enabled"]
    assert "adminPassword" not in grafana


def test_values_are_sized_for_one_pc_and_scrape_every_monitor():
    values = _rendered_values()
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "30d" and spec["retentionSize"] == "8GB"
    size = spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"]
    assert int(size.removesuffix("Gi")) > 8  # the size cap (8 GB) fits in the volume
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False
    assert spec["podMonitorSelectorNilUsesHelmValues"] is False
    assert values["crds"]["enabled"] is False and values["alertmanager"]["enabled"] is False


def test_hami_service_monitors_follow_monitoring():
    on = yaml.safe_load((REPO / "tests/golden/workstation-2gpu--hami-one-worker/gpu/hami-values.yaml").read_text())
    assert on["prometheus"] == {"enabled": True}


class _Ctx:
    def __init__(self, monitoring_on: bool) -> None:
        from types import SimpleNamespace

        self.plan = SimpleNamespace(ml={"monitoring": monitoring_on})
        self.lines: list[str] = []
        self.say = self.lines.append


def test_prepare_monitoring_does_nothing_when_monitoring_is_off(tmp_path):
    ctx = _Ctx(False)
    monitoring.prepare_monitoring(ctx, tmp_path / "no-kubeconfig")
    assert ctx.lines == []


def test_grafana_password_is_generated_once_into_a_private_file(tmp_path):
    from affordml.project import Project

    project = Project(tmp_path / "p")
    project.root.mkdir(mode=0o700)
    first = monitoring.grafana_password(project)
    assert len(first) >= 32 and monitoring.grafana_password(project) == first
    path = project.secrets_dir / "platform.yml"
    assert (path.stat().st_mode & 0o777) == 0o600 and first in path.read_text()
