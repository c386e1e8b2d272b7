"""The node wait and `affordml status` against a real kube-apiserver (tests/kubecp, outside CI) with Node
objects registered without a kubelet: the wait follows a node turning Ready, is bounded when one never does, and
status shows every node's readiness, roles, kubelet version and GPU capacity through the admin kubeconfig."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from affordml.errors import RunError
from affordml.kube import nodes
from affordml.kube.kubeconfig import kubeconfig_path
from affordml.project import Project
from affordml.secrets import secure_dir, write_private
from affordml.status import project_status
from tests.integration.hosts.affordml_project import affordml_command, affordml_env

NAMES = ["cp-1", "worker-1", "worker-2"]


@pytest.fixture
def cluster(control_plane_factory, tmp_path):
    """A real control plane with the platform's three nodes; worker-2 registers NotReady; a project whose
    secrets/kubeconfig reaches the API through the forwarder on 127.0.0.1."""
    cp = control_plane_factory()
    print(f"control plane {cp.server_version()} ready in {cp.ready_after_s:.1f}s")
    cp.register_node("cp-1", labels={"node-role.kubernetes.io/control-plane": ""})
    cp.register_node("worker-1", capacity={"nvidia.com/gpu": "4"}, labels={"affordml.io/gpu": "true"})
    cp.register_node("worker-2", ready=False)
    project = Project(tmp_path / "project")
    secure_dir(project.secrets_dir)
    write_private(kubeconfig_path(project.secrets_dir), cp.admin_kubeconfig())
    return cp, project


def test_node_wait_follows_a_node_becoming_ready(cluster):
    cp, project = cluster
    api = nodes.Cluster(kubeconfig_path(project.secrets_dir))
    said: list[str] = []
    timer = threading.Timer(4, cp.set_ready, args=("worker-2", True))
    timer.start()
    started = time.monotonic()
    try:
        rows = nodes.wait_ready(api.nodes, NAMES, said.append, timeout_s=60, poll_s=1)
    finally:
        timer.cancel()
        api.close()
    took = time.monotonic() - started
    print("\n".join(said))
    assert 3 <= took < 30
    assert "Ready 2/3, waiting for worker-2" in said[0]
    assert said[-1].startswith("[kubernetes] all 3 node(s) Ready")
    assert {r.name: r.gpus for r in rows}["worker-1"] == {"nvidia.com/gpu": "4"}


def test_node_wait_is_bounded_against_the_real_api(cluster):
    _, project = cluster
    api = nodes.Cluster(kubeconfig_path(project.secrets_dir))
    try:
        with pytest.raises(RunError) as info:
            nodes.wait_ready(api.nodes, [*NAMES, "worker-3"], print, timeout_s=4, poll_s=1)
    finally:
        api.close()
    line = info.value.one_line()
    assert "worker-2, worker-3 not Ready after 4s (not registered: worker-3)" in line and "fix:" in line


def test_status_shows_nodes_versions_and_gpus(cluster):
    cp, project = cluster
    version = cp.server_version()
    data = project_status(project, query_cloud=True)["kubernetes"]
    assert data["source"] == "api" and data["server"] == version
    by_name = {n["name"]: n for n in data["nodes"]}
    assert by_name["worker-1"] == {
        "name": "worker-1", "ready": True, "roles": [], "kubelet": version, "gpus": {"nvidia.com/gpu": "4"},
    }  # fmt: skip
    assert by_name["cp-1"]["roles"] == ["control-plane"] and by_name["worker-2"]["ready"] is False
    done = subprocess.run(
        [*affordml_command(), "-p", str(project.root), "status"], capture_output=True, text=True,
        env=affordml_env(), timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    print(done.stdout)
    assert f"kubernetes (from the API, server {version}):" in done.stdout
    assert f"  worker-1  Ready  -  {version}  nvidia.com/gpu=4" in done.stdout
    assert f"  worker-2  NotReady  -  {version}  no GPU" in done.stdout
    assert cp.token not in done.stdout


def test_status_falls_back_to_the_record_when_the_api_is_gone(cluster):
    cp, project = cluster
    cp.stop()
    data = project_status(project, query_cloud=True)["kubernetes"]
    assert data["source"] == "state" and data["api_error"]


def test_the_fixtures_scheduler_places_pods_by_gpu_capacity(cluster):
    """What the gpu and ml phases' tests will rely on: the real scheduler binds by the registered capacity."""
    from kubernetes import client

    cp, _ = cluster
    assert all(cp.alive().values()), cp.alive()
    core = client.CoreV1Api(cp.client())
    core.create_namespace({"metadata": {"name": "gpu-test"}})
    gpu = {"limits": {"nvidia.com/gpu": "3"}}
    for name in ("first", "second"):
        pod = {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "x", "resources": gpu}]}}
        core.create_namespaced_pod("gpu-test", pod, _request_timeout=10)
    deadline, pods = time.monotonic() + 60, {}
    while time.monotonic() < deadline:
        pods = {p.metadata.name: p for p in core.list_namespaced_pod("gpu-test").items}
        if pods["first"].spec.node_name and (pods["second"].status.conditions or []):
            break
        time.sleep(1)
    assert pods["first"].spec.node_name == "worker-1"
    assert pods["second"].spec.node_name is None
    assert "Insufficient nvidia.com/gpu" in pods["second"].status.conditions[0].message
