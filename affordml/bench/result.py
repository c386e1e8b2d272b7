"""What one `affordml bench sharing` run found: rows per mode and N, the crash runs, the modes it could not run and
why, and the recommendation."""

from __future__ import annotations

from dataclasses import dataclass, field

from affordml.bench.metrics import Blast, Row

MODES = ("exclusive", "time-slicing", "mps", "mig", "hami")


@dataclass
class Device:
    kind: str  # cpu | cuda
    name: str
    memory_mib: int | None = None
    mig_devices: tuple[str, ...] = ()  # MIG device UUIDs that exist now (nvidia-smi -L)
    mig_capable: bool = False

    @property
    def stand_in(self) -> bool:
        return self.kind == "cpu"


@dataclass
class BenchResult:
    where: str  # local | cluster
    device: Device
    workload: str
    seconds: float
    counts: list[int]
    rows: list[Row] = field(default_factory=list)
    blasts: list[Blast] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    recommendation: object | None = None  # recommend.Recommendation

    def to_dict(self) -> dict:
        return {
            "where": self.where,
            "device": {
                "kind": self.device.kind,
                "name": self.device.name,
                "memory_mib": self.device.memory_mib,
                "mig_devices": list(self.device.mig_devices),
                "stand_in": self.device.stand_in,
            },
            "workload": self.workload,
            "seconds": self.seconds,
            "counts": self.counts,
            "rows": [r.to_dict() for r in self.rows],
            "blast_radius": [b.to_dict() for b in self.blasts],
            "skipped": self.skipped,
            "recommendation": self.recommendation.to_dict() if self.recommendation else None,
        }
