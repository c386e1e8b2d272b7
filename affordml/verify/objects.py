"""What the checks create, as plain objects (pure): their namespace, the probe pods (one GPU share each, exactly
as a user asks for it), the Kueue job and its LocalQueue; and how a probe's output is read. Nothing here comes
from user input but names of the plan (node names, MIG profiles), which are sent as data in JSON."""

from __future__ import annotations

import re
from dataclasses import dataclass

from affordml.plan.model import GpuAssignment, Plan
from affordml.plan.sharing import node_resources

NAMESPACE = "affordml-verify"
MANAGED = {"app.kubernetes.io/managed-by": "affordml", "app.kubernetes.io/part-of": "affordml-verify"}
CHECK_LABEL = "affordml.io/verify-check"
SHARING_LABEL = "affordml.io/gpu-sharing"  # set on each GPU node by the gpu phase (env/gpu/node-labels.yaml)
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
USER_NAMESPACE, USER_QUEUE = "ml", "training"  # the ML names contract: users' namespace and LocalQueue
HAMI_MEMORY, HAMI_CORES = "nvidia.com/gpumem-percentage", "nvidia.com/gpucores"
PROBE_SCRIPT = (  # static text: no value is ever formatted into it
    "nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits >/dev/termination-log 2>&1; rc=$?; "
    "nvidia-smi -L >>/dev/termination-log 2>&1; "
    'echo "mps-pipe=${CUDA_MPS_PIPE_DIRECTORY:-}" >>/dev/termination-log; '
    'if [ -n "$AFFORDML_HOLD_S" ]; then sleep "$AFFORDML_HOLD_S"; fi; exit $rc'
)


def probe_image(lock: dict) -> str:
    """The device plugin's image: the GPU Operator runs it on every GPU node already (no extra pull, also offline);
    it has a shell, and the container toolkit adds nvidia-smi to any container given a GPU."""
    return lock["nvidia_device_plugin"]["image"]


def cpu_job_image(lock: dict) -> tuple[str, list[str]]:
    """(image, command) for a Job without a GPU: kube-proxy's image, which Kubespray runs on every node (its
    default registry.k8s.io and the locked Kubernetes version), and a command that ends at once."""
    return f"registry.k8s.io/kube-proxy:v{lock['kubernetes']['version']}", ["kube-proxy", "--version"]


def namespace() -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": dict(MANAGED)}}


def share_request(gpu: GpuAssignment, mig_profile: str | None = None) -> dict[str, str]:
    """What a user's pod asks for to get one share of this GPU (docs/gpu-sharing.md)."""
    sharing = gpu.sharing
    if sharing.mode == "mig":
        return {f"nvidia.com/mig-{mig_profile or smallest_profile(gpu)}": "1"}
    if sharing.mode == "hami":
        return {
            "nvidia.com/gpu": "1",
            HAMI_MEMORY: str(sharing.hami_memory_percent or 100 // max(sharing.slots, 1)),
            HAMI_CORES: str(sharing.hami_cores_percent or 100 // max(sharing.slots, 1)),
        }
    return {"nvidia.com/gpu": "1"}


def smallest_profile(gpu: GpuAssignment) -> str:
    return min(gpu.sharing.mig_instances, key=_profile_gib)


def _profile_gib(profile: str) -> float:
    match = re.search(r"(\d+(?:\.\d+)?)gb", profile)
    return float(match.group(1)) if match else 0.0


def probe_pod(name: str, check: str, image: str, request: dict[str, str], node_labels: dict, hold_s: int = 0) -> dict:
    container = {
        "name": "probe",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", PROBE_SCRIPT],
        "env": [{"name": "AFFORDML_HOLD_S", "value": str(hold_s)}] if hold_s else [],
        "resources": {"limits": dict(request)},
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {**MANAGED, CHECK_LABEL: check}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "automountServiceAccountToken": False,
            "nodeSelector": dict(node_labels),
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [container],
        },
    }


def local_queue(cluster_queue: str) -> dict:
    """A LocalQueue named like the users' one, in the checks' namespace, feeding the same ClusterQueue."""
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "LocalQueue",
        "metadata": {"name": USER_QUEUE, "namespace": NAMESPACE, "labels": dict(MANAGED)},
        "spec": {"clusterQueue": cluster_queue},
    }


def kueue_job(name: str, image: str, request: dict[str, str], command: list[str] | None = None) -> dict:
    """A Job as a user submits one to the queue: the LocalQueue label and created suspended (Kueue starts it on
    admission); its pod asks for one GPU share when the plan has GPUs."""
    pod = probe_pod(name, "kueue-job", image, request, {})["spec"]
    pod["nodeSelector"] = {}
    if command:
        pod["containers"][0]["command"] = list(command)
    limits = {"cpu": "100m", "memory": "64Mi", **request}
    pod["containers"][0]["resources"] = {"requests": dict(limits), "limits": dict(limits)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {**MANAGED, CHECK_LABEL: "kueue-job", QUEUE_LABEL: USER_QUEUE},
        },
        "spec": {
            "suspend": True,
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 600,
            "template": {"metadata": {"labels": {**MANAGED, CHECK_LABEL: "kueue-job"}}, "spec": pod},
        },
    }


@dataclass(frozen=True)
class ProbeOutput:
    gpu_name: str = ""
    memory_mib: int | None = None
    devices: tuple[str, ...] = ()  # nvidia-smi -L lines: "GPU 0: …", "  MIG 1g.10gb Device 0: …"
    mps_pipe: str = ""


def read_probe(text: str) -> ProbeOutput:
    """The probe's termination message (the first line is nvidia-smi's CSV: name, memory.total in MiB)."""
    lines = [line.rstrip() for line in (text or "").splitlines() if line.strip()]
    name, memory = "", None
    if lines and "," in lines[0]:
        head, _, tail = lines[0].rpartition(",")
        name, memory = head.strip(), int(tail.strip()) if tail.strip().isdigit() else None
    devices = tuple(line.strip() for line in lines if re.match(r"\s*(GPU|MIG) ", line))
    pipe = next((line.split("=", 1)[1] for line in lines if line.startswith("mps-pipe=")), "")
    return ProbeOutput(name, memory, devices, pipe)


@dataclass(frozen=True)
class Expectation:
    """What the probe of one mode must see, and how the plan stated it."""

    mode: str
    memory_mib: int | None  # memory nvidia-smi must show (±5 %), None when nvidia-smi cannot show the limit
    mig_profile: str | None = None
    mps_client: bool = False
    note: str = ""


def expectation(gpu: GpuAssignment, mig_profile: str | None = None) -> Expectation:
    sharing = gpu.sharing
    if sharing.mode == "mig":
        profile = mig_profile or smallest_profile(gpu)
        return Expectation("mig", None, mig_profile=profile, note=f"the MIG instance {profile}")
    if sharing.mode == "hami":
        percent = sharing.hami_memory_percent or 100 // max(sharing.slots, 1)
        limit = gpu.memory_mib * percent // 100 if gpu.memory_mib else None
        return Expectation("hami", limit, note=f"HAMi's limit of {percent} % of the memory")
    if sharing.mode == "mps":
        per = f"~{sharing.memory_per_slot_mib} MiB" if sharing.memory_per_slot_mib else "its share"
        return Expectation(
            "mps", None, mps_client=True,
            note=f"an MPS client (limit {per}, enforced by the MPS daemon for CUDA, not shown by nvidia-smi)",
        )  # fmt: skip
    return Expectation(sharing.mode, gpu.memory_mib, note="the whole GPU's memory (this mode does not split it)")


def judge(probe: ProbeOutput, want: Expectation) -> str | None:
    """None when the probe saw what the plan promised, else what differs."""
    if not probe.devices and probe.memory_mib is None:
        return "nvidia-smi printed no GPU"
    if want.mig_profile and not any(f"MIG {want.mig_profile} " in d for d in probe.devices):
        return f"nvidia-smi -L shows no MIG {want.mig_profile} device: {'; '.join(probe.devices) or 'none'}"
    if want.mps_client and not probe.mps_pipe:
        return "the container is not an MPS client (CUDA_MPS_PIPE_DIRECTORY is not set)"
    if (
        want.memory_mib
        and probe.memory_mib is not None
        and abs(probe.memory_mib - want.memory_mib) > want.memory_mib * 0.05
    ):
        return f"nvidia-smi shows {probe.memory_mib} MiB, the plan promised {want.memory_mib} MiB ({want.note})"
    return None


def gpu_nodes(plan: Plan) -> dict[str, list[GpuAssignment]]:
    nodes: dict[str, list[GpuAssignment]] = {}
    for gpu in plan.gpus:
        nodes.setdefault(gpu.vm, []).append(gpu)
    return nodes


def promised_shares(plan: Plan) -> dict[str, dict[str, int]]:
    """node -> what its device plugin must advertise (the plan's figures)."""
    return {node: node_resources([g.sharing for g in gpus]) for node, gpus in gpu_nodes(plan).items()}
