"""The verify checks as data: name, what it proves, the fix when it fails, when it applies (from the plan), and
the function that runs it. A check returns what it saw, or raises CheckFailed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from affordml.plan.model import Plan
from affordml.verify import objects as obj
from affordml.verify.api import CheckFailed, VerifyApi, api_message
from affordml.verify.waits import PODS, Waits, remove_pods, wait_pod_done, wait_running_together

KUBECTL = "kubectl --kubeconfig secrets/kubeconfig"


@dataclass
class VerifyContext:
    api: VerifyApi
    plan: Plan
    lock: dict
    state_data: dict
    say: Callable[[str], None]
    waits: Waits = field(default_factory=Waits)
    http_get: Callable[[str], tuple[int, str]] | None = None  # for the JupyterHub URL (urls.http_get)
    jupyterhub_url: str = ""  # filled by the check, shown by status


@dataclass(frozen=True)
class Check:
    name: str
    proves: str
    fix: str
    applies: Callable[[Plan], str | None]
    run: Callable[[VerifyContext], str]


# ------------------------------------------------------------------ applicability
def always(_: Plan) -> str | None:
    return None


def with_gpus(plan: Plan) -> str | None:
    return None if plan.gpus else "no GPU is passed through (CPU-only platform)"


def with_ml(flag: str, what: str, gpu: bool = False) -> Callable[[Plan], str | None]:
    def applies(plan: Plan) -> str | None:
        if not plan.ml.get(flag):
            return f"{what} is off in the plan (ml.{flag}: false)"
        return with_gpus(plan) if gpu else None

    return applies


def with_shared_gpu(plan: Plan) -> str | None:
    return None if _shared_pair(plan) else "no GPU is shared: every node advertises at most one of each share"


# ------------------------------------------------------------------ cluster checks
def nodes_ready(vc: VerifyContext) -> str:
    nodes = {n["metadata"]["name"]: n for n in vc.api.items("/api/v1/nodes")}
    planned = [vm.name for vm in vc.plan.vms]
    missing = [n for n in planned if n not in nodes]
    not_ready = [n for n in planned if n in nodes and not _ready(nodes[n])]
    if missing or not_ready:
        parts = ([f"not registered: {', '.join(missing)}"] if missing else []) + (
            [f"not Ready: {', '.join(not_ready)}"] if not_ready else []
        )
        raise CheckFailed("; ".join(parts))
    return f"{len(planned)} node(s) Ready: {', '.join(planned)}"


def _ready(node: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


def gpu_shares(vc: VerifyContext) -> str:
    seen = []
    for node, promised in obj.promised_shares(vc.plan).items():
        found = vc.api.get(f"/api/v1/nodes/{node}")
        if found is None:
            raise CheckFailed(f"GPU node {node} is not in the cluster", "run `affordml init phase kubernetes` again")
        allocatable = (found.get("status") or {}).get("allocatable") or {}
        for resource, count in sorted(promised.items()):
            has = str(allocatable.get(resource, "0"))
            if has != str(count):
                raise CheckFailed(f"node {node} advertises {resource}: {has}, the plan promised {count}")
            seen.append(f"{node} {resource}={count}")
    return ", ".join(seen)


def _node_pod_labels(node: str, mode: str) -> dict[str, str]:
    return {"kubernetes.io/hostname": node, obj.SHARING_LABEL: mode}


def gpu_pod(mode: str) -> Callable[[VerifyContext], str]:
    def run(vc: VerifyContext) -> str:
        gpu = next(g for g in vc.plan.gpus if g.sharing.mode == mode)
        name = f"verify-gpu-{mode}"
        check = f"gpu-pod-{mode}"
        pod = obj.probe_pod(
            name, check, obj.probe_image(vc.lock), obj.share_request(gpu), _node_pod_labels(gpu.vm, mode)
        )
        vc.api.create(PODS, pod)
        try:
            seen = obj.read_probe(wait_pod_done(vc.api, name, vc.waits))
        finally:
            remove_pods(vc.api, check, vc.waits)
        want = obj.expectation(gpu)
        problem = obj.judge(seen, want)
        if problem:
            raise CheckFailed(problem)
        memory = f", {seen.memory_mib} MiB" if seen.memory_mib is not None else ""
        return f"pod on {gpu.vm} ran nvidia-smi: {seen.gpu_name or 'a GPU'}{memory}; saw {want.note}"

    return run


def _shared_pair(plan: Plan):
    """(node, mode, request) of a GPU node with two of one share, or None."""
    for node, gpus in obj.gpu_nodes(plan).items():
        for gpu in gpus:
            if gpu.sharing.mode == "mig":
                profiles = list(gpu.sharing.mig_instances)
                twice = sorted({p for p in profiles if profiles.count(p) >= 2}, key=obj._profile_gib)
                if twice:
                    return node, "mig", obj.share_request(gpu, twice[0])
            elif gpu.sharing.slots >= 2:
                return node, gpu.sharing.mode, obj.share_request(gpu)
    return None


def two_at_once(vc: VerifyContext) -> str:
    node, mode, request = _shared_pair(vc.plan)
    labels = _node_pod_labels(node, mode)
    names = ["verify-share-a", "verify-share-b"]
    image = obj.probe_image(vc.lock)
    for name in names:
        vc.api.create(PODS, obj.probe_pod(name, "two-pods-one-gpu", image, request, labels, vc.waits.hold_s))
    try:
        waited = wait_running_together(vc.api, names, vc.waits)
    finally:
        remove_pods(vc.api, "two-pods-one-gpu", vc.waits)
    share = ", ".join(f"{k}: {v}" for k, v in request.items())
    return f"2 pods asking {share} ran at once on {node} ({mode}), after {waited:.0f} s"


# ------------------------------------------------------------------ ML checks
KUEUE = "/apis/kueue.x-k8s.io/v1beta2"
JOBS = f"/apis/batch/v1/namespaces/{obj.NAMESPACE}/jobs"


def kueue_job(vc: VerifyContext) -> str:
    users = vc.api.get(f"{KUEUE}/namespaces/{obj.USER_NAMESPACE}/localqueues/{obj.USER_QUEUE}")
    if users is None:
        raise CheckFailed(f"LocalQueue {obj.USER_NAMESPACE}/{obj.USER_QUEUE} does not exist")
    cluster_queue = (users.get("spec") or {}).get("clusterQueue") or ""
    vc.api.create(f"{KUEUE}/namespaces/{obj.NAMESPACE}/localqueues", obj.local_queue(cluster_queue))
    name = "verify-kueue"
    if vc.plan.gpus:
        job = obj.kueue_job(name, obj.probe_image(vc.lock), obj.share_request(vc.plan.gpus[0]))
    else:
        image, command = obj.cpu_job_image(vc.lock)
        job = obj.kueue_job(name, image, {}, command)
    vc.api.create(JOBS, job)
    try:
        admitted = _wait_job(vc, name, lambda job: (job.get("spec") or {}).get("suspend") is False, vc.waits.admit_s)
        if admitted is None:
            raise CheckFailed(f"job {name} was not admitted in {vc.waits.admit_s:.0f} s: {_workload_reason(vc)}")
        done = _wait_job(vc, name, lambda job: _job_condition(job) is not None, vc.waits.job_s)
        if done is None:
            raise CheckFailed(f"job {name} was admitted but did not finish in {vc.waits.job_s:.0f} s")
        kind, message = _job_condition(done)
        if kind != "Complete":
            raise CheckFailed(f"job {name} failed: {message}")
    finally:
        vc.api.delete(f"{JOBS}/{name}", {"propagationPolicy": "Background"})
        remove_pods(vc.api, "kueue-job", vc.waits)
    return f"job in queue {obj.USER_QUEUE} -> ClusterQueue {cluster_queue} was admitted and completed"


def _wait_job(vc: VerifyContext, name: str, ready: Callable[[dict], bool], bound: float) -> dict | None:
    started = vc.waits.clock()
    while vc.waits.clock() - started < bound:
        job = vc.api.get(f"{JOBS}/{name}")
        if job is None:
            raise CheckFailed(f"job {name} disappeared")
        if ready(job):
            return job
        vc.waits.sleep(vc.waits.poll_s)
    return None


def _job_condition(job: dict) -> tuple[str, str] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return cond["type"], " ".join(str(cond.get("message") or cond.get("reason") or "").split())
    return None


def _workload_reason(vc: VerifyContext) -> str:
    """Kueue's own word on the job's Workload (QuotaReserved=False says why), or that no Workload exists."""
    workloads = vc.api.items(f"{KUEUE}/namespaces/{obj.NAMESPACE}/workloads")
    if not workloads:
        return "Kueue made no Workload for it (is the Kueue controller running?)"
    for cond in (workloads[0].get("status") or {}).get("conditions") or []:
        if cond.get("status") == "False" or cond.get("type") == "QuotaReserved":
            return " ".join(str(cond.get("message") or cond.get("reason") or "").split())[:300]
    return "its Workload has no condition yet"


ISVC = f"/apis/serving.kserve.io/v1beta1/namespaces/{obj.USER_NAMESPACE}/inferenceservices/affordml-sample"


def inference(vc: VerifyContext) -> str:
    isvc = vc.api.get(ISVC)
    if isvc is None:
        raise CheckFailed(f"InferenceService {obj.USER_NAMESPACE}/affordml-sample does not exist")
    conditions = {c.get("type"): c for c in (isvc.get("status") or {}).get("conditions") or []}
    ready = conditions.get("Ready") or {}
    if ready.get("status") != "True":
        why = " ".join(str(ready.get("message") or ready.get("reason") or "no Ready condition yet").split())
        raise CheckFailed(f"InferenceService affordml-sample is not Ready: {why}")
    status, answer = vc.api.proxy(obj.USER_NAMESPACE, "affordml-sample-predictor", 80, "v1/models/affordml-sample")
    if status != 200:
        raise CheckFailed(f"the predictor answered HTTP {status}: {api_message(answer)}")
    if not (isinstance(answer, dict) and answer.get("ready") in (True, "True", "true")):
        raise CheckFailed(f"the predictor answered but the model is not ready: {api_message(answer)}")
    return "InferenceService affordml-sample is Ready and its predictor answers (v1/models/affordml-sample: ready)"


DCGM_QUERY = "DCGM_FI_DEV_GPU_UTIL"


def dcgm_metrics(vc: VerifyContext) -> str:
    status, answer = vc.api.proxy("monitoring", "prometheus-operated", 9090, "api/v1/query", {"query": DCGM_QUERY})
    if status != 200 or not isinstance(answer, dict) or answer.get("status") != "success":
        raise CheckFailed(f"Prometheus did not answer the query (HTTP {status}): {api_message(answer)}")
    series = (answer.get("data") or {}).get("result") or []
    gpus = {(s.get("metric") or {}).get("UUID") or (s.get("metric") or {}).get("gpu") for s in series}
    if len(gpus - {None}) < len(vc.plan.gpus):
        raise CheckFailed(
            f"Prometheus has {DCGM_QUERY} for {len(gpus - {None})} GPU(s), the plan has {len(vc.plan.gpus)}"
        )
    return f"Prometheus has {DCGM_QUERY} for {len(gpus - {None})} GPU(s) ({len(series)} series)"


def jupyterhub_login(vc: VerifyContext) -> str:
    from affordml.verify.urls import http_get, jupyterhub_url

    url = jupyterhub_url(vc.api, vc.plan, vc.state_data)
    vc.jupyterhub_url = url
    status, text = (vc.http_get or http_get)(url + "hub/login")
    if status != 200:
        raise CheckFailed(f"{url}hub/login answered HTTP {status}")
    if "login" not in text.lower() or "<form" not in text.lower():
        raise CheckFailed(f"{url}hub/login answered, but not with JupyterHub's login form")
    return f"JupyterHub's login page answers at {url}"


# ------------------------------------------------------------------ the list
_ML_FIX = "run `affordml init phase ml`"


def _gpu_pod_check(mode: str) -> Check:
    return Check(
        f"gpu-pod-{mode}",
        f"a pod asking for one {mode} share runs nvidia-smi on its GPU node and sees what the plan promised",
        f"look at the pod's events: `{KUBECTL} -n {obj.NAMESPACE} get events`; a Pending pod names the missing "
        f"share (compare `affordml plan` with `{KUBECTL} describe node`, or users' pods hold every share: run "
        "verify when one is free); then `affordml init phase gpu`",
        with_gpus,
        gpu_pod(mode),
    )


BASE_CHECKS: tuple[Check, ...] = (
    Check(
        "nodes-ready",
        "every planned VM is a Kubernetes node and Ready",
        f"`{KUBECTL} describe node NAME` (kubelet, CNI pods), then `affordml init phase kubernetes`",
        always,
        nodes_ready,
    ),
    Check(
        "gpu-shares",
        "each GPU node advertises exactly the shares the plan promised",
        f"check the device plugin pods (`{KUBECTL} -n gpu-operator get pods`) and the node label "
        "nvidia.com/device-plugin.config, then `affordml init phase gpu`",
        with_gpus,
        gpu_shares,
    ),
)
LATER_CHECKS: tuple[Check, ...] = (
    Check(
        "two-pods-one-gpu",
        "two pods asking for one share each run at the same time on one GPU",
        f"`{KUBECTL} -n {obj.NAMESPACE} get events`: a Pending pod names the share it lacks; compare "
        "`affordml plan` with the node's Allocatable (or users' pods hold the shares: run verify when two are "
        "free), then `affordml init phase gpu`",
        with_shared_gpu,
        two_at_once,
    ),
    Check(
        "kueue-job",
        f"a Job labelled for LocalQueue {obj.USER_QUEUE} is admitted by Kueue and completes",
        f"`{KUBECTL} -n kueue-system get pods` and `{KUBECTL} get clusterqueues,localqueues -A`; {_ML_FIX}",
        with_ml("training_queue", "the training queue"),
        kueue_job,
    ),
    Check(
        "inference",
        "the sample InferenceService is Ready and its predictor answers through the API server",
        f"`{KUBECTL} -n {obj.USER_NAMESPACE} describe inferenceservice affordml-sample`; {_ML_FIX}",
        with_ml("inference", "inference serving"),
        inference,
    ),
    Check(
        "dcgm-metrics",
        "every GPU's dcgm metrics reach Prometheus",
        f"`{KUBECTL} -n gpu-operator get pods,servicemonitors` (dcgm-exporter) and "
        f"`{KUBECTL} -n monitoring get prometheus`; {_ML_FIX}",
        with_ml("monitoring", "monitoring", gpu=True),
        dcgm_metrics,
    ),
    Check(
        "jupyterhub-login",
        "JupyterHub's login page answers at the URL `affordml status` prints",
        f"`{KUBECTL} -n jupyterhub get pods,svc proxy-public`; {_ML_FIX}",
        with_ml("jupyterhub", "JupyterHub"),
        jupyterhub_login,
    ),
)


def planned_checks(plan: Plan) -> list[Check]:
    """Every check, in order; one GPU pod check per sharing mode the plan uses."""
    modes = sorted({g.sharing.mode for g in plan.gpus})
    return [*BASE_CHECKS, *(_gpu_pod_check(m) for m in modes), *LATER_CHECKS]


def all_check_names(plan: Plan | None = None) -> list[str]:
    modes = sorted({g.sharing.mode for g in plan.gpus}) if plan else ["exclusive", "hami", "mig", "mps", "time-slicing"]
    return [c.name for c in BASE_CHECKS] + [f"gpu-pod-{m}" for m in modes] + [c.name for c in LATER_CHECKS]
