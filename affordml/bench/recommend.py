"""From the measured rows to one mode, its number of jobs, the reason, and the affordml.yaml lines that apply it.

The thresholds come from what was measured on one H200 (docs/gpu-sharing.md): a GPU-filling matmul gained nothing
from sharing (0.93x time-slicing, 1.00x MPS at 4 jobs), so sharing must gain at least SHARING_GAIN_FLOOR to be worth
it; MPS beat time-slicing by 1.4-1.6x at 4-8 small jobs (9.01x against 5.76x at 8), so MPS must beat the best
fault-isolating mode by MPS_OVER_ISOLATING before its one shared context (one crash ends every client) is chosen
for mixed work."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import yaml

from affordml.bench.metrics import Blast, Row

SHARING_GAIN_FLOOR = 1.10
MPS_OVER_ISOLATING = 1.20
FAIRNESS_FLOOR = 0.80  # below it one job starved the others: the row is not a fair share of the GPU
ROLES = ("any", "notebooks", "training", "inference")
ISOLATING = ("time-slicing", "mig", "hami")  # each job keeps its own context (MIG: its own hardware slice)
CONFIG_LIMITS = {"time-slicing": (2, 64), "mps": (2, 48), "hami": (2, 64)}  # affordml's config model bounds


@dataclass(frozen=True)
class Recommendation:
    mode: str
    jobs: int
    reason: str
    sharing: dict  # the gpu.sharing (or per_gpu entry) mapping
    config_lines: str
    caveat: str = ""
    evidence: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def recommend(
    rows: list[Row],
    blasts: list[Blast],
    role: str = "any",
    stand_in: bool = False,
    gpu_address: str | None = None,
) -> Recommendation:
    best = _best_per_mode(rows)
    died = {b.mode: b.others_died for b in blasts}
    crash_runs = {b.mode: b for b in blasts}
    caveat = (
        "CPU stand-in: these figures exercise the orchestration and the rules; they say nothing about a GPU"
        if stand_in
        else ""
    )
    top = max(best.values(), key=lambda r: r.ratio, default=None)
    if top is None or top.ratio < SHARING_GAIN_FLOOR:
        gained = f"at most {top.ratio:.2f}x" if top else "nothing measurable"
        reason = (
            f"sharing gained {gained} over one job alone (< {SHARING_GAIN_FLOOR:.2f}x): the job fills the device, "
            "so give each job the whole GPU (on an H200 a GPU-filling matmul measured 0.93x time-slicing, 1.00x MPS)"
        )
        return _made("exclusive", 1, reason, caveat, gpu_address, best, died)
    isolating = [r for m, r in best.items() if m in ISOLATING and died.get(m, 0) == 0 and r.ratio >= SHARING_GAIN_FLOOR]
    safe = max(isolating, key=lambda r: r.ratio, default=None)
    mps = best.get("mps")
    if role in ("training", "inference"):
        if safe is None:
            reason = f"role {role} needs a crash to end only its own job, and no fault-isolating mode gained here"
            return _made("exclusive", 1, reason, caveat, gpu_address, best, died)
        return _made(safe.mode, safe.n, _isolated_reason(safe, mps, crash_runs, role), caveat, gpu_address, best, died)
    if mps and (safe is None or mps.ratio >= safe.ratio * MPS_OVER_ISOLATING or (role == "notebooks" and mps is top)):
        return _made("mps", mps.n, _mps_reason(mps, safe, crash_runs, role), caveat, gpu_address, best, died)
    choice = safe or top
    return _made(
        choice.mode, choice.n, _isolated_reason(choice, mps, crash_runs, role), caveat, gpu_address, best, died
    )


def _best_per_mode(rows: list[Row]) -> dict[str, Row]:
    """Per sharing mode, its row with the most throughput among those where every job finished and shared fairly."""
    best: dict[str, Row] = {}
    for row in rows:
        if row.mode == "exclusive" or row.n < 2 or row.ratio is None or row.jobs_ok < row.n:
            continue
        if (row.fairness or 0) < FAIRNESS_FLOOR:
            continue
        if row.mode not in best or row.ratio > best[row.mode].ratio:
            best[row.mode] = row
    return best


def _crash_said(run: Blast) -> str:
    return f"one crash among {run.n} jobs ended {run.others_died} of the other {run.others}"


def _mps_reason(mps: Row, safe: Row | None, crash_runs: dict[str, Blast], role: str) -> str:
    versus = f", {mps.ratio / safe.ratio:.2f}x {safe.mode}'s best ({safe.ratio:.2f}x at {safe.n})" if safe else ""
    run = crash_runs.get("mps")
    blast = f"{_crash_said(run)} here" if run else "one crash ends every client (one shared GPU context)"
    why = (
        "role notebooks: throughput first"
        if role == "notebooks"
        else f">= {MPS_OVER_ISOLATING:.2f}x the best isolating mode"
    )
    return (
        f"MPS gave the most: {mps.ratio:.2f}x one job alone at {mps.n} jobs{versus} ({why}); each client's memory "
        f"is limited to 1/{mps.n}; trade-off: {blast} (set role: training for time-slicing)"
    )


def _isolated_reason(row: Row, mps: Row | None, crash_runs: dict[str, Blast], role: str) -> str:
    what = {
        "time-slicing": "each job keeps its own GPU context, so a crash ends only itself; memory is not isolated",
        "mig": "each job has its own hardware slice: memory, compute and faults isolated",
        "hami": "each job keeps its own context and HAMi limits its memory and compute",
    }[row.mode]
    blast = f"; measured: {_crash_said(crash_runs[row.mode])}" if row.mode in crash_runs else ""
    if mps and role not in ("training", "inference"):
        versus = f" (MPS gave {mps.ratio:.2f}x, not {MPS_OVER_ISOLATING:.2f} times this: not worth one shared context)"
    elif mps:
        versus = f" (role {role}: MPS's shared context is ruled out although it gave {mps.ratio:.2f}x)"
    else:
        versus = ""
    return f"{row.mode} gave {row.ratio:.2f}x one job alone at {row.n} jobs{versus}; {what}{blast}"


def _made(mode, jobs, reason, caveat, gpu_address, best, died) -> Recommendation:
    sharing = sharing_config(mode, jobs)
    return Recommendation(
        mode=mode,
        jobs=jobs,
        reason=reason,
        sharing=sharing,
        config_lines=config_lines(sharing, gpu_address),
        caveat=caveat,
        evidence={
            m: {"jobs": r.n, "ratio": r.ratio, "fairness": r.fairness, "others_died": died.get(m)}
            for m, r in best.items()
        },
    )


def sharing_config(mode: str, jobs: int) -> dict:
    """The gpu.sharing mapping affordml's config model reads for this mode and number of jobs."""
    if mode in CONFIG_LIMITS:
        low, high = CONFIG_LIMITS[mode]
        jobs = max(low, min(high, jobs))
    if mode == "time-slicing":
        return {"mode": mode, "replicas": jobs}
    if mode == "mps":
        return {"mode": mode, "clients": jobs}
    if mode == "hami":
        share = max(1, 100 // jobs)
        return {"mode": mode, "split": jobs, "memory_percent": share, "cores_percent": share}
    if mode == "mig":
        return {"mode": mode, "layout": "all-balanced"}
    return {"mode": "exclusive"}


def config_lines(sharing: dict, gpu_address: str | None = None) -> str:
    """The affordml.yaml lines: gpu.sharing, or gpu.per_gpu.<address> for one GPU of several."""
    section = {"per_gpu": {gpu_address: sharing}} if gpu_address else {"sharing": sharing}
    return yaml.safe_dump({"gpu": section}, sort_keys=False, default_flow_style=False)
