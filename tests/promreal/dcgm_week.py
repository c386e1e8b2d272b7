"""A week of dcgm-exporter samples as the platform's Prometheus stores them, written as OpenMetrics for
`promtool tsdb create-blocks-from openmetrics`, and one scrape answer in the exporter's own text format.

Metric and label names follow dcgm-exporter 4.x (internal/pkg/rendermetrics/render_metrics.go and
transformation/const.go at tag 4.5.3-4.8.2): gpu, UUID, pci_bus_id, device, modelName, Hostname, the driver
version label, and namespace/pod/container of the pod holding the GPU. Stored through the GPU Operator's
ServiceMonitor (honorLabels false), the exporter's namespace/pod/container become exported_* beside the target's.

The pattern (UTC): GPU 0 runs namespace `ml`'s pod train-a on weekdays 09:00-17:00 at 80 % with 30,000 MiB;
GPU 1 runs JupyterHub user alice's server every day 19:00-23:00 at 50 % with 12,000 MiB; idle otherwise
(0 %, 1 MiB)."""

from __future__ import annotations

from datetime import UTC, datetime

RAW_STEP_S = 60
GPUS = (
    {"gpu": "0", "UUID": "GPU-6f1f2c0e-0000-4c1a-9a0e-000000000000", "pci_bus_id": "00000000:00:05.0"},
    {"gpu": "1", "UUID": "GPU-6f1f2c0e-1111-4c1a-9a0e-111111111111", "pci_bus_id": "00000000:00:06.0"},
)
COMMON = {"modelName": "NVIDIA H200", "Hostname": "worker-1", "DCGM_FI_DRIVER_VERSION": "580.95.05"}
TARGET = {  # what the ServiceMonitor's target adds (the exporter's own pod)
    "container": "nvidia-dcgm-exporter",
    "endpoint": "gpu-metrics",
    "instance": "10.233.64.7:9400",
    "job": "nvidia-dcgm-exporter",
    "namespace": "gpu-operator",
    "pod": "nvidia-dcgm-exporter-x7k2p",
    "service": "nvidia-dcgm-exporter",
}
ML_POD = {"exported_namespace": "ml", "exported_pod": "train-a", "exported_container": "trainer"}
ALICE_POD = {"exported_namespace": "jupyterhub", "exported_pod": "jupyter-alice", "exported_container": "notebook"}


def workload(gpu: int, stamp: int) -> tuple[dict, float, float]:
    """(pod labels or {}, utilisation %, memory MiB) on a GPU at a time."""
    moment = datetime.fromtimestamp(stamp, UTC)
    if gpu == 0 and moment.weekday() < 5 and 9 <= moment.hour < 17:
        return ML_POD, 80.0, 30000.0
    if gpu == 1 and 19 <= moment.hour < 23:
        return ALICE_POD, 50.0, 12000.0
    return {}, 0.0, 1.0


def _labels(labels: dict) -> str:
    return ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))


def openmetrics(start: int, end: int) -> str:
    """Every raw sample in [start, end], grouped by metric family, each series in time order."""
    lines = []
    for metric, index in (("DCGM_FI_DEV_GPU_UTIL", 1), ("DCGM_FI_DEV_FB_USED", 2)):
        lines.append(f"# TYPE {metric} gauge")
        series: dict[str, list[str]] = {}
        for gpu, gpu_labels in enumerate(GPUS):
            for stamp in range(start, end + 1, RAW_STEP_S):
                answer = workload(gpu, stamp)
                labels = _labels({**COMMON, **TARGET, **gpu_labels, **answer[0], "device": f"nvidia{gpu}"})
                series.setdefault(labels, []).append(f"{metric}{{{labels}}} {answer[index]} {stamp}")
        for samples in series.values():
            lines += samples
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def exporter_scrape() -> str:
    """One answer of the exporter's /metrics (its own labels: namespace/pod/container of the workload)."""
    lines = []
    for metric, help_text, value in (
        ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", 80),
        ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", 30000),
    ):
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
        gpu = GPUS[0]
        lines.append(
            f'{metric}{{gpu="{gpu["gpu"]}",UUID="{gpu["UUID"]}",pci_bus_id="{gpu["pci_bus_id"]}",device="nvidia0",'
            f'modelName="NVIDIA H200",Hostname="worker-1",DCGM_FI_DRIVER_VERSION="580.95.05",'
            f'container="trainer",namespace="ml",pod="train-a"}} {value}'
        )
    return "\n".join(lines) + "\n"
