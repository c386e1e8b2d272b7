"""`affordml report` the way users run it, with no --prometheus: through the real kube-apiserver's service proxy
(monitoring/prometheus-operated:9090, the project's secrets/kubeconfig) to a real Prometheus holding a backfilled
week of dcgm-exporter samples. Prometheus listens inside the control plane's network namespace on a second
address there, 10.250.0.9 (the API server does not proxy to 127.0.0.0/8). The Service has no selector; its
Endpoints name that address and a Pod object holding it (no kubelet runs it), as the operator's Service names the
Prometheus pod. Outside CI (tests/kubecp)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.kubecp.fixtures import control_plane_factory  # noqa: F401 - fixture
from tests.promreal import dcgm_week, server

REPO = Path(__file__).resolve().parents[3]
ADDRESS = "10.250.0.9"  # inside the control plane's own network namespace only


def _serve_in_netns(netns: str) -> None:
    """A second address on the namespace's loopback device (no dummy interfaces in this kernel): the API server
    checks the address it proxies to, not the device."""
    subprocess.run(["ip", "-n", netns, "addr", "add", f"{ADDRESS}/32", "dev", "lo"], check=True, timeout=10)


def _service_and_endpoints(api) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "monitoring"}})
    core.create_namespaced_service(
        "monitoring",
        {
            "metadata": {"name": "prometheus-operated"},
            "spec": {"clusterIP": "None", "ports": [{"name": "http-web", "port": 9090, "targetPort": 9090}]},
        },
    )
    # the API server proxies only to an Endpoints address whose targetRef is a Pod with that IP (isValidAddress)
    pod = "prometheus-monitoring-0"
    container = {"name": "prometheus", "image": "example.invalid/prometheus"}
    core.create_namespaced_pod("monitoring", {"metadata": {"name": pod}, "spec": {"containers": [container]}})
    status = {"status": {"phase": "Running", "podIP": ADDRESS, "podIPs": [{"ip": ADDRESS}]}}
    core.patch_namespaced_pod_status(pod, "monitoring", status)
    address = {"ip": ADDRESS, "targetRef": {"kind": "Pod", "namespace": "monitoring", "name": pod}}
    core.create_namespaced_endpoints(
        "monitoring",
        {
            "metadata": {"name": "prometheus-operated"},
            "subsets": [{"addresses": [address], "ports": [{"name": "http-web", "port": 9090}]}],
        },
    )


def affordml(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TZ": "UTC"}
    return subprocess.run(
        [sys.executable, "-m", "affordml", "-p", str(project), "report", *args],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


@pytest.mark.slow
def test_report_through_the_api_server_service_proxy(control_plane_factory, tmp_path):  # noqa: F811
    found = server.binaries()
    if isinstance(found, str):
        pytest.skip(found)
    prometheus, promtool = found
    cp = control_plane_factory()
    end = int(time.time()) // 60 * 60
    source = tmp_path / "week.om"
    source.write_text(dcgm_week.openmetrics(end - 7 * 86400 - 3600, end))
    server.backfill(promtool, source, tmp_path / "data")
    _serve_in_netns(cp.netns)
    _service_and_endpoints(cp.client())
    project = tmp_path / "project"
    (project / "secrets").mkdir(parents=True, mode=0o700)
    (project / "secrets" / "kubeconfig").write_text(cp.admin_kubeconfig())
    (project / "secrets" / "kubeconfig").chmod(0o600)

    config = "global: {scrape_interval: 1m}\n"
    with server.running(prometheus, tmp_path / "data", config, tmp_path / "prometheus.log", cp.netns, ADDRESS):
        deadline = time.monotonic() + 60
        while True:  # Prometheus loads the blocks, and the Endpoints reach the proxy
            started = time.monotonic()
            done = affordml(project, "--since", "7d", "--json")
            took = time.monotonic() - started
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    owners = {row["owner"]: row for row in report["owners"]}
    assert set(owners) == {"ml", "alice (jupyterhub)"} and report["gpus"] == 2
    assert owners["ml"]["mean_util_pct"] == 80.0 and owners["alice (jupyterhub)"]["peak_memory_mib"] == 12000.0
    print(f"[report-via-apiserver] report --since 7d through the service proxy: {took:.1f} s, "
          f"ml {owners['ml']['gpu_hours']} GPU-hours")  # fmt: skip

    # Prometheus gone, the Service still there: one line naming the proxy's answer
    gone = affordml(project, "--since", "1h")
    assert gone.returncode == 6 and len(gone.stderr.strip().splitlines()) == 1, gone.stderr
    assert "through the Kubernetes API) is unreachable" in gone.stderr and "Traceback" not in gone.stderr
    print(f"[report-via-apiserver] without Prometheus: {gone.stderr.strip()[:200]}")
