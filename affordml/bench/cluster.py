"""`affordml bench sharing` in the cluster: the same jobs as Kubernetes Jobs on the GPU worker, each asking for one
share of the GPU as the plan's sharing advertises it. A GPU node serves the one mode its device plugin is set up
for, so the cluster measures the modes the plan gave the GPUs; the others are reported with how to set them.

Rendering is pure (render_run); run_in_cluster creates the objects, waits, reads each pod's result line from its
log and deletes the Jobs whatever happens. The `kubernetes` client is imported only in ClusterJobs."""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from affordml.bench import metrics
from affordml.bench.jobs import WORKER
from affordml.bench.result import BenchResult, Device
from affordml.bench.workloads import WORKLOADS, Workload
from affordml.errors import RunError
from affordml.plan.sharing import advertised_resources

NAMESPACE = "ml"  # the users' job namespace (the ML helpers' contract)
WORKER_CONFIGMAP = "affordml-bench-worker"
RUN_LABEL = "affordml.io/bench-run"
START_DELAY_S = 240  # image pull and warm-up happen before the common start time
POLL_S = 2.0


@dataclass(frozen=True)
class Target:
    """One GPU as the plan set it up: its node, its mode, what one job asks for."""

    node: str
    address: str
    mode: str
    memory_mib: int | None
    resources: dict[str, str]
    shares: int = 1  # jobs the node's device plugin lets run at once on this GPU


def targets(plan) -> list[Target]:
    found = []
    for gpu in plan.gpus:
        decision = gpu.sharing
        advertised = advertised_resources(decision)
        name = min(advertised, key=lambda key: (key != "nvidia.com/gpu", key))  # MIG: the smallest profile
        asks = {name: "1"}
        if decision.mode == "hami":
            asks["nvidia.com/gpumem-percentage"] = str(decision.hami_memory_percent)
            asks["nvidia.com/gpucores"] = str(decision.hami_cores_percent)
        found.append(Target(gpu.vm, gpu.address, decision.mode, gpu.memory_mib, asks, advertised[name]))
    return found


def worker_configmap() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": WORKER_CONFIGMAP, "namespace": NAMESPACE, "labels": _labels("worker")},
        "data": {"worker.py": WORKER.read_text()},
    }


def job(
    run_id: str, name: str, target: Target, image: str, argv: list[str], deadline_s: int, uses_worker: bool
) -> dict:
    container = {
        "name": "job",
        "image": image,
        "command": argv,
        "resources": {"limits": dict(target.resources)},
        "env": [{"name": "OMP_NUM_THREADS", "value": "1"}],
    }
    pod_spec: dict = {
        "restartPolicy": "Never",
        "nodeSelector": {"kubernetes.io/hostname": target.node},
        "containers": [container],
    }
    if uses_worker:
        container["volumeMounts"] = [{"name": "bench", "mountPath": "/bench", "readOnly": True}]
        pod_spec["volumes"] = [{"name": "bench", "configMap": {"name": WORKER_CONFIGMAP}}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": _labels(run_id)},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_s,
            "ttlSecondsAfterFinished": 600,
            "template": {"metadata": {"labels": _labels(run_id)}, "spec": pod_spec},
        },
    }


def _labels(run_id: str) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": "affordml", RUN_LABEL: run_id}


def render_run(
    run_id: str,
    target: Target,
    n: int,
    spec: dict | None,
    command: list[str] | None,
    image: str,
    start_at: float,
    crash: bool = False,
) -> list[dict]:
    """N Jobs on the target's node: the built-in worker (all start at start_at) or the user's command."""
    deadline = int(START_DELAY_S + (spec or {}).get("seconds", 0) + 600)
    jobs = []
    for index in range(n):
        name = f"bench-{run_id}-{target.mode}-{n}-{index}"[:63].rstrip("-")
        if command:
            argv = list(command)
        else:
            job_spec = dict(spec, start_at=start_at)
            if crash and index == 0:
                job_spec["crash_after_s"] = spec["seconds"] / 3
            argv = ["python", "/bench/worker.py", json.dumps(job_spec)]
        jobs.append(job(run_id, name, target, image, argv, deadline, uses_worker=not command))
    return jobs


class ClusterJobs:
    """Create, wait for and read the bench's Jobs through the API; delete them at the end."""

    def __init__(self, kubeconfig: Path, request_timeout: float = 20) -> None:
        from kubernetes import client, config

        self._api = config.new_client_from_config(config_file=str(kubeconfig))
        self.core = client.CoreV1Api(self._api)
        self.batch = client.BatchV1Api(self._api)
        self.timeout = request_timeout

    def put_configmap(self, body: dict) -> None:
        from kubernetes.client.exceptions import ApiException

        name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
        try:
            self.core.replace_namespaced_config_map(name, namespace, body, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.core.create_namespaced_config_map(namespace, body, _request_timeout=self.timeout)

    def create(self, jobs: list[dict]) -> None:
        for body in jobs:
            self.batch.create_namespaced_job(NAMESPACE, body, _request_timeout=self.timeout)

    def pods(self, run_id: str) -> list:
        return self.core.list_namespaced_pod(
            NAMESPACE, label_selector=f"{RUN_LABEL}={run_id}", _request_timeout=self.timeout
        ).items

    def log(self, pod: str) -> str:
        return self.core.read_namespaced_pod_log(pod, NAMESPACE, container="job", _request_timeout=self.timeout)

    def delete_run(self, run_id: str) -> None:
        self.batch.delete_collection_namespaced_job(
            NAMESPACE,
            label_selector=f"{RUN_LABEL}={run_id}",
            propagation_policy="Background",
            _request_timeout=self.timeout,
        )


def wait_results(api: ClusterJobs, run_id: str, names: list[str], timeout_s: float, say) -> list[metrics.JobResult]:
    """Each Job's pod until it ended; its result from the log's last line, or how it ended."""
    deadline = time.monotonic() + timeout_s
    while True:
        pods = {p.metadata.labels.get("job-name"): p for p in api.pods(run_id)}
        ended = {n: p for n, p in pods.items() if p.status.phase in ("Succeeded", "Failed")}
        if len(ended) >= len(names):
            return [_pod_result(api, ended[n]) for n in names]
        if time.monotonic() > deadline:
            waiting = sorted(set(names) - set(ended))
            raise RunError(
                f"bench: {len(waiting)} job(s) did not finish in {timeout_s:.0f} s (first: {waiting[0]})",
                f"look at them: `kubectl --kubeconfig secrets/kubeconfig -n {NAMESPACE} describe job {waiting[0]}`",
            )
        time.sleep(POLL_S)


def _pod_result(api: ClusterJobs, pod) -> metrics.JobResult:
    state = next(
        (s.state.terminated for s in pod.status.container_statuses or [] if s.state and s.state.terminated), None
    )
    code = state.exit_code if state else None
    if pod.status.phase != "Succeeded":
        return metrics.JobResult(exit_code=code if code else 1, error=(state.reason if state else "") or "failed")
    return parse_log(api.log(pod.metadata.name))


def parse_log(text: str) -> metrics.JobResult:
    for line in reversed((text or "").splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and "steps" in data:
            return metrics.JobResult(
                int(data["steps"]), float(data["seconds"]), tuple(data["latency_ms"]), data.get("memory_mib")
            )
    return metrics.JobResult(exit_code=None, error="the job printed no result")


def run_in_cluster(project, config, workload: Workload, command, image, modes, counts, seconds, say) -> BenchResult:
    """Each requested mode that a GPU of the cluster is set up for, measured on the first such GPU: one job alone
    there (the ratios' base), then N jobs for each N up to its shares, then the crash run."""
    if not image:
        raise RunError(
            "bench in the cluster needs --image: a container image with Python (and PyTorch for the built-ins)",
            "add --image, e.g. --image nvcr.io/nvidia/pytorch:25.01-py3, or use --local",
        )
    planned = targets(_project_plan(project, config))
    chosen = list({t.mode: t for t in reversed(planned) if t.mode in modes}.values())[::-1]
    if not chosen:
        names = ", ".join(sorted({t.mode for t in planned})) or "none"
        raise RunError(
            f"bench: the cluster's GPUs are set up for {names}, none of --modes",
            "set gpu.sharing to the mode to measure, run `affordml init phase gpu`, then bench again",
        )
    api = ClusterJobs(_kubeconfig(project))
    where = ", ".join(f"{t.node} GPU {t.address} ({t.mode})" for t in chosen)
    label = workload.name if not command else "command: " + shlex.join(command)
    result = BenchResult("cluster", Device("cuda", where, chosen[0].memory_mib), label, seconds, counts)
    measured = {t.mode for t in chosen}
    result.skipped = {
        m: f"no GPU of the cluster is set up for {m}; set gpu.sharing (or gpu.per_gpu) to {m} and run "
        "`affordml init phase gpu` to measure it"
        for m in modes
        if m not in measured and m != "exclusive"
    }
    api.put_configmap(worker_configmap())
    for target in chosen:
        _measure_target(api, target, workload, command, image, counts, seconds, result, say)
    return result


def _measure_target(api, target: Target, workload, command, image, counts, seconds, result, say) -> None:
    spec = None if command else workload.spec("cuda", seconds)

    def measure(n: int, crash: bool = False) -> list[metrics.JobResult]:
        run_id = f"{int(time.time()) % 10**6}{target.mode[:3]}{n}{'c' if crash else ''}"
        crash_spec = spec if not crash else (spec or WORKLOADS["mlp"].spec("cuda", seconds))
        jobs = render_run(
            run_id, target, n, crash_spec, None if crash else command, image, time.time() + START_DELAY_S, crash
        )
        try:
            api.create(jobs)
            return wait_results(api, run_id, [j["metadata"]["name"] for j in jobs], START_DELAY_S + seconds + 600, say)
        finally:
            api.delete_run(run_id)

    alone = measure(1)
    baseline = metrics.row("exclusive", alone, None).throughput or None
    note = f"one job alone on {target.node} ({target.mode} GPU)"
    result.rows.append(metrics.row("exclusive", alone, baseline, note))
    fitting = [n for n in counts if 1 < n <= target.shares]
    if len(fitting) < len([n for n in counts if n > 1]):
        say(f"N above {target.shares} left out: {target.address} advertises {target.shares} share(s) of {target.mode}")
    for n in fitting:
        result.rows.append(metrics.row(target.mode, measure(n), baseline, target.node))
        say(f"{target.mode} N={n}: {result.rows[-1].ratio}x")
    if fitting:
        runs = measure(max(fitting), crash=True)
        result.blasts.append(metrics.blast(target.mode, runs[0], runs[1:], target.node))


def _kubeconfig(project) -> Path:
    from affordml.kube.kubeconfig import kubeconfig_path

    path = kubeconfig_path(project.secrets_dir)
    if not path.is_file() or path.is_symlink():
        raise RunError(f"bench: no cluster kubeconfig at {path}", "run `affordml init` first, or use --local")
    return path


def _project_plan(project, config):
    from affordml.facts.gather import gather_snapshot
    from affordml.facts.parse import facts_from_snapshot
    from affordml.plan.build import make_plan
    from affordml.versions import load_lock, version_table

    if not project.facts_file.is_file():
        raise RunError("bench in the cluster needs the platform's facts", "run `affordml init` first, or use --local")
    snapshot = gather_snapshot(project, config, project.facts_file)
    return make_plan(facts_from_snapshot(snapshot), config, version_table(load_lock()))
