"""The cluster bench's objects against a real kube-apiserver, job controller and scheduler (tests/kubecp, outside
CI; run under `flock /tmp/affordml-kubecp.lock`): the API accepts the worker ConfigMap (created, then replaced) and
the Jobs rendered from the plan; the job controller makes one pod per Job; the real scheduler binds them to the GPU
node by the share each asks for, as many as the node advertises, and leaves the next Pending; deleting the run
removes its Jobs and marks their pods for deletion. Pods do not run here (no kubelet): reading results from the
pods' logs is tested in the unit tests."""

from __future__ import annotations

import time
from pathlib import Path

from affordml.bench import cluster
from affordml.bench.workloads import WORKLOADS
from affordml.config.model import Config
from affordml.facts.parse import facts_from_snapshot
from affordml.facts.sources import load_snapshot_file
from affordml.plan.build import make_plan
from affordml.plan.sharing import node_resources
from affordml.versions import load_lock, version_table

EXAMPLES = Path(__file__).resolve().parents[3] / "inventories" / "examples"


def _wait(check, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"not reached in {timeout_s} s")


def test_bench_jobs_are_accepted_scheduled_by_share_and_removed(control_plane_factory, tmp_path):
    from kubernetes import client

    cp = control_plane_factory()
    plan = make_plan(
        facts_from_snapshot(load_snapshot_file(EXAMPLES / "desktop-rtx4090.json")),
        Config.model_validate({}),
        version_table(load_lock()),
    )
    (target,) = cluster.targets(plan)
    assert (target.mode, target.shares) == ("mps", 5)
    gpu = plan.gpus[0]
    capacity = {k: str(v) for k, v in node_resources([gpu.sharing]).items()}
    cp.register_node(target.node, capacity=capacity, labels={"kubernetes.io/hostname": target.node})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(cp.admin_kubeconfig())
    kubeconfig.chmod(0o600)
    core = client.CoreV1Api(cp.client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=cluster.NAMESPACE)))

    api = cluster.ClusterJobs(kubeconfig)
    api.put_configmap(cluster.worker_configmap())
    api.put_configmap(cluster.worker_configmap())  # a second run replaces it
    live = core.read_namespaced_config_map(cluster.WORKER_CONFIGMAP, cluster.NAMESPACE)
    assert live.data["worker.py"] == cluster.WORKER.read_text()

    started = time.monotonic()
    spec = WORKLOADS["mlp"].spec("cuda", 5.0)
    jobs = cluster.render_run("777", target, 6, spec, None, "registry.example/pytorch:1", time.time() + 300, True)
    api.create(jobs)
    pods = _wait(lambda: (p := api.pods("777")) and len(p) == 6 and all(x.status.conditions for x in p) and p)
    bound = [p for p in pods if p.spec.node_name == target.node]
    pending = [p for p in pods if not p.spec.node_name]
    assert len(bound) == 5 and len(pending) == 1
    reason = next(c.message for c in pending[0].status.conditions if c.type == "PodScheduled")
    assert "Insufficient nvidia.com/gpu" in reason
    scheduled_in = time.monotonic() - started
    assert {p.metadata.labels["job-name"] for p in pods} == {j["metadata"]["name"] for j in jobs}

    api.delete_run("777")
    _wait(lambda: not client.BatchV1Api(cp.client()).list_namespaced_job(cluster.NAMESPACE).items)
    # the garbage collector deletes the Jobs' pods: the unbound one goes at once, the bound ones stay Terminating
    # until their kubelet confirms (none here)
    left = _wait(lambda: (p := api.pods("777")) is not None and all(x.metadata.deletion_timestamp for x in p) and [p])[
        0
    ]
    assert {p.spec.node_name for p in left} <= {target.node}
    print(f"6 bench Jobs: 5 bound to {target.node}, 1 Pending, in {scheduled_in:.1f} s; removed")
