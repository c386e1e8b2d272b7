"""The verify checks' own code against a real kube-apiserver v1.36.2, kube-scheduler and kube-controller-manager
(tests/kubecp, outside CI) with the Kueue v0.19.2 and KServe v0.20.0 CRDs at the locked tags.

Nodes are registered with the capacities the plan says their device plugin advertises and the gpu phase's labels;
the checks create their pods and Job themselves and the real scheduler binds them (or leaves them Pending with its
own message); the real Job controller runs the Job once admitted. No kubelet, Kueue or KServe controller can run
here, so the test plays them for the checks' objects (tests/integration/verify/actors.py): it reports each bound
pod's status, with the probe's output as the termination message a kubelet would write (the nvidia-smi text is
the test's, no GPU is involved), unsuspends the queued Job as Kueue does on admission, and sets the sample
InferenceService's Ready condition. JupyterHub's login page is served by the test on 127.0.0.1 at the NodePort of
the `proxy-public` Service, with 127.0.0.1 recorded as the worker's floating IP. The service-proxy checks
(InferenceService, Prometheus) cannot pass here: the API server proxies only to pod IPs that are not loopback,
and the control plane's namespace has only loopback; they are shown failing with the API's real answer.

With AFFORDML_RECORD_VERIFY=1 each run's API answers are written to tests/fixtures/verify/ for the CI tests."""

from __future__ import annotations

import http.server
import os
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml

from affordml.phases.workflow import PhaseContext
from affordml.plan.sharing import node_resources
from affordml.render.context import gpu_nodes
from affordml.verify.phase import VerifyFailed, run_verify_phase
from affordml.verify.record import FAILED, PASSED
from affordml.verify.transport import KubeTransport, Recorder
from affordml.verify.urls import http_get
from affordml.verify.waits import Waits
from tests.cases import phase_context, printing
from tests.integration.verify.actors import VerifyActors
from tests.integration.verify.conftest import CRD_FILES

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures"
RECORDINGS = FIXTURES / "verify"
NODE_BASE = {"cpu": "16", "memory": "64Gi", "pods": "110"}
LOGIN_PAGE = (  # what JupyterHub's login template serves, in short (the real page is longer)
    '<!DOCTYPE HTML><html><head><title>JupyterHub</title></head><body><div id="login-main">'
    '<form action="/hub/login?next=" method="post" role="form"><div class="auth-form-header"><h1>Sign in</h1>'
    '</div><input id="username_input" name="username"><input type="password" name="password">'
    '<input type="submit" id="login_submit" value="Sign in"></form></div></body></html>'
)


CASES = {  # one plan per sharing mode the default scheduler can place (HAMi's pods need HAMi's own scheduler)
    "desktop-rtx4090": {"fixture": "desktop-rtx4090"},  # MPS x5
    "server-a100-mig": {"fixture": "server-a100-mig"},  # MIG all-balanced: 1g.10gb x2, 2g.20gb, 3g.40gb
    "workstation-2gpu--exclusive-and-time-slicing": {
        "fixture": "workstation-2gpu",
        "config": {
            "gpu": {"per_gpu": {"0000:17:00.0": "exclusive", "0000:31:00.0": {"mode": "time-slicing", "replicas": 3}}}
        },
    },
    "desktop-rtx4090--cpu-only": {"fixture": "desktop-rtx4090", "config": {"gpu": {"exclude": ["0000:01:00.0"]}}},
}


def probe_texts(plan) -> dict[str, str]:
    """node -> what the probe prints there (written by the test in nvidia-smi's formats; no GPU is involved)."""
    from affordml.verify.objects import smallest_profile

    texts = {}
    for gpu in plan.gpus:
        lines = [f"{gpu.name}, {gpu.memory_mib}", f"GPU 0: {gpu.name} (UUID: GPU-{gpu.address.replace(':', '')})"]
        if gpu.sharing.mode == "mig":
            lines.append(f"  MIG {smallest_profile(gpu)}     Device  0: (UUID: MIG-{gpu.address.replace(':', '')})")
        pipe = "/mps/nvidia.com/gpu/pipe" if gpu.sharing.mode == "mps" else ""
        texts[gpu.vm] = "\n".join([*lines, f"mps-pipe={pipe}"]) + "\n"
    return texts


def make_context(case: str | dict, root: Path, kubeconfig: str, lines: list[str]) -> PhaseContext:
    ctx = phase_context(CASES[case] if isinstance(case, str) else case, root, kubeconfig, printing(lines))
    servers = {vm.name: {"floating_ip": "127.0.0.1"} for vm in ctx.plan.vms}  # loopback: the test serves JupyterHub
    ctx.state.data["cloud"] = {"servers": servers}
    return ctx


def register_nodes(cp, plan, fewer_shares: bool = False) -> None:
    from kubernetes import client

    labels_of = {n["name"]: n["labels"] for n in gpu_nodes(plan)}
    for vm in plan.vms:
        shares = node_resources([g.sharing for g in plan.gpus if g.vm == vm.name])
        if fewer_shares:
            shares = {k: 1 for k in shares}
        labels = {"kubernetes.io/hostname": vm.name, "kubernetes.io/os": "linux", **labels_of.get(vm.name, {})}
        if vm.role == "control-plane":
            labels["node-role.kubernetes.io/control-plane"] = ""
        cp.register_node(vm.name, capacity={**NODE_BASE, **{k: str(v) for k, v in shares.items()}}, labels=labels)
        client.CoreV1Api(cp.client()).patch_node(vm.name, {"spec": {"taints": []}})


def apply_ml_objects(cp, ctx, crds: Path, isvc_ready: bool, hub_port: int | None) -> None:
    """The CRDs, then what the ml phase would leave: the rendered queues (env/ml/kueue-queues.yaml), the sample
    InferenceService (its Ready condition set as KServe's controller would), and JupyterHub's proxy-public."""
    from kubernetes import client

    from affordml.gpu.apply import GpuApi, apply_crds

    kubeconfig = ctx.project.secrets_dir / "kubeconfig"
    api = GpuApi(kubeconfig)
    try:
        docs = []
        for name in CRD_FILES:
            docs += [d for d in yaml.safe_load_all((crds / name).read_text()) if d]
        apply_crds(api, docs)
    finally:
        api.close()
    from affordml.ml.queues import apply_queue_objects

    apply_queue_objects(ctx, kubeconfig)  # the ml phase's own apply of the rendered queue objects
    core, custom = client.CoreV1Api(cp.client()), client.CustomObjectsApi(cp.client())
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "affordml-sample", "namespace": "ml"},
        "spec": {"predictor": {"sklearn": {"storageUri": "gs://kfserving-examples/models/sklearn/1.0/model"}}},
    }
    custom.create_namespaced_custom_object("serving.kserve.io", "v1beta1", "ml", "inferenceservices", isvc)
    condition = {"type": "Ready", "status": "True" if isvc_ready else "False", "lastTransitionTime": _now()}
    if not isvc_ready:
        condition |= {
            "reason": "RevisionMissing",
            "message": "predictor deployment affordml-sample-predictor 0/1 ready",
        }
    custom.patch_namespaced_custom_object_status(
        "serving.kserve.io",
        "v1beta1",
        "ml",
        "inferenceservices",
        "affordml-sample",
        {"status": {"conditions": [condition]}},
    )
    if hub_port:
        if not [n for n in core.list_namespace().items if n.metadata.name == "jupyterhub"]:  # the queues may have
            core.create_namespace({"metadata": {"name": "jupyterhub"}})
        service = {
            "metadata": {"name": "proxy-public", "namespace": "jupyterhub"},
            "spec": {
                "type": "NodePort",
                "selector": {"component": "proxy"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8000, "nodePort": hub_port}],
            },
        }
        core.create_namespaced_service("jupyterhub", service)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def free_node_port() -> int:
    for port in range(31000, 32700, 7):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise AssertionError("no free port in the NodePort range on 127.0.0.1")


class _Login(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = LOGIN_PAGE.encode() if self.path.startswith("/hub/login") else b"not found"
        self.send_response(200 if self.path.startswith("/hub/login") else 404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve_login(port: int) -> http.server.HTTPServer:
    server = http.server.HTTPServer(("127.0.0.1", port), _Login)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run_checks(ctx, cp, probe: dict, admit: bool, waits: Waits, record_as: str) -> tuple[dict, float, list]:
    recorder = Recorder(KubeTransport(ctx.project.secrets_dir / "kubeconfig"))
    started = time.monotonic()
    with VerifyActors(cp.client(), probe, admit=admit) as actors:
        try:
            run_verify_phase(ctx, transport=recorder, waits=waits, http_get=recorder.http(http_get))
        except VerifyFailed as exc:
            ctx.say(f"VerifyFailed: {exc.one_line()}")
    took = time.monotonic() - started
    recorder.inner.close()
    if os.environ.get("AFFORDML_RECORD_VERIFY"):
        RECORDINGS.mkdir(exist_ok=True)
        recorder.save(RECORDINGS / f"{record_as}.json")
    results = {r["name"]: r for r in ctx.state.data["verify"]["results"]}
    return results, took, actors.errors


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_checks_pass_on_a_cluster_that_keeps_the_plan(case, control_plane_factory, verify_crds, tmp_path):
    cp = control_plane_factory()
    lines: list[str] = []
    ctx = make_context(case, tmp_path / "project", cp.admin_kubeconfig(), lines)
    register_nodes(cp, ctx.plan)
    port = free_node_port()
    server = serve_login(port)
    try:
        apply_ml_objects(cp, ctx, verify_crds, isvc_ready=True, hub_port=port)
        waits = Waits(pod_s=60, admit_s=30, job_s=60, gone_s=30, poll_s=0.5, hold_s=5)
        results, took, errors = run_checks(ctx, cp, probe_texts(ctx.plan), True, waits, f"{case}-pass")
    finally:
        server.shutdown()
    summary = ", ".join(f"{n} {r['status']} {r['seconds']}s" for n, r in results.items())
    print(f"verify on {case}: {took:.1f} s; {summary}")
    modes = sorted({g.sharing.mode for g in ctx.plan.gpus})
    gpu_checks = ["gpu-shares", *(f"gpu-pod-{m}" for m in modes), "two-pods-one-gpu"] if modes else []
    passed = ["nodes-ready", *gpu_checks, "kueue-job", "jupyterhub-login"]
    assert {n: results[n]["status"] for n in passed} == dict.fromkeys(passed, PASSED), lines
    if not modes:
        assert {results[n]["status"] for n in ("gpu-shares", "two-pods-one-gpu", "dcgm-metrics")} == {"not-applicable"}
    assert ctx.state.data["verify"]["jupyterhub_url"] == f"http://127.0.0.1:{port}/"
    # the service proxy to a predictor / Prometheus needs pod IPs this loopback-only cluster cannot have
    assert results["inference"]["status"] == FAILED and "HTTP 404" in results["inference"]["detail"]
    if modes:
        assert results["dcgm-metrics"]["status"] == FAILED and "HTTP 404" in results["dcgm-metrics"]["detail"]
    assert not errors, errors
    _assert_cleaned_up(cp)


@pytest.mark.slow
def test_each_check_fails_with_its_fix_on_a_broken_cluster(control_plane_factory, verify_crds, tmp_path):
    """The control-plane VM NotReady, the GPU node advertising 1 share instead of 5, a probe that is no MPS client,
    no Kueue admitting, the InferenceService not Ready, no Prometheus and no JupyterHub service."""
    from affordml.verify.checks import planned_checks

    cp = control_plane_factory()
    lines: list[str] = []
    ctx = make_context("desktop-rtx4090", tmp_path / "project", cp.admin_kubeconfig(), lines)
    register_nodes(cp, ctx.plan, fewer_shares=True)
    control = next(vm.name for vm in ctx.plan.vms if vm.role == "control-plane")
    cp.set_ready(control, False)
    apply_ml_objects(cp, ctx, verify_crds, isvc_ready=False, hub_port=None)
    gpu_node = ctx.plan.gpus[0].vm
    waits = Waits(pod_s=15, admit_s=8, job_s=8, gone_s=20, poll_s=0.5, hold_s=5)
    probe = {gpu_node: probe_texts(ctx.plan)[gpu_node].replace("/mps/nvidia.com/gpu/pipe", "")}
    results, took, errors = run_checks(ctx, cp, probe, False, waits, "desktop-rtx4090-broken")
    print(f"broken cluster: {took:.1f} s")
    for name, row in results.items():
        print(f"  {name}: {row['detail']} — fix: {row['fix']}")
    assert {n: r["status"] for n, r in results.items()} == dict.fromkeys(results, FAILED), lines
    fixes = {c.name: c.fix for c in planned_checks(ctx.plan)}
    assert all(results[n]["fix"] == fixes[n] for n in results if n not in ("jupyterhub-login",))
    assert f"not Ready: {control}" in results["nodes-ready"]["detail"]
    assert "advertises nvidia.com/gpu: 1, the plan promised 5" in results["gpu-shares"]["detail"]
    assert "not an MPS client" in results["gpu-pod-mps"]["detail"]
    assert "Insufficient nvidia.com/gpu" in results["two-pods-one-gpu"]["detail"]
    assert "was not admitted" in results["kueue-job"]["detail"]
    assert "not Ready: predictor deployment" in results["inference"]["detail"]
    assert "HTTP 404" in results["dcgm-metrics"]["detail"]
    assert "jupyterhub/proxy-public does not exist" in results["jupyterhub-login"]["detail"]
    assert "affordml init phase ml" in results["jupyterhub-login"]["fix"]
    assert not errors, errors
    _assert_cleaned_up(cp)


def _assert_cleaned_up(cp, timeout_s: float = 30) -> None:
    """Every pod the checks made is gone and their namespace is going (the real namespace controller)."""
    from kubernetes import client

    core = client.CoreV1Api(cp.client())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        namespaces = [n for n in core.list_namespace().items if n.metadata.name == "affordml-verify"]
        if not namespaces or namespaces[0].metadata.deletion_timestamp:
            return
        time.sleep(0.5)
    raise AssertionError("namespace affordml-verify was not deleted")


@pytest.mark.slow
def test_affordml_verify_command_saves_results_that_status_shows(control_plane_factory, verify_crds, tmp_path):
    """`affordml verify` as a user runs it (a child process, saved facts), against the same real control plane;
    the two service-proxy checks are skipped by name (they cannot pass here, see above)."""
    import json
    import subprocess
    import sys

    from affordml.phases.state import load_state, save_state

    cp = control_plane_factory()
    lines: list[str] = []
    ctx = make_context("desktop-rtx4090", tmp_path / "project", cp.admin_kubeconfig(), lines)
    save_state(ctx.project.state_file, ctx.state)  # the cloud phase's record: the VMs' floating IPs
    (ctx.project.root / "affordml.yaml").write_text(f"hosts:\n  - name: {ctx.config.hosts[0].name}\n")
    register_nodes(cp, ctx.plan)
    port = free_node_port()
    server = serve_login(port)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "affordml", "--project-dir", str(ctx.project.root)]
    facts = str(FIXTURES / "hardware" / "desktop-rtx4090.json")
    skips = ["--skip-check", "inference", "--skip-check", "dcgm-metrics"]
    try:
        apply_ml_objects(cp, ctx, verify_crds, isvc_ready=True, hub_port=port)
        with VerifyActors(cp.client(), probe_texts(ctx.plan)):
            started = time.monotonic()
            done = subprocess.run([*base, "verify", "--json", "--facts", facts, *skips], env=env,
                                  capture_output=True, text=True, timeout=600)  # fmt: skip
            took = time.monotonic() - started
    finally:
        server.shutdown()
    print(f"affordml verify: rc {done.returncode} in {took:.1f} s\n{done.stderr[-2000:]}")
    assert done.returncode == 0, done.stdout + done.stderr
    printed = json.loads(done.stdout)
    assert printed["counts"] == {"passed": 6, "failed": 0, "skipped": 2, "not-applicable": 0}
    state = load_state(ctx.project.state_file)
    assert state.phases["verify"].status == "done" and state.data["verify"]["counts"] == printed["counts"]
    status = subprocess.run([*base, "status", "--offline"], env=env, capture_output=True, text=True, timeout=120)
    print(status.stdout)
    assert "verify (last run" in status.stdout and "6 passed, 0 failed, 2 skipped" in status.stdout
    assert f"  jupyterhub-login  passed  JupyterHub's login page answers at http://127.0.0.1:{port}/" in status.stdout
