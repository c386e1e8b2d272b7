"""The gpu phase's Helm releases, in install order (data). Removal runs in reverse."""

from __future__ import annotations

from affordml.helm import Release

# The monitoring CRDs (ServiceMonitor, PodMonitor, ...) come from kube-prometheus-stack's charts/crds. They are
# applied through the API (server-side apply) before the operator, not installed as a release of that subchart:
# a Helm release stores its chart in a Secret, and this one is over the API's 1 MiB limit (measured: "Secret
# sh.helm.release.v1.monitoring-crds.v1 is invalid: data: Too long").
MONITORING_CHART = "chart/kube-prometheus-stack"
MONITORING_CRDS_SUBCHART = "charts/crds"  # its crds/ folder holds the CRD files
GPU_OPERATOR = Release(
    "gpu-operator",
    "gpu-operator",
    "chart/gpu-operator",
    values=("gpu/gpu-operator-values.yaml",),
    timeout_s=900,  # the driver container compiles the kernel module in the VM
    # helm installs these once and never upgrades them; the chart's pre-upgrade hook Job (operator.upgradeCRD)
    # re-applies only four of them (not resource.nvidia.com's ComputeDomain CRDs), so the phase applies them all
    crd_folders=("crds", "charts/node-feature-discovery/crds"),
    fix_hint="look at the operator's pods: `kubectl --kubeconfig secrets/kubeconfig -n gpu-operator get pods` "
    "(the driver pod's log says why the driver did not load)",
)
RUNTIME_CLASS = "nvidia"  # operator.runtimeClass in the operator's values; HAMi's devicePlugin.runtimeClassName
RUNTIME_CLASS_TIMEOUT_S = 900
HAMI = Release(
    "hami",
    "kube-system",
    "chart/hami",
    values=("gpu/hami-values.yaml",),
    timeout_s=600,
    fix_hint="look at HAMi's pods: `kubectl --kubeconfig secrets/kubeconfig -n kube-system get pods -l "
    "app.kubernetes.io/name=hami`",
)


def gpu_releases(hami: bool) -> list[Release]:
    """The operator first (it creates the nvidia RuntimeClass), HAMi after it (its device plugin runs under that
    RuntimeClass). The monitoring CRDs go in before both (see MONITORING_CHART)."""
    return [GPU_OPERATOR, *([HAMI] if hami else [])]
