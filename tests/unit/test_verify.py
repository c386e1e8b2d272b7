"""The verify checks' logic in CI: on the API answers recorded from the real control plane
(tests/integration/verify/test_verify_real_api.py, fixtures in tests/fixtures/verify/), and on answers of the
documented shape where the real run could not produce them (the service proxy to a predictor and to Prometheus
needs pod IPs a loopback-only test cluster cannot have)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from affordml.config.model import Config
from affordml.errors import ConfigError
from affordml.facts.parse import facts_from_snapshot
from affordml.facts.sources import load_snapshot_file
from affordml.phases.state import State
from affordml.phases.workflow import PhaseContext
from affordml.plan.build import make_plan
from affordml.project import Project
from affordml.verify import objects as obj
from affordml.verify.checks import VerifyContext, planned_checks
from affordml.verify.phase import VerifyFailed, run_verify_phase
from affordml.verify.record import FAILED, NOT_APPLICABLE, PASSED, SKIPPED
from affordml.verify.runner import run_checks
from affordml.verify.transport import Replay
from affordml.verify.waits import Waits
from affordml.versions import load_lock, version_table
from tests.clock import FakeClock

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORDED = FIXTURES / "verify"


def waits(**bounds) -> Waits:
    clock = FakeClock()
    return Waits(**({"poll_s": 0.5, "hold_s": 5} | bounds), clock=clock, sleep=clock.sleep)


def plan_of(fixture: str, config: dict | None = None):
    facts = facts_from_snapshot(load_snapshot_file(FIXTURES / "hardware" / f"{fixture}.json"))
    cfg = Config.model_validate({"hosts": [{"name": facts.hostname}], **(config or {})})
    lock = load_lock()
    return make_plan(facts, cfg, version_table(lock)), cfg, lock


def context(tmp_path, fixture: str = "desktop-rtx4090", config: dict | None = None) -> PhaseContext:
    plan, cfg, lock = plan_of(fixture, config)
    servers = {vm.name: {"floating_ip": "127.0.0.1"} for vm in plan.vms}
    lines: list[str] = []
    ctx = PhaseContext(Project(tmp_path), cfg, plan, lock, State(data={"cloud": {"servers": servers}}), lines.append)
    ctx.lines = lines
    return ctx


def replayed(ctx, name: str, bounds: dict) -> tuple[dict, Replay]:
    replay = Replay.load(RECORDED / f"{name}.json")
    with contextlib.suppress(VerifyFailed):
        run_verify_phase(ctx, transport=replay, waits=waits(**bounds), http_get=replay.http_get)
    return {r["name"]: r for r in ctx.state.data["verify"]["results"]}, replay


RECORDED_CASES = {  # the cases of tests/integration/verify/test_verify_real_api.py, as (fixture, config)
    "desktop-rtx4090": ("desktop-rtx4090", None),
    "server-a100-mig": ("server-a100-mig", None),
    "workstation-2gpu--exclusive-and-time-slicing": (
        "workstation-2gpu",
        {"gpu": {"per_gpu": {"0000:17:00.0": "exclusive", "0000:31:00.0": {"mode": "time-slicing", "replicas": 3}}}},
    ),
    "desktop-rtx4090--cpu-only": ("desktop-rtx4090", {"gpu": {"exclude": ["0000:01:00.0"]}}),
}
PASS_BOUNDS = {"pod_s": 60, "admit_s": 30, "job_s": 60, "gone_s": 30}


@pytest.mark.parametrize("case", sorted(RECORDED_CASES))
def test_recorded_run_on_a_cluster_that_keeps_the_plan(case, tmp_path):
    fixture, config = RECORDED_CASES[case]
    ctx = context(tmp_path, fixture, config)
    results, replay = replayed(ctx, f"{case}-pass", PASS_BOUNDS)
    assert not replay.unrecorded, replay.unrecorded  # the checks made the calls of the real run, in its order
    modes = sorted({g.sharing.mode for g in ctx.plan.gpus})
    gpu = ["gpu-shares", *(f"gpu-pod-{m}" for m in modes), "two-pods-one-gpu"] if modes else []
    expected = dict.fromkeys(["nodes-ready", *gpu, "kueue-job", "jupyterhub-login"], PASSED)
    expected |= {"inference": FAILED, "dcgm-metrics": FAILED if modes else NOT_APPLICABLE}
    if not modes:
        expected |= {"gpu-shares": NOT_APPLICABLE, "two-pods-one-gpu": NOT_APPLICABLE}
    assert {n: r["status"] for n, r in results.items()} == expected
    assert ctx.state.data["verify"]["jupyterhub_url"].startswith("http://127.0.0.1:")


def test_recorded_details_name_what_was_seen(tmp_path):
    results, _ = replayed(context(tmp_path), "desktop-rtx4090-pass", PASS_BOUNDS)
    assert "NVIDIA GeForce RTX 4090, 24564 MiB" in results["gpu-pod-mps"]["detail"]
    assert results["gpu-shares"]["detail"] == "worker-1 nvidia.com/gpu=5"
    mig, _ = replayed(context(tmp_path / "mig", "server-a100-mig"), "server-a100-mig-pass", PASS_BOUNDS)
    assert "2 pods asking nvidia.com/mig-1g.10gb: 1 ran at once on worker-1 (mig)" in mig["two-pods-one-gpu"]["detail"]


def test_the_pods_and_job_ask_what_a_user_asks(tmp_path):
    ctx = context(tmp_path)
    _, replay = replayed(ctx, "desktop-rtx4090-pass", PASS_BOUNDS)
    created = {b["metadata"]["name"]: b for m, _p, b in replay.bodies if m == "POST"}
    probe = created["verify-gpu-mps"]
    assert probe["metadata"]["namespace"] == obj.NAMESPACE
    assert probe["spec"]["containers"][0]["resources"] == {"limits": {"nvidia.com/gpu": "1"}}
    assert probe["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "worker-1", "affordml.io/gpu-sharing": "mps"}
    assert probe["spec"]["containers"][0]["image"] == ctx.lock["nvidia_device_plugin"]["image"]
    job = created["verify-kueue"]
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "training" and job["spec"]["suspend"] is True
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert created["training"]["spec"] == {"clusterQueue": "affordml-training"}
    assert all(
        b["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "affordml" for b in created.values()
    )


def test_recorded_broken_cluster_every_check_fails_with_its_fix(tmp_path):
    ctx = context(tmp_path)
    results, replay = replayed(ctx, "desktop-rtx4090-broken", {"pod_s": 15, "admit_s": 8, "job_s": 8, "gone_s": 20})
    assert not replay.unrecorded, replay.unrecorded
    assert {r["status"] for r in results.values()} == {FAILED}
    fixes = {c.name: c.fix for c in planned_checks(ctx.plan)}
    assert {n: r["fix"] for n, r in results.items()} == {n: fixes[n] for n in results}
    assert "advertises nvidia.com/gpu: 1, the plan promised 5" in results["gpu-shares"]["detail"]
    assert "Insufficient nvidia.com/gpu" in results["two-pods-one-gpu"]["detail"]
    assert "Kueue made no Workload" in results["kueue-job"]["detail"]
    assert ctx.state.data["verify"]["counts"][FAILED] == 8


def test_the_phase_fails_with_the_first_check_and_how_to_skip_it(tmp_path):
    ctx = context(tmp_path)
    replay = Replay.load(RECORDED / "desktop-rtx4090-broken.json")
    with pytest.raises(VerifyFailed) as caught:
        run_verify_phase(ctx, transport=replay, waits=waits(pod_s=15, admit_s=8, job_s=8, gone_s=20))
    line = caught.value.one_line()
    assert line.startswith("[verify] check nodes-ready failed: not Ready: cp-1 (7 more failed: gpu-shares")
    assert line.endswith("(or skip it: `affordml verify --skip-check nodes-ready`)")


def test_skipped_and_not_applicable_checks(tmp_path):
    ctx = context(tmp_path, config={"ml": {"inference": False, "monitoring": False}})
    replay = Replay.load(RECORDED / "desktop-rtx4090-pass.json")
    skip = {"kueue-job", "jupyterhub-login", "two-pods-one-gpu"}
    run_verify_phase(ctx, frozenset(skip), transport=replay, waits=waits(pod_s=60, gone_s=30))
    results = {r["name"]: r for r in ctx.state.data["verify"]["results"]}
    assert {n for n, r in results.items() if r["status"] == SKIPPED} == skip
    assert results["inference"]["status"] == NOT_APPLICABLE and "ml.inference: false" in results["inference"]["detail"]
    assert results["dcgm-metrics"]["status"] == NOT_APPLICABLE
    assert results["gpu-pod-mps"]["status"] == PASSED


def test_an_unknown_check_name_is_refused_before_anything_runs(tmp_path):
    ctx = context(tmp_path)
    calls = []
    with pytest.raises(ConfigError) as caught:
        run_verify_phase(ctx, frozenset({"nodes-redy"}), transport=lambda *a: calls.append(a) or (200, {}))
    assert "--skip-check 'nodes-redy': no such check" in caught.value.one_line()
    assert "nodes-ready" in caught.value.fix and calls == []


def test_a_cpu_only_plan_has_no_gpu_checks(tmp_path):
    plan, _, _ = plan_of("desktop-rtx4090")
    plan.gpus.clear()  # as the planner leaves it for a PC without a GPU to pass through
    names = [c.name for c in planned_checks(plan)]
    assert not any(n.startswith("gpu-pod-") for n in names)
    assert next(c for c in planned_checks(plan) if c.name == "gpu-shares").applies(plan)


# ------------------------------------------------------------ answers of the documented shape (not recordable here)
def answering(routes: dict) -> callable:
    def transport(method, path, query=None, body=None):
        return routes.get((method, path), (404, {"kind": "Status", "message": f"{path} not found"}))

    return transport


def vc_for(tmp_path, routes: dict) -> VerifyContext:
    from affordml.verify.api import VerifyApi

    ctx = context(tmp_path)
    return VerifyContext(VerifyApi(answering(routes)), ctx.plan, ctx.lock, ctx.state.data, lambda _l: None, waits())


ISVC_PATH = "/apis/serving.kserve.io/v1beta1/namespaces/ml/inferenceservices/affordml-sample"
PREDICTOR = "/api/v1/namespaces/ml/services/affordml-sample-predictor:80/proxy/v1/models/affordml-sample"
PROMETHEUS = "/api/v1/namespaces/monitoring/services/prometheus-operated:9090/proxy/api/v1/query"


def test_inference_answers_through_the_service_proxy(tmp_path):
    from affordml.verify.checks import inference

    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    vc = vc_for(
        tmp_path,
        {("GET", ISVC_PATH): (200, ready), ("GET", PREDICTOR): (200, {"name": "affordml-sample", "ready": True})},
    )
    assert "predictor answers" in inference(vc)
    vc = vc_for(
        tmp_path,
        {
            ("GET", ISVC_PATH): (200, ready),
            ("GET", PREDICTOR): (503, {"message": 'no endpoints available for service "affordml-sample-predictor"'}),
        },
    )
    with pytest.raises(Exception, match="HTTP 503: no endpoints available"):
        inference(vc)


def test_dcgm_metrics_count_each_gpu(tmp_path):
    from affordml.verify.api import CheckFailed
    from affordml.verify.checks import dcgm_metrics

    series = {
        "metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "gpu": "0", "UUID": "GPU-5e1c", "Hostname": "worker-1"},
        "value": [1, "3"],
    }
    answer = {"status": "success", "data": {"resultType": "vector", "result": [series]}}
    assert "for 1 GPU(s)" in dcgm_metrics(vc_for(tmp_path, {("GET", PROMETHEUS): (200, answer)}))
    empty = {"status": "success", "data": {"resultType": "vector", "result": []}}
    with pytest.raises(CheckFailed, match="for 0 GPU"):
        dcgm_metrics(vc_for(tmp_path, {("GET", PROMETHEUS): (200, empty)}))


def test_jupyterhub_url_is_the_node_port_on_a_worker_floating_ip(tmp_path):
    from affordml.verify.urls import jupyterhub_url

    service = {"spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80, "nodePort": 31234}]}}
    vc = vc_for(tmp_path, {("GET", "/api/v1/namespaces/jupyterhub/services/proxy-public"): (200, service)})
    vc.state_data["cloud"]["servers"]["worker-1"]["floating_ip"] = "10.77.0.21"
    assert jupyterhub_url(vc.api, vc.plan, vc.state_data) == "http://10.77.0.21:31234/"


# ------------------------------------------------------------ the probe, per mode
def test_probe_output_is_judged_against_each_modes_promise():
    plan, _, _ = plan_of("server-a100-mig")
    gpu = plan.gpus[0]
    want = obj.expectation(gpu)
    assert want.mig_profile == "1g.10gb" and obj.share_request(gpu) == {"nvidia.com/mig-1g.10gb": "1"}
    seen = obj.read_probe("NVIDIA A100 80GB PCIe, 81920\nGPU 0: NVIDIA A100 80GB PCIe (UUID: GPU-1)\n"
                          "  MIG 1g.10gb     Device  0: (UUID: MIG-2)\nmps-pipe=\n")  # fmt: skip
    assert obj.judge(seen, want) is None
    assert "no MIG 2g.20gb" in obj.judge(seen, obj.expectation(gpu, "2g.20gb"))
    assert obj.judge(obj.read_probe(""), want) == "nvidia-smi printed no GPU"


def test_hami_probe_must_show_the_memory_limit():
    plan, _, _ = plan_of(
        "desktop-rtx4090", {"gpu": {"sharing": {"mode": "hami", "split": 4, "memory_percent": 25, "cores_percent": 25}}}
    )
    gpu = plan.gpus[0]
    assert obj.share_request(gpu) == {"nvidia.com/gpu": "1", obj.HAMI_MEMORY: "25", obj.HAMI_CORES: "25"}
    limited = obj.read_probe(f"NVIDIA GeForce RTX 4090, {gpu.memory_mib // 4}\nGPU 0: NVIDIA GeForce RTX 4090\n")
    assert obj.judge(limited, obj.expectation(gpu)) is None
    whole = obj.read_probe(f"NVIDIA GeForce RTX 4090, {gpu.memory_mib}\nGPU 0: NVIDIA GeForce RTX 4090\n")
    assert "the plan promised" in obj.judge(whole, obj.expectation(gpu))


def test_the_probe_script_is_static_text():
    pod = obj.probe_pod("p", "c", "img", {"nvidia.com/gpu": "1"}, {"a": "b"})
    assert pod["spec"]["containers"][0]["command"] == ["/bin/sh", "-c", obj.PROBE_SCRIPT]
    assert "{" not in obj.PROBE_SCRIPT.replace("${CUDA_MPS_PIPE_DIRECTORY:-}", "")


# ------------------------------------------------------------ status and registry
def test_status_shows_the_last_verify_run(tmp_path):
    from affordml.phases.state import save_state
    from affordml.status import project_status
    from affordml.verify.record import CheckResult, record, status_lines

    project = Project(tmp_path)
    assert project_status(project, query_cloud=False)["verify"]["note"].startswith("the verify phase has not run")
    state = State()
    state.data["verify"] = record(
        [
            CheckResult("nodes-ready", PASSED, "p", "3 node(s) Ready"),
            CheckResult("kueue-job", FAILED, "p", "not admitted", "fix it"),
        ],
        clock=lambda: 0,
    )
    state.data["verify"]["jupyterhub_url"] = "http://10.77.0.21:31234/"
    save_state(project.state_file, state)
    section = project_status(project, query_cloud=False)["verify"]
    assert section["summary"] == "1 passed, 1 failed, 0 skipped, 0 not-applicable"
    lines = status_lines(section)
    assert lines[0] == "verify (last run 1970-01-01 00:00 UTC): 1 passed, 1 failed, 0 skipped, 0 not-applicable"
    assert lines[1] == "  JupyterHub: http://10.77.0.21:31234/"
    assert lines[3] == "  kueue-job  failed  not admitted — fix: fix it"


def test_verify_is_a_python_step_of_init():
    from affordml.phases.registry import get_phase
    from affordml.phases.steps import PYTHON_STEPS

    assert get_phase("verify").runs == "python:verify" and "verify" in PYTHON_STEPS


def test_run_checks_deletes_its_namespace_after(tmp_path):
    ctx = context(tmp_path)
    replay = Replay.load(RECORDED / "desktop-rtx4090-pass.json")
    from affordml.verify.api import VerifyApi

    vc = VerifyContext(
        VerifyApi(replay), ctx.plan, ctx.lock, ctx.state.data, lambda _l: None, waits(pod_s=60, gone_s=30)
    )
    calls = []
    original = replay.__call__

    def spy(method, path, query=None, body=None):
        calls.append((method, path))
        return original(method, path, query, body)

    vc.api.call = spy
    run_checks(vc, set())
    assert calls[-1] == ("DELETE", f"/api/v1/namespaces/{obj.NAMESPACE}")
    assert ("POST", "/api/v1/namespaces") in calls


def test_an_api_that_does_not_answer_fails_every_check_in_one_line_each(tmp_path):
    """A real KubeTransport to a closed port on loopback: connection refused, no traceback, no namespace left."""
    import socket

    from affordml.secrets import secure_dir, write_private
    from affordml.verify.transport import KubeTransport

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "secrets" / "kubeconfig"
    secure_dir(kubeconfig.parent)
    write_private(
        kubeconfig,
        f"apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n",
    )
    ctx = context(tmp_path / "p")
    transport = KubeTransport(kubeconfig, request_timeout=2)
    try:
        with pytest.raises(VerifyFailed) as caught:
            run_verify_phase(ctx, transport=transport, waits=waits())
    finally:
        transport.close()
    results = ctx.state.data["verify"]["results"]
    assert {r["status"] for r in results} == {FAILED}
    assert all(
        r["detail"].startswith("the Kubernetes API did not answer") for r in results if r["name"] != "jupyterhub-login"
    )
    assert "kubectl --kubeconfig secrets/kubeconfig get nodes" in results[0]["fix"]
    assert "\n" not in caught.value.one_line()


def test_a_cpu_only_queue_job_uses_an_image_every_node_has():
    from affordml.verify.objects import cpu_job_image, kueue_job

    image, command = cpu_job_image(load_lock())
    assert image == f"registry.k8s.io/kube-proxy:v{load_lock()['kubernetes']['version']}"
    job = kueue_job("j", image, {}, command)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["kube-proxy", "--version"]
    assert container["resources"]["limits"] == {"cpu": "100m", "memory": "64Mi"}


@pytest.mark.parametrize(
    "broken",
    [[], "x", {"results": "x"}, {"at": "soon", "results": [{"name": "a", "status": "passed"}]},
     {"at": True, "results": [1, None, {"name": "\x1b[31mred"}]}, {"at": 1e300, "results": []},
     {"counts": "x", "results": []}],
)  # fmt: skip
def test_status_survives_a_hand_edited_verify_record(tmp_path, broken):
    from affordml.phases.state import save_state
    from affordml.status import project_status
    from affordml.verify.record import status_lines

    project = Project(tmp_path)
    state = State()
    state.data["verify"] = broken
    save_state(project.state_file, state)
    lines = status_lines(project_status(project, query_cloud=False)["verify"])
    assert lines and all(isinstance(line, str) for line in lines)


# ------------------------------------------------------------ its inputs: a changed platform runs verify again
def _after_a_passed_verify(tmp_path, change) -> tuple[str, list]:
    """Verify done (a stand-in step records each run), `change` applied to a fresh context of the same
    project, then verify's outcome in the next `init`."""
    from affordml.phases.registry import get_phase
    from affordml.phases.state import load_state
    from affordml.phases.workflow import run_phases

    ran = []
    first = context(tmp_path)
    run_phases(first, [get_phase("verify")], lambda _phase, ctx: ran.append(ctx.plan))
    later = context(tmp_path)
    later.state = load_state(first.project.state_file)
    change(later)
    (outcome,) = run_phases(later, [get_phase("verify")], lambda _phase, ctx: ran.append(ctx.plan))
    return outcome[1], ran


def _add_a_pc(ctx) -> None:
    from affordml.plan.nodes import make_node_plan, with_nodes
    from tests.unit.test_add_node_plan import CONFIG, facts

    pc2_facts = facts("workstation-2gpu", "pc2-box", "192.168.1.43")
    pc2 = make_node_plan("pc2", pc2_facts, CONFIG, ctx.plan.versions, ctx.plan)
    ctx.plan = with_nodes(ctx.plan, [pc2])


PLATFORM_CHANGES = {
    "another GPU mode": lambda ctx: setattr(ctx, "plan", plan_of("desktop-rtx4090", {"gpu": {"sharing": "hami"}})[0]),
    "an added PC": _add_a_pc,
    "an ml switch": lambda ctx: setattr(ctx, "plan", plan_of("desktop-rtx4090", {"ml": {"jupyterhub": False}})[0]),
    "a check left out": lambda ctx: setattr(ctx, "skip_checks", frozenset({"inference"})),
    "the gpu phase ran with other inputs": lambda ctx: setattr(ctx.state.phase("gpu"), "inputs_hash", "f00d"),
}


@pytest.mark.parametrize("change", sorted(PLATFORM_CHANGES))
def test_a_changed_platform_runs_verify_again(change, tmp_path):
    outcome, ran = _after_a_passed_verify(tmp_path, PLATFORM_CHANGES[change])
    assert outcome == "ran" and len(ran) == 2


def test_an_unchanged_platform_keeps_the_passed_verify(tmp_path):
    outcome, ran = _after_a_passed_verify(tmp_path, lambda ctx: None)  # the same plan, made again from the facts
    assert outcome == "kept" and len(ran) == 1


def test_verify_inputs_name_what_it_checked(tmp_path):
    from affordml.verify.phase import phase_inputs

    ctx = context(tmp_path)
    ctx.skip_checks = frozenset({"kueue-job"})
    taken = phase_inputs(ctx)
    assert taken["nodes"] == [(vm.name, vm.role) for vm in ctx.plan.vms]
    assert taken["shares"] == {"worker-1": {"nvidia.com/gpu": 5}} and taken["ml"] == ctx.plan.ml
    assert "gpu-pod-mps" in taken["checks"] and taken["skipped"] == ["kueue-job"]
    assert set(taken["built"]) == {"kubernetes", "gpu", "ml"} and "gpu" not in ctx.state.phases  # read, not made
