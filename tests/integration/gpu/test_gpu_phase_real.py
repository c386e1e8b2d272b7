"""The gpu phase's own code against a real kube-apiserver, scheduler and controller-manager, the real helm and the
real charts at the locked versions (outside CI; see tests/gpustack/README.md). For every hardware case with GPUs:
every release installs with the rendered values, the ClusterPolicy carries the plan's settings, the sharing
ConfigMap and node labels are on the API, a re-run changes nothing, and on Node objects registered with the
capacity the plan says the device plugin advertises the real scheduler binds exactly that many share-requesting
pods and leaves the next one Pending with "Insufficient ..."."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from affordml.errors import RunError
from affordml.phases.workflow import PhaseContext
from affordml.plan.sharing import node_resources
from tests.cases import GOLDEN, load_cases, phase_context, printing

NODE_BASE = {"cpu": "64", "memory": "256Gi", "pods": "250"}
RESULTS: list[str] = []
CASES = {name: case for name, case in load_cases().items() if (GOLDEN / name / "gpu").is_dir()}


def make_context(case: dict, root: Path, kubeconfig_text: str, lines: list[str]) -> PhaseContext:
    return phase_context(case, root, kubeconfig_text, printing(lines))


def register_nodes(cp, plan) -> dict[str, dict[str, int]]:
    """Every VM as a Node, GPU nodes with what the plan says their device plugin advertises."""
    advertised = {}
    for vm in plan.vms:
        resources = node_resources([g.sharing for g in plan.gpus if g.vm == vm.name])
        advertised[vm.name] = resources
        capacity = {**NODE_BASE, **{k: str(v) for k, v in resources.items()}}
        labels = {"kubernetes.io/hostname": vm.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
        if vm.role == "control-plane":
            labels["node-role.kubernetes.io/control-plane"] = ""
        cp.register_node(vm.name, capacity=capacity, labels=labels)
        untaint(cp, vm.name)
    return advertised


def untaint(cp, node: str) -> None:
    """The API server taints a new Node not-ready; a kubelet would clear it once Ready, so the test does (the
    labels above are those a kubelet sets on itself)."""
    from kubernetes import client

    client.CoreV1Api(cp.client()).patch_node(node, {"spec": {"taints": []}})


def create_runtime_class(api) -> None:
    from kubernetes import client

    body = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"}, "handler": "nvidia"}
    client.NodeV1Api(api).create_runtime_class(body)


def custom(api, plural: str, name: str) -> dict:
    from kubernetes import client

    return client.CustomObjectsApi(api).get_cluster_custom_object("nvidia.com", "v1", plural, name)


def share_pods(api, node: str, resource: str, count: int, timeout_s: float = 60) -> tuple[int, str]:
    """count pods each requesting one `resource`; returns (bound, the message of one left Pending)."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    safe = resource.split("/")[-1].replace(".", "-").lower()
    for i in range(count):
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"share-{node}-{safe}-{i}",
                "namespace": "default",
                "labels": {"share": f"{node}-{safe}"},
            },
            "spec": {
                "nodeSelector": {"kubernetes.io/hostname": node},
                "containers": [
                    {"name": "job", "image": "example.invalid/job", "resources": {"limits": {resource: "1"}}}
                ],
            },
        }
        core.create_namespaced_pod("default", body)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod("default", label_selector=f"share={node}-{safe}").items
        bound = [p for p in pods if p.spec.node_name]
        pending = [
            c.message
            for p in pods
            if not p.spec.node_name
            for c in (p.status.conditions or [])
            if c.type == "PodScheduled" and c.status == "False" and c.message
        ]
        if len(bound) + len(pending) == count:
            return len(bound), pending[0] if pending else ""
        time.sleep(0.5)
    raise AssertionError(f"{resource}: the scheduler did not decide on {count} pods within {timeout_s} s")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_gpu_phase_installs_and_the_scheduler_counts_the_planned_shares(name, control_plane_factory, fetch, tmp_path):
    from kubernetes import client

    from affordml.gpu.phase import planned_releases, run_gpu_phase
    from tests.gpustack.kubelet import StandInKubelet

    cp = control_plane_factory()
    lines: list[str] = []
    ctx = make_context(CASES[name], tmp_path / "project", cp.admin_kubeconfig(), lines)
    plan = ctx.plan
    advertised = register_nodes(cp, plan)
    api = cp.client()
    modes = {g.sharing.mode for g in plan.gpus}
    with StandInKubelet(api):
        if "hami" in modes:  # what the operator does once its toolkit runs on the GPU node; no operator runs here
            threading.Timer(5, create_runtime_class, args=(api,)).start()
        started = time.monotonic()
        run_gpu_phase(ctx, fetch)
        first = time.monotonic() - started
        first_actions = [r["action"] for r in ctx.state.data["gpu"]["releases"]]
        started = time.monotonic()
        run_gpu_phase(ctx, fetch)
        again = time.monotonic() - started
    releases = [r.name for r in planned_releases(plan)]
    assert [r["name"] for r in ctx.state.data["gpu"]["releases"]] == releases
    assert first_actions == ["installed"] * len(releases), lines
    assert [r["action"] for r in ctx.state.data["gpu"]["releases"]] == ["unchanged"] * len(releases), lines

    # the ClusterPolicy the chart made from the rendered values carries the plan's settings
    policy = custom(api, "clusterpolicies", "cluster-policy")["spec"]
    assert policy["devicePlugin"]["config"] == {"name": "affordml-device-plugin-config", "default": "default"}
    assert policy["migManager"]["enabled"] is ("mig" in modes)
    assert policy["mig"]["strategy"] == "mixed"
    assert policy["driver"]["enabled"] is True and policy["driver"]["version"] == ctx.lock["nvidia_driver"]["version"]
    assert policy["dcgmExporter"]["serviceMonitor"]["enabled"] is bool(plan.ml["monitoring"])
    assert policy["operator"]["runtimeClass"] == "nvidia"

    core = client.CoreV1Api(api)
    rendered = yaml.safe_load((ctx.project.env_dir / "gpu" / "device-plugin-config.yaml").read_text())
    live = core.read_namespaced_config_map("affordml-device-plugin-config", "gpu-operator")
    assert live.data == rendered["data"]
    labels = yaml.safe_load((ctx.project.env_dir / "gpu" / "node-labels.yaml").read_text())
    for node, wanted in labels.items():
        have = core.read_node(node).metadata.labels
        assert {k: have.get(k) for k in wanted} == wanted
        assert wanted["nvidia.com/device-plugin.config"] in live.data  # the label selects an existing config

    if plan.ml["monitoring"]:  # the ServiceMonitor CRD was Established before the operator's ClusterPolicy existed
        crd = client.ApiextensionsV1Api(api).read_custom_resource_definition("servicemonitors.monitoring.coreos.com")
        assert any(c.type == "Established" and c.status == "True" for c in crd.status.conditions)
        cp_meta = custom(api, "clusterpolicies", "cluster-policy")["metadata"]
        assert crd.metadata.creation_timestamp.isoformat().replace("+00:00", "Z") <= cp_meta["creationTimestamp"]
        if "hami" in modes:  # HAMi's chart makes its ServiceMonitors only when the CRD is there
            monitors = client.CustomObjectsApi(api).list_namespaced_custom_object(
                "monitoring.coreos.com", "v1", "kube-system", "servicemonitors"
            )["items"]
            assert {m["spec"]["endpoints"][0]["port"] for m in monitors} == {"monitor", "monitorport"}
    if "hami" in modes:  # HAMi's device plugin and the pods it schedules run under the operator's RuntimeClass
        daemonsets = client.AppsV1Api(api).list_namespaced_daemon_set("kube-system").items
        plugin = [d for d in daemonsets if "device-plugin" in d.metadata.name]
        assert plugin and all(d.spec.template.spec.runtime_class_name == "nvidia" for d in plugin)
        device_cm = [c for c in core.list_namespaced_config_map("kube-system").items if "device" in c.metadata.name]
        assert any('runtimeClassName: "nvidia"' in (c.data or {}).get("device-config.yaml", "") for c in device_cm)
        pods = core.list_namespaced_pod("kube-system").items  # the API admitted the plugin's pod on the GPU node
        assert [p.spec.runtime_class_name for p in pods if p.metadata.name.startswith("hami-device-plugin")] == [
            "nvidia"
        ]
        assert any("RuntimeClass nvidia is there" in line for line in lines)

    figures = []
    with StandInKubelet(api):
        for node, resources in advertised.items():
            for resource, count in resources.items():
                bound, message = share_pods(api, node, resource, count + 1)
                assert bound == count, (resource, bound, count)
                assert f"Insufficient {resource}" in message, message
                figures.append(f"{resource}={count}: {bound} bound, #{count + 1} Pending ({message})")
    RESULTS.append(f"| {name} | {' '.join(f'{r} installed' for r in releases)} | {first:.1f} s | {again:.1f} s | "
                   f"{'; '.join(figures)} |")  # fmt: skip
    print(RESULTS[-1])


@pytest.mark.slow
def test_failed_release_rolls_back_with_the_apis_reason_and_a_bad_value_is_refused(
    control_plane_factory, fetch, tmp_path
):

    from affordml.gpu.phase import chart_for, make_driver, remove_gpu_releases, run_gpu_phase
    from affordml.gpu.releases import GPU_OPERATOR
    from tests.gpustack.kubelet import StandInKubelet

    cp = control_plane_factory()
    lines: list[str] = []
    ctx = make_context({"fixture": "desktop-rtx4090"}, tmp_path / "project", cp.admin_kubeconfig(), lines)
    register_nodes(cp, ctx.plan)
    api = cp.client()
    with StandInKubelet(api):
        run_gpu_phase(ctx, fetch)
        driver = make_driver(ctx, fetch)
        chart, archive = chart_for(GPU_OPERATOR, fetch, ctx.project.root / "cache" / "helm")
        values = [ctx.project.env_dir / v for v in GPU_OPERATOR.values]

        greedy = tmp_path / "greedy.yaml"  # the operator asks for more GPUs than any node has
        greedy.write_text(yaml.safe_dump({"operator": {"resources": {"limits": {"nvidia.com/gpu": 64}}}}))
        quick = replace(GPU_OPERATOR, timeout_s=20)
        with pytest.raises(RunError) as failed:
            driver.ensure(quick, chart, [*values, greedy], archive)
        line = failed.value.one_line()
        print(f"failed upgrade: {line}")
        assert line.startswith("release gpu-operator (namespace gpu-operator) failed: pod gpu-operator-")
        assert "Insufficient nvidia.com/gpu" in line and "rolled back to revision 1" in line
        assert "fix: the GPU nodes advertise fewer GPU shares" in line
        history = driver.history(GPU_OPERATOR)
        assert [(h["revision"], h["status"]) for h in history][-1] == (3, "deployed")
        assert driver.deployed_values(GPU_OPERATOR)["operator"].get("resources") is None

        bogus = tmp_path / "bogus.yaml"  # a value the ClusterPolicy CRD's schema refuses
        bogus.write_text(yaml.safe_dump({"mig": {"strategy": "many"}}))
        with pytest.raises(RunError) as refused:
            driver.ensure(quick, chart, [*values, bogus], archive)
        line = refused.value.one_line()
        print(f"refused value: {line}")
        assert 'spec.mig.strategy: Unsupported value: "many"' in line and "rolled back to revision" in line
        assert "fix: the API refused a value rendered into env/" in line
        policy = custom(api, "clusterpolicies", "cluster-policy")["spec"]
        assert policy["mig"]["strategy"] == "mixed"

        started = time.monotonic()
        removed = remove_gpu_releases(ctx, fetch)
        print(f"destroy: {removed} in {time.monotonic() - started:.1f} s")
    assert removed == ["gpu-operator"]  # hami was never installed
    assert driver.history(GPU_OPERATOR) == []
