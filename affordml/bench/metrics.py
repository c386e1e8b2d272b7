"""The figures of one run of N jobs: aggregate throughput, its ratio to one job alone, latency percentiles,
memory per job, Jain's fairness index; and the blast radius of a crash run."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class JobResult:
    """One job's outcome: its figures when it finished, else how it ended."""

    steps: int = 0
    seconds: float = 0.0
    latency_ms: tuple[float, ...] = ()
    memory_mib: float | None = None
    exit_code: int | None = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.seconds > 0

    @property
    def rate(self) -> float:
        return self.steps / self.seconds if self.ok else 0.0


@dataclass(frozen=True)
class Row:
    mode: str
    n: int
    jobs_ok: int
    throughput: float  # steps/s, summed over the jobs
    ratio: float | None  # throughput / one job alone (exclusive, N = 1)
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    memory_mib: float | None  # the largest job's peak
    fairness: float | None  # Jain's index over the jobs' rates: 1 = equal shares, 1/N = one job got everything
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Blast:
    """One job crashes on purpose among n: how many of the n - 1 others died with it."""

    mode: str
    n: int
    crashed: bool  # the crash job itself ended with the fault
    others: int
    others_died: int
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def jain(rates: list[float]) -> float | None:
    """Jain's fairness index (sum x)^2 / (n * sum x^2)."""
    if not rates or not any(rates):
        return None
    return sum(rates) ** 2 / (len(rates) * sum(r * r for r in rates))


def row(mode: str, jobs: list[JobResult], baseline: float | None, note: str = "") -> Row:
    done = [j for j in jobs if j.ok]
    throughput = sum(j.rate for j in done)
    latencies = [v for j in done for v in j.latency_ms]
    memories = [j.memory_mib for j in done if j.memory_mib is not None]
    return Row(
        mode=mode,
        n=len(jobs),
        jobs_ok=len(done),
        throughput=round(throughput, 2),
        ratio=round(throughput / baseline, 2) if baseline else None,
        latency_p50_ms=_round(percentile(latencies, 50)),
        latency_p95_ms=_round(percentile(latencies, 95)),
        memory_mib=max(memories) if memories else None,
        fairness=_round(jain([j.rate for j in jobs]), 3),
        note=note,
    )


def blast(mode: str, crash_job: JobResult, others: list[JobResult], note: str = "") -> Blast:
    return Blast(
        mode=mode,
        n=len(others) + 1,
        crashed=not crash_job.ok,
        others=len(others),
        others_died=sum(1 for j in others if not j.ok),
        note=note,
    )


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)
