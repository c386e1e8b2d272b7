"""`affordml bench sharing`, the pure parts: the metrics, the recommendation rules fed with the figures measured on
one H200 (docs/gpu-sharing.md), the affordml.yaml lines read back through affordml's own config loader and planner,
the report, and the cluster Jobs validated against the Kubernetes schemas of the locked minor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from affordml.bench import cluster, report
from affordml.bench.metrics import Blast, JobResult, Row, blast, jain, percentile, row
from affordml.bench.recommend import recommend
from affordml.bench.result import BenchResult, Device
from affordml.bench.workloads import WORKLOADS
from affordml.config.load import load_config
from affordml.facts.parse import facts_from_snapshot
from affordml.facts.sources import load_snapshot_file
from affordml.plan.build import make_plan
from affordml.versions import load_lock, version_table

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "inventories" / "examples"
TWO_GPUS = REPO / "tests" / "fixtures" / "hardware" / "workstation-2gpu.json"
LOCK = load_lock()


def ratio_row(mode: str, n: int, ratio: float, fairness: float = 0.99, ok: int | None = None) -> Row:
    return Row(mode, n, n if ok is None else ok, ratio * 900, ratio, 1.0, 2.0, 500.0, fairness)


def h200_mlp() -> tuple[list[Row], list[Blast]]:
    """The small MLP on one H200: time-slicing 2.05x/3.78x/5.76x, MPS 2.17x/4.70x/9.01x at N = 2/4/8."""
    rows = [ratio_row("exclusive", 1, 1.0)]
    rows += [ratio_row("time-slicing", n, r) for n, r in ((2, 2.05), (4, 3.78), (8, 5.76))]
    rows += [ratio_row("mps", n, r) for n, r in ((2, 2.17), (4, 4.70), (8, 9.01))]
    return rows, [Blast("time-slicing", 8, True, 7, 0), Blast("mps", 8, True, 7, 7)]


def plan_for(lines: str, facts: Path, tmp_path: Path):
    config_file = tmp_path / "affordml.yaml"
    config_file.write_text(lines)
    config = load_config(config_file, environ={})
    return make_plan(facts_from_snapshot(load_snapshot_file(facts)), config, version_table(LOCK))


# ---- metrics ----


def test_percentiles_interpolate_and_jain_spans_one_over_n_to_one():
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 100.0], 95) == pytest.approx(80.8)
    assert percentile([], 50) is None
    assert jain([5.0, 5.0, 5.0, 5.0]) == pytest.approx(1.0)
    assert jain([8.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
    assert jain([]) is None


def test_a_row_sums_rates_compares_with_one_job_alone_and_counts_a_dead_job_as_zero():
    jobs = [JobResult(100, 2.0, (10.0, 12.0), 300.0), JobResult(50, 2.0, (20.0,), 310.0), JobResult(exit_code=-11)]
    figures = row("time-slicing", jobs, baseline=40.0)
    assert (figures.n, figures.jobs_ok, figures.throughput, figures.ratio) == (3, 2, 75.0, 1.88)
    assert figures.memory_mib == 310.0 and figures.latency_p50_ms == 12.0
    assert figures.fairness == pytest.approx((50 + 25) ** 2 / (3 * (50**2 + 25**2)), abs=1e-3)
    crash = blast("mps", JobResult(exit_code=1, error="illegal memory access"), jobs[:2] + [JobResult(exit_code=1)])
    assert (crash.n, crash.crashed, crash.others, crash.others_died) == (4, True, 3, 1)


# ---- the recommendation rules ----


def test_many_small_jobs_get_mps_at_the_measured_best_n_and_the_trade_off_is_said(tmp_path):
    rows, blasts = h200_mlp()
    rec = recommend(rows, blasts)
    assert (rec.mode, rec.jobs) == ("mps", 8)
    assert "9.01x" in rec.reason and "1.56x time-slicing" in rec.reason
    assert "one crash among 8 jobs ended 7 of the other 7 here" in rec.reason
    plan = plan_for(rec.config_lines, EXAMPLES / "desktop-rtx4090.json", tmp_path)
    assert [(g.sharing.mode, g.sharing.slots) for g in plan.gpus] == [("mps", 8)]


def test_training_keeps_faults_isolated_even_though_mps_gave_more(tmp_path):
    rows, blasts = h200_mlp()
    rec = recommend(rows, blasts, role="training")
    assert (rec.mode, rec.jobs) == ("time-slicing", 8)
    assert "role training" in rec.reason and "one crash among 8 jobs ended 0 of the other 7" in rec.reason
    plan = plan_for(rec.config_lines, EXAMPLES / "desktop-rtx4090.json", tmp_path)
    assert [(g.sharing.mode, g.sharing.replicas) for g in plan.gpus] == [("time-slicing", 8)]


def test_a_job_that_fills_the_gpu_gets_it_whole(tmp_path):
    rows = [ratio_row("exclusive", 1, 1.0), ratio_row("time-slicing", 4, 0.93), ratio_row("mps", 4, 1.00)]
    rec = recommend(rows, [Blast("time-slicing", 4, True, 3, 0), Blast("mps", 4, True, 3, 3)])
    assert rec.mode == "exclusive" and "at most 1.00x" in rec.reason
    plan = plan_for(rec.config_lines, EXAMPLES / "desktop-rtx4090.json", tmp_path)
    assert [g.sharing.mode for g in plan.gpus] == ["exclusive"]


def test_mps_must_beat_the_isolating_mode_by_the_measured_margin_to_win():
    rows = [ratio_row("time-slicing", 4, 3.5), ratio_row("mps", 4, 3.9)]
    rec = recommend(rows, [Blast("mps", 4, True, 3, 3)])
    assert (rec.mode, rec.jobs) == ("time-slicing", 4) and "not 1.20 times this" in rec.reason
    assert recommend(rows, [], role="notebooks").mode == "mps"


def test_a_mode_whose_crash_killed_others_or_that_starved_a_job_is_not_counted():
    rows = [ratio_row("time-slicing", 4, 3.0), ratio_row("mps", 4, 4.5, fairness=0.5)]
    rec = recommend(rows, [Blast("time-slicing", 4, True, 3, 2)], role="training")
    assert rec.mode == "exclusive" and "no fault-isolating mode" in rec.reason
    incomplete = [ratio_row("time-slicing", 4, 3.0, ok=3)]
    assert recommend(incomplete, []).mode == "exclusive"


def test_mig_and_hami_lines_plan_as_measured(tmp_path):
    mig = recommend([ratio_row("mig", 4, 3.6), ratio_row("mps", 4, 4.0)], [Blast("mig", 4, True, 3, 0)])
    assert mig.mode == "mig" and "hardware slice" in mig.reason
    plan = plan_for(mig.config_lines, EXAMPLES / "server-a100-mig.json", tmp_path)
    assert [(g.sharing.mode, g.sharing.mig_layout) for g in plan.gpus] == [("mig", "all-balanced")]
    hami = recommend([ratio_row("hami", 4, 3.2)], [Blast("hami", 4, True, 3, 0)], role="inference")
    assert hami.sharing == {"mode": "hami", "split": 4, "memory_percent": 25, "cores_percent": 25}
    plan = plan_for(hami.config_lines, EXAMPLES / "desktop-rtx4090.json", tmp_path)
    assert [(g.sharing.mode, g.sharing.replicas, g.sharing.hami_memory_percent) for g in plan.gpus] == [("hami", 4, 25)]


def test_lines_for_one_gpu_of_several_go_under_per_gpu(tmp_path):
    rows, blasts = h200_mlp()
    rec = recommend(rows, blasts, role="training", gpu_address="0000:31:00.0")
    assert rec.config_lines.startswith("gpu:\n  per_gpu:\n    '0000:31:00.0':\n")
    plan = plan_for(rec.config_lines, TWO_GPUS, tmp_path)
    assert {g.address: g.sharing.mode for g in plan.gpus}["0000:31:00.0"] == "time-slicing"


def test_counts_beyond_the_config_bounds_are_clamped_so_the_lines_load(tmp_path):
    rec = recommend([ratio_row("mps", 64, 30.0)], [])
    assert rec.sharing == {"mode": "mps", "clients": 48}
    assert plan_for(rec.config_lines, EXAMPLES / "desktop-rtx4090.json", tmp_path).gpus[0].sharing.slots == 48


# ---- the report ----


def test_report_table_chart_and_stand_in_label():
    rows, blasts = h200_mlp()
    result = BenchResult("local", Device("cpu", "CPU stand-in (2 cores)"), "mlp", 1.0, [1, 2, 4, 8], rows, blasts)
    result.recommendation = recommend(rows, blasts, stand_in=True)
    text = "\n".join(report.text_report(result))
    assert "CPU STAND-IN" in text and "say nothing about a GPU" in text
    table = report.table_lines(result)
    assert table[0].split()[:5] == ["mode", "N", "done", "steps/s", "vs"] and len(table) == 2 + len(rows)
    bars = {line.split()[0] + line.split()[1]: line.count("#") for line in report.chart_lines(result)}
    assert bars["mpsN=8"] == report.BAR_WIDTH and bars["time-slicingN=8"] < bars["mpsN=8"]
    assert "mps           N=8: the faulting job crashed; 7 of 7 others died" in text
    assert "        clients: 8" in text


# ---- the cluster Jobs ----


def _cluster_plan(tmp_path, lines: str = "", facts: Path = EXAMPLES / "desktop-rtx4090.json"):
    return plan_for(lines, facts, tmp_path)


@pytest.mark.parametrize(
    ("lines", "facts", "asks"),
    [
        ("", "desktop-rtx4090", {"nvidia.com/gpu": "1"}),
        ("", "server-a100-mig", {"nvidia.com/mig-1g.10gb": "1"}),
        (
            "gpu: {sharing: {mode: hami, split: 4}}\n",
            "desktop-rtx4090",
            {"nvidia.com/gpu": "1", "nvidia.com/gpumem-percentage": "25", "nvidia.com/gpucores": "25"},
        ),
    ],
)
def test_cluster_jobs_ask_for_one_share_as_the_plan_advertises_it(tmp_path, lines, facts, asks):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    minor = LOCK["kubernetes"]["kubernetes_minor"]
    (target,) = cluster.targets(_cluster_plan(tmp_path, lines, EXAMPLES / f"{facts}.json"))
    spec = WORKLOADS["mlp"].spec("cuda", 5.0)
    jobs = cluster.render_run("123456", target, 4, spec, None, "registry.example/pytorch:1", 1e9, crash=True)
    for body in [cluster.worker_configmap(), *jobs]:
        assert kubernetes_validate.validate(body, minor, strict=True) == minor
    assert [j["metadata"]["name"] for j in jobs] == [f"bench-123456-{target.mode}-4-{i}" for i in range(4)]
    pod = jobs[0]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.io/hostname": "worker-1"}
    assert pod["containers"][0]["resources"]["limits"] == asks
    argv = [json.loads(j["spec"]["template"]["spec"]["containers"][0]["command"][2]) for j in jobs]
    assert [a.get("crash_after_s") for a in argv] == [spec["seconds"] / 3, None, None, None]
    assert {a["start_at"] for a in argv} == {1e9} and all(j["metadata"]["namespace"] == "ml" for j in jobs)


def test_cluster_result_comes_from_the_logs_last_json_line():
    log = 'warming up\n{"steps": 40, "seconds": 2.0, "latency_ms": [50.0], "memory_mib": 812.0}\n'
    assert cluster.parse_log(log) == JobResult(40, 2.0, (50.0,), 812.0)
    assert not cluster.parse_log("Traceback ...\nRuntimeError: CUDA error").ok


def test_the_worker_without_pytorch_says_so_in_one_line():
    """Exit 3 and one line; PyTorch is hidden so that the test means the same where it is installed."""
    spec = WORKLOADS["mlp"].spec("cuda", 0.2)
    hide_torch = (
        "import runpy, sys; sys.modules['torch'] = None; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", hide_torch, str(cluster.WORKER), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().splitlines() == ["the cuda workloads need PyTorch in this Python (pip install torch)"]


# ---- the local GPU set-up, against stand-in NVIDIA tools (the real ones run in benchmarks/run_sharing_bench.sh) ----

FAKE_SMI = """#!/bin/sh
case "$*" in
  *query-gpu*) echo "NVIDIA H200, 143771" ;;
  -L) printf 'GPU 0: NVIDIA H200 (UUID: GPU-1)\\n  MIG 1g.18gb Device 0: (UUID: MIG-aaa)\\n'
      printf '  MIG 3g.71gb Device 1: (UUID: MIG-bbb)\\nGPU 1: NVIDIA H200 (UUID: GPU-2)\\n'
      printf '  MIG 1g.18gb Device 0: (UUID: MIG-ccc)\\n' ;;
esac
"""
FAKE_MPS = """#!/bin/sh
{ echo "args=$* pipe=$CUDA_MPS_PIPE_DIRECTORY log=$CUDA_MPS_LOG_DIRECTORY"; cat -; } >> "$MPS_RECORD"
"""


def test_local_gpu_modes_mps_daemon_limits_and_mig_instances(tmp_path, monkeypatch):
    from affordml.bench import local

    for name, text in (("nvidia-smi", FAKE_SMI), ("nvidia-cuda-mps-control", FAKE_MPS)):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    record = tmp_path / "mps.log"
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("MPS_RECORD", str(record))
    monkeypatch.setattr(local, "_has_torch", lambda: True)
    device = local.detect_device()
    assert (device.kind, device.name, device.memory_mib) == ("cuda", "NVIDIA H200", 143771)
    assert device.mig_devices == ("MIG-aaa", "MIG-bbb")  # GPU 0's instances only
    setups, skipped = local.mode_setups(device)
    assert set(setups) == {"exclusive", "time-slicing", "mps", "mig"} and set(skipped) == {"hami"}
    with setups["mps"](4) as envs:
        assert {e["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] for e in envs} == {"0=35942M"}
        pipe = envs[0]["CUDA_MPS_PIPE_DIRECTORY"]
        assert Path(pipe).is_dir() and oct(Path(pipe).stat().st_mode & 0o777) == "0o700"
    assert not Path(pipe).exists()  # the private folders go with the daemon
    started, stopped = record.read_text().splitlines()[0], record.read_text().splitlines()[1:]
    assert started.startswith("args=-d pipe=" + pipe) and stopped == [f"args= pipe={pipe} log={pipe[:-4]}log", "quit"]
    with setups["time-slicing"](2) as envs:
        empty = envs[0]["CUDA_MPS_PIPE_DIRECTORY"]
        assert Path(empty).is_dir() and not any(Path(empty).iterdir())  # no MPS server to join
    with setups["mig"](3) as envs:
        assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["MIG-aaa", "MIG-bbb", "MIG-aaa"]


def test_cluster_results_wait_for_every_pod_and_read_how_each_ended(monkeypatch):
    from kubernetes import client as k8s

    def pod(job: str, phase: str, code: int | None = None, reason: str = "") -> k8s.V1Pod:
        ended = k8s.V1ContainerStateTerminated(exit_code=code, reason=reason) if code is not None else None
        statuses = [
            k8s.V1ContainerStatus(
                name="job",
                image="i",
                image_id="",
                ready=False,
                restart_count=0,
                state=k8s.V1ContainerState(terminated=ended),
            )
        ]
        return k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(name=f"{job}-pod", labels={"job-name": job}),
            status=k8s.V1PodStatus(phase=phase, container_statuses=statuses),
        )

    class Api:
        polls = 0

        def pods(self, run_id):
            self.polls += 1
            done = [pod("a", "Succeeded", 0), pod("b", "Failed", 139, "Error")]
            return done if self.polls > 1 else [pod("a", "Running"), pod("b", "Running")]

        def log(self, name):
            return '{"steps": 10, "seconds": 1.0, "latency_ms": [100.0], "memory_mib": 900}\n'

    monkeypatch.setattr(cluster, "POLL_S", 0.01)
    ok, crashed = cluster.wait_results(Api(), "r", ["a", "b"], 10, print)
    assert ok == JobResult(10, 1.0, (100.0,), 900) and (crashed.ok, crashed.exit_code) == (False, 139)

    class Stuck(Api):
        def pods(self, run_id):
            return [pod("a", "Pending")]

    with pytest.raises(Exception, match="2 job\\(s\\) did not finish in 0 s \\(first: a\\)"):
        cluster.wait_results(Stuck(), "r", ["a", "b"], 0, print)


@pytest.mark.parametrize("two_gpus", [False, True])
def test_cluster_run_measures_within_the_shares_and_always_deletes_its_jobs(tmp_path, monkeypatch, two_gpus):
    """run_in_cluster's flow against a stand-in API (the real API's side is tests/integration/bench)."""
    from kubernetes import client as k8s

    if two_gpus:  # worker-1 MPS x8, worker-2 time-slicing x4: both modes measured, each on its own GPU
        lines = "gpu: {per_gpu: {'0000:31:00.0': {mode: time-slicing, replicas: 4}}}\n"
        plan = _cluster_plan(tmp_path, lines, TWO_GPUS)
    else:
        plan = _cluster_plan(tmp_path, "gpu: {sharing: {mode: time-slicing, replicas: 4}}\n")
    created, deleted = [], []

    class FakeJobs:
        def __init__(self, kubeconfig):
            pass

        def put_configmap(self, body):
            assert body["data"]["worker.py"] == cluster.WORKER.read_text()

        def create(self, jobs):
            created.append(jobs)

        def pods(self, run_id):
            jobs = next(j for j in created if j[0]["metadata"]["labels"][cluster.RUN_LABEL] == run_id)
            pods = []
            for index, body in enumerate(jobs):
                argv = json.loads(body["spec"]["template"]["spec"]["containers"][0]["command"][2])
                failed = argv.get("crash_after_s") is not None
                state = k8s.V1ContainerState(terminated=k8s.V1ContainerStateTerminated(exit_code=1 if failed else 0))
                status = k8s.V1ContainerStatus(
                    name="job", image="i", image_id="", ready=False, restart_count=0, state=state
                )
                pods.append(
                    k8s.V1Pod(
                        metadata=k8s.V1ObjectMeta(
                            name=f"{run_id}-{index}", labels={"job-name": body["metadata"]["name"]}
                        ),
                        status=k8s.V1PodStatus(phase="Failed" if failed else "Succeeded", container_statuses=[status]),
                    )
                )
            return pods

        def log(self, name):
            return '{"steps": 50, "seconds": 1.0, "latency_ms": [20.0], "memory_mib": 700}'

        def delete_run(self, run_id):
            deleted.append(run_id)

    monkeypatch.setattr(cluster, "ClusterJobs", FakeJobs)
    monkeypatch.setattr(cluster, "_kubeconfig", lambda project: tmp_path / "kubeconfig")
    monkeypatch.setattr(cluster, "_project_plan", lambda project, config: plan)
    said: list[str] = []
    result = cluster.run_in_cluster(
        None,
        None,
        WORKLOADS["mlp"],
        None,
        "registry.example/pytorch:1",
        ["time-slicing", "mps"],
        [1, 2, 4, 8],
        1.0,
        said.append,
    )
    if two_gpus:
        assert [(r.mode, r.n, r.note) for r in result.rows] == [
            ("exclusive", 1, "one job alone on worker-1 (mps GPU)"),
            ("mps", 2, "worker-1"),
            ("mps", 4, "worker-1"),
            ("mps", 8, "worker-1"),
            ("exclusive", 1, "one job alone on worker-2 (time-slicing GPU)"),
            ("time-slicing", 2, "worker-2"),
            ("time-slicing", 4, "worker-2"),
        ]
        assert [(b.mode, b.n) for b in result.blasts] == [("mps", 8), ("time-slicing", 4)] and not result.skipped
        return
    assert [(r.mode, r.n, r.ratio) for r in result.rows] == [
        ("exclusive", 1, 1.0),
        ("time-slicing", 2, 2.0),
        ("time-slicing", 4, 4.0),
    ]
    assert "N above 4 left out" in said[0] and set(result.skipped) == {"mps"}
    assert [(b.n, b.crashed, b.others_died) for b in result.blasts] == [(4, True, 0)]
    assert result.rows[0].note == "one job alone on worker-1 (time-slicing GPU)"
    assert [len(jobs) for jobs in created] == [1, 2, 4, 4] and len(deleted) == len(created)
    with pytest.raises(Exception, match="needs --image"):
        cluster.run_in_cluster(None, None, WORKLOADS["mlp"], None, None, ["mps"], [1], 1.0, said.append)
