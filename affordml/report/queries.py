"""The PromQL the report asks (data). Metric and label names are those dcgm-exporter 4.x emits (the GPU Operator
v26.7.0 deploys exporter 4.6.0-4.8.3): DCGM_FI_DEV_GPU_UTIL (%), DCGM_FI_DEV_FB_USED (MiB), each sample labelled
with the GPU (gpu, UUID, modelName, Hostname) and, with DCGM_EXPORTER_KUBERNETES=true (the operator sets it),
the pod holding the GPU (namespace, pod, container).

The operator's ServiceMonitor scrapes with honorLabels false (its default), so Prometheus keeps its own target
labels `namespace`/`pod` (the exporter's pod) and stores the exporter's as `exported_namespace`/`exported_pod`.
A GPU no pod holds has no exported_namespace: it counts in the totals, not for any user."""

from __future__ import annotations

UTIL = "DCGM_FI_DEV_GPU_UTIL"
MEMORY_MIB = "DCGM_FI_DEV_FB_USED"
NAMESPACE = "exported_namespace"
POD = "exported_pod"

WORKLOAD = f'{NAMESPACE}!=""'

QUERIES = {
    # per pod: the GPU utilisation (%) and memory (MiB) of the GPUs each pod holds
    "pod_util": f"sum by ({NAMESPACE}, {POD}) ({UTIL}{{{WORKLOAD}}})",
    "pod_memory": f"sum by ({NAMESPACE}, {POD}) ({MEMORY_MIB}{{{WORKLOAD}}})",
    # the whole platform, each GPU once (a GPU shared by N pods is reported N times, once per pod)
    "total_util": f"avg(max by (UUID) ({UTIL}))",
    "total_memory": f"sum(max by (UUID, GPU_I_ID) ({MEMORY_MIB}))",  # each MIG slice (GPU_I_ID) has its own
    "gpus": f"count(max by (UUID) ({UTIL}))",
}

# JupyterHub (release `jupyterhub`) runs each user's server as pod jupyter-<user> in namespace jupyterhub
JUPYTERHUB_NAMESPACE = "jupyterhub"
JUPYTERHUB_POD_PREFIX = "jupyter-"


def owner(labels: dict) -> str:
    """Who a pod's use counts for: a JupyterHub user by name, anything else by its namespace."""
    namespace = labels.get(NAMESPACE, "")
    pod = labels.get(POD, "")
    if namespace == JUPYTERHUB_NAMESPACE and pod.startswith(JUPYTERHUB_POD_PREFIX):
        user = pod[len(JUPYTERHUB_POD_PREFIX) :].split("--", 1)[0]  # a named server is jupyter-<user>--<server>
        return f"{user} (jupyterhub)"
    return namespace or "(no namespace)"
