"""From Prometheus matrices to the report (pure: no I/O). Per owner (a JupyterHub user or a namespace):
GPU-hours (utilisation-weighted: one GPU busy at 100 % for an hour is 1.0), hours holding a GPU, mean
utilisation and memory while holding one, peak memory. Per hour of day: the platform's mean GPU utilisation
and memory used.

A GPU shared by several pods (time-slicing, HAMi) reports its whole utilisation on each of them, so per-owner
figures on a shared GPU add up to more than the GPU did; the per-hour totals count each GPU once."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, tzinfo

from affordml.report.queries import owner


def _points(series: dict) -> list[tuple[float, float]]:
    points = []
    for stamp, value in series.get("values", []):
        number = float(value)
        if number == number and abs(number) != float("inf"):  # NaN and Inf say nothing about use
            points.append((float(stamp), number))
    return points


def per_owner(pod_util: list[dict], pod_memory: list[dict], step_s: int) -> list[dict]:
    util = defaultdict(lambda: defaultdict(float))  # owner -> timestamp -> % (summed over the owner's pods)
    memory = defaultdict(lambda: defaultdict(float))  # owner -> timestamp -> MiB
    for series in pod_util:
        for stamp, value in _points(series):
            util[owner(series.get("metric", {}))][stamp] += value
    for series in pod_memory:
        for stamp, value in _points(series):
            memory[owner(series.get("metric", {}))][stamp] += value
    rows = []
    for who in sorted(set(util) | set(memory)):
        stamps = set(util[who]) | set(memory[who])
        held_s = len(stamps) * step_s
        mem = list(memory[who].values())
        rows.append(
            {
                "owner": who,
                "gpu_hours": round(sum(util[who].values()) / 100 * step_s / 3600, 3),
                "hours_holding_gpu": round(held_s / 3600, 3),
                "mean_util_pct": round(sum(util[who].values()) / len(stamps), 1) if stamps else 0.0,
                "mean_memory_mib": round(sum(mem) / len(stamps), 1) if stamps else 0.0,
                "peak_memory_mib": round(max(mem), 1) if mem else 0.0,
            }
        )
    return sorted(rows, key=lambda row: (-row["gpu_hours"], row["owner"]))


def per_hour(total_util: list[dict], total_memory: list[dict], zone: tzinfo | None) -> list[dict]:
    """24 rows, hour 0..23 in `zone` (None: this machine's local time, daylight saving included); hours without
    samples have None."""
    util = defaultdict(list)
    memory = defaultdict(list)
    for target, matrix in ((util, total_util), (memory, total_memory)):
        for series in matrix:
            for stamp, value in _points(series):
                target[datetime.fromtimestamp(stamp, zone).hour].append(value)
    return [
        {
            "hour": hour,
            "mean_util_pct": round(sum(util[hour]) / len(util[hour]), 1) if util[hour] else None,
            "mean_memory_mib": round(sum(memory[hour]) / len(memory[hour]), 1) if memory[hour] else None,
            "samples": len(util[hour]),
        }
        for hour in range(24)
    ]


def _max_value(matrix: list[dict]) -> int:
    return int(max((value for series in matrix for _, value in _points(series)), default=0))


def build_report(matrices: dict[str, list[dict]], start: float, end: float, step_s: int, zone: tzinfo | None) -> dict:
    total = [value for series in matrices["total_util"] for _, value in _points(series)]
    return {
        "period": {
            "start": datetime.fromtimestamp(start, UTC).isoformat(timespec="seconds"),
            "end": datetime.fromtimestamp(end, UTC).isoformat(timespec="seconds"),
            "step_s": step_s,
            "hours_in": str(datetime.fromtimestamp(end, zone).astimezone(zone).tzname()),
        },
        "gpus": _max_value(matrices["gpus"]),
        "mean_util_pct": round(sum(total) / len(total), 1) if total else None,
        "owners": per_owner(matrices["pod_util"], matrices["pod_memory"], step_s),
        "hours": per_hour(matrices["total_util"], matrices["total_memory"], zone),
    }
