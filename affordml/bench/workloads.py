"""The built-in workloads, as data: what each one is and its sizes per device. The cuda sizes are the ones measured
on one H200 (docs/gpu-sharing.md); the cpu sizes are small, so that CI runs the same orchestration in seconds."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Workload:
    name: str
    label: str
    sizes: dict[str, dict[str, int]]  # device -> sizes the worker reads
    steps_per_batch: dict[str, int] = field(default_factory=lambda: {"cpu": 1, "cuda": 10})

    def spec(self, device: str, seconds: float) -> dict:
        """What worker.py reads: the kind, the device, the sizes, how long to count steps."""
        return {
            "kind": self.name,
            "device": device,
            "seconds": seconds,
            "sizes": self.sizes[device],
            "steps_per_batch": self.steps_per_batch[device],
            "warmup_steps": 2 if device == "cpu" else 30,
        }


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "mlp",
            "small MLP training step (launch-bound: leaves a big GPU mostly idle)",
            {
                "cuda": {"batch": 64, "inputs": 512, "hidden": 1024, "outputs": 10},
                "cpu": {"batch": 16, "inputs": 32, "hidden": 64, "outputs": 10},
            },
        ),
        Workload(
            "cnn",
            "CNN training step on 32x32 images, batch 128",
            {
                "cuda": {"batch": 128, "side": 32, "outputs": 10},
                "cpu": {"batch": 4, "side": 10, "filters": 4, "outputs": 10},
            },
        ),
        Workload(
            "matmul",
            "saturating matmul (8192x8192 bf16: fills the GPU on its own)",
            {"cuda": {"n": 8192}, "cpu": {"n": 48}},
        ),
    )
}


def names() -> str:
    return ", ".join(WORKLOADS)
