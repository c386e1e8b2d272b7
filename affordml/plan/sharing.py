"""How each GPU is shared, with the reason. Built on figures measured on one H200 (docs/gpu-sharing.md):
8 small training jobs ran 5.8x (time-slicing) to 9.0x (MPS) the throughput of one job holding the GPU;
a job that fills the GPU gained nothing and lost 7 % under time-slicing; MPS enforced per-client memory limits."""

from __future__ import annotations

from affordml.config import model as cfg
from affordml.errors import PlanError
from affordml.facts.model import Gpu
from affordml.plan.model import SharingDecision

MPS_SLOT_TARGET_MIB = 4096  # a small training job or a notebook fits in ~4 GiB
MPS_MAX_AUTO_CLIENTS = 8  # the largest N measured (9.0x at N=8)

# mig-parted layouts per memory class: name -> MIG instances (NVIDIA's default mig-parted config).
_MIG_CLASSES: list[tuple[int, dict[str, list[str]]]] = [
    (
        30_000,
        {
            "all-1g.6gb": ["1g.6gb"] * 4,
            "all-2g.12gb": ["2g.12gb"] * 2,
            "all-4g.24gb": ["4g.24gb"],
            "all-balanced": ["1g.6gb", "1g.6gb", "2g.12gb"],
        },
    ),
    (
        50_000,
        {
            "all-1g.5gb": ["1g.5gb"] * 7,
            "all-2g.10gb": ["2g.10gb"] * 3,
            "all-3g.20gb": ["3g.20gb"] * 2,
            "all-7g.40gb": ["7g.40gb"],
            "all-balanced": ["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"],
        },
    ),
    (
        90_000,
        {
            "all-1g.10gb": ["1g.10gb"] * 7,
            "all-2g.20gb": ["2g.20gb"] * 3,
            "all-3g.40gb": ["3g.40gb"] * 2,
            "all-7g.80gb": ["7g.80gb"],
            "all-balanced": ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"],
        },
    ),
    (
        110_000,
        {
            "all-1g.12gb": ["1g.12gb"] * 7,
            "all-2g.24gb": ["2g.24gb"] * 3,
            "all-3g.47gb": ["3g.47gb"] * 2,
            "all-7g.94gb": ["7g.94gb"],
            "all-balanced": ["1g.12gb", "1g.12gb", "2g.24gb", "3g.47gb"],
        },
    ),
    (
        160_000,
        {
            "all-1g.18gb": ["1g.18gb"] * 7,
            "all-2g.35gb": ["2g.35gb"] * 3,
            "all-3g.71gb": ["3g.71gb"] * 2,
            "all-7g.141gb": ["7g.141gb"],
            "all-balanced": ["1g.18gb", "1g.18gb", "2g.35gb", "3g.71gb"],
        },
    ),
    (
        10**9,
        {
            "all-1g.23gb": ["1g.23gb"] * 7,
            "all-2g.45gb": ["2g.45gb"] * 3,
            "all-3g.90gb": ["3g.90gb"] * 2,
            "all-7g.180gb": ["7g.180gb"],
            "all-balanced": ["1g.23gb", "1g.23gb", "2g.45gb", "3g.90gb"],
        },
    ),
]


def mig_layouts(memory_mib: int | None, profiles: tuple = ()) -> dict[str, list[str]]:
    """mig-parted layouts for the card. Where nvidia-smi listed the card's own profiles (`mig -lgip`), those win:
    one all-<profile> layout per profile, and the table's all-balanced only if the card has all its profiles."""
    memory = memory_mib or 81920
    table = next(layouts for limit, layouts in _MIG_CLASSES if memory < limit)
    if not profiles:
        return table
    names = {p.name for p in profiles}
    layouts = {f"all-{p.name}": [p.name] * p.total for p in profiles if "+" not in p.name and p.total > 0}
    balanced = table["all-balanced"]
    if set(balanced) <= names:
        layouts["all-balanced"] = balanced
    else:
        smallest = min((p for p in profiles if "+" not in p.name and p.total > 0), key=lambda p: p.memory_gib)
        layouts["all-balanced"] = [smallest.name] * smallest.total
    return layouts


def decide(gpu: Gpu, policy, field_path: str) -> SharingDecision:
    """The sharing decision for one GPU under one policy (config model instance)."""
    if isinstance(policy, cfg.Auto):
        return _auto(gpu, policy.role)
    if isinstance(policy, cfg.Exclusive):
        return SharingDecision("exclusive", 1, "configured: one job holds the whole GPU (best for jobs that fill it)")
    if isinstance(policy, cfg.TimeSlicing):
        return SharingDecision(
            "time-slicing",
            policy.replicas,
            f"configured: {policy.replicas} jobs take turns; no memory isolation, so their memory must fit together",
            replicas=policy.replicas,
        )
    if isinstance(policy, cfg.Mps):
        return _mps(gpu, policy.clients, f"configured: MPS with {policy.clients} clients")
    if isinstance(policy, cfg.Mig):
        return _mig(gpu, policy.layout, "configured", field_path)
    if isinstance(policy, cfg.Hami):
        return SharingDecision(
            "hami",
            policy.split,
            f"configured: HAMi, up to {policy.split} jobs, each limited to "
            f"{policy.memory_percent} % memory and {policy.cores_percent} % compute by default",
            replicas=policy.split,
            hami_memory_percent=policy.memory_percent,
            hami_cores_percent=policy.cores_percent,
        )
    raise PlanError(
        f"{field_path}: unknown sharing policy {policy!r}", "use auto, exclusive, time-slicing, mps, mig or hami"
    )


# What each mode isolates, measured on one H200 (docs/gpu-sharing.md): MPS shares one GPU context (9.0x at 8
# small jobs; one client's fault ends every client on that GPU); time-slicing gives each job its own context
# (5.8x; faults isolated, memory not); MIG isolates memory, compute and faults in hardware; HAMi limits each
# pod's memory and compute by intercepting CUDA.
TRAINING_SLOT_TARGET_MIB = 16384  # time-sliced training jobs must fit in memory together
TRAINING_MAX_REPLICAS = 4
HAMI_AUTO_SPLIT = 4


def _auto(gpu: Gpu, role: str = "any") -> SharingDecision:
    if role == "training":
        return _training(gpu)
    if role == "inference":
        if gpu.mig_capable:
            return _mig(gpu, "all-balanced", "auto, inference: MIG isolates memory, compute and faults", "gpu.sharing")
        return SharingDecision(
            "hami",
            HAMI_AUTO_SPLIT,
            f"auto, inference: no MIG on this card, so HAMi: {HAMI_AUTO_SPLIT} services, each held to "
            f"{100 // HAMI_AUTO_SPLIT} % of memory and compute, each in its own context (one crash ends only itself)",
            replicas=HAMI_AUTO_SPLIT,
            hami_memory_percent=100 // HAMI_AUTO_SPLIT,
            hami_cores_percent=100 // HAMI_AUTO_SPLIT,
        )
    if gpu.mig_capable and role != "notebooks":
        return _mig(
            gpu,
            "all-balanced",
            "auto: MIG-capable card, so hardware-isolated slices (memory, compute and faults); trade-off: "
            "slices are fixed sizes and MPS would give more total throughput to many small notebooks",
            "gpu.sharing",
        )
    clients = auto_mps_clients(gpu.memory_mib)
    why = "auto, notebooks" if role == "notebooks" else "auto"
    measured = "MPS measured 9.0x the throughput of one job at 8 small jobs (time-slicing 5.8x)"
    trade_off = (
        "trade-off: all clients share one GPU context, so one job's crash ends every job on this GPU "
        "(set role: training for time-slicing)"
    )
    if not gpu.memory_mib:
        bar = f"; its BAR1 aperture is {gpu.bar1_mib} MiB, which bounds it" if gpu.bar1_mib else ""
        return _mps(
            gpu,
            clients,
            f"{why}: {measured}; this card's memory is unknown (not in affordml's catalog and nvidia-smi did not "
            f"answer{bar}), so only {clients} clients, each limited to 1/{clients} of whatever it has; {trade_off}",
        )
    return _mps(
        gpu,
        clients,
        f"{why}: {measured} and enforces a memory limit per job; {clients} clients of "
        f"~{gpu.memory_mib / clients / 1024:.0f} GiB each fit this card; {trade_off}",
    )


def _training(gpu: Gpu) -> SharingDecision:
    replicas = TRAINING_MAX_REPLICAS
    if gpu.memory_mib:
        replicas = max(2, min(TRAINING_MAX_REPLICAS, gpu.memory_mib // TRAINING_SLOT_TARGET_MIB))
    return SharingDecision(
        "time-slicing",
        replicas,
        f"auto, training: time-slicing gives each of {replicas} jobs its own GPU context, so one job's crash "
        "ends only itself (measured 5.8x at 8 small jobs, against 9.0x for MPS); trade-off: memory is not "
        "isolated, the jobs must fit in it together",
        replicas=replicas,
        memory_per_slot_mib=gpu.memory_mib // replicas if gpu.memory_mib else None,
    )


def auto_mps_clients(memory_mib: int | None) -> int:
    if not memory_mib:
        return 2  # unknown memory: the fewest clients that still share
    return max(2, min(MPS_MAX_AUTO_CLIENTS, memory_mib // MPS_SLOT_TARGET_MIB))


def _mps(gpu: Gpu, clients: int, reason: str) -> SharingDecision:
    per_slot = gpu.memory_mib // clients if gpu.memory_mib else None
    return SharingDecision("mps", clients, reason, replicas=clients, memory_per_slot_mib=per_slot)


def _mig(gpu: Gpu, layout: str, why: str, field_path: str) -> SharingDecision:
    if not gpu.mig_capable:
        raise PlanError(
            f"{field_path}: mig needs a MIG-capable card (A30, A100, H100, H20, H200, B200); {gpu.name} at "
            f"{gpu.address} is not",
            f"set {field_path} to mps or time-slicing",
        )
    layouts = mig_layouts(gpu.memory_mib, gpu.mig_profiles)
    if layout not in layouts:
        raise PlanError(
            f"{field_path}: MIG layout {layout!r} does not exist for {gpu.name}",
            f"use one of: {', '.join(sorted(layouts))}",
        )
    instances = tuple(layouts[layout])
    return SharingDecision(
        "mig",
        len(instances),
        f"{why}: MIG layout {layout} gives {len(instances)} isolated instances"
        + (" (profiles as the card lists them: nvidia-smi mig -lgip)" if gpu.mig_profiles else ""),
        mig_layout=layout,
        mig_instances=instances,
    )


def advertised_resources(decision: SharingDecision) -> dict[str, int]:
    """What the node's device plugin advertises for one GPU under this decision (the scheduler's capacity):
    MPS and time-slicing replicate nvidia.com/gpu, HAMi splits it (deviceSplitCount), MIG (mixed strategy) gives
    one resource per instance profile, exclusive one whole GPU."""
    if decision.mode == "mig":
        counts: dict[str, int] = {}
        for instance in decision.mig_instances:
            counts[f"nvidia.com/mig-{instance}"] = counts.get(f"nvidia.com/mig-{instance}", 0) + 1
        return counts
    if decision.mode in ("mps", "time-slicing", "hami"):
        return {"nvidia.com/gpu": decision.replicas or decision.slots}
    return {"nvidia.com/gpu": 1}


def node_resources(decisions: list[SharingDecision]) -> dict[str, int]:
    """The sum over the GPUs of one node."""
    total: dict[str, int] = {}
    for decision in decisions:
        for name, count in advertised_resources(decision).items():
            total[name] = total.get(name, 0) + count
    return total
