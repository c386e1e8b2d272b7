"""The gpu phase's Helm releases, in install order (data). Removal runs in reverse."""

from __future__ import annotations

from affordml.helm import Release

MONITORING_CRDS = Release(
    "monitoring-crds",
    "monitoring",
    "chart/kube-prometheus-stack",
    chart_subdir="charts/crds",
    timeout_s=300,
    fix_hint="the monitoring CRDs did not install: check `kubectl get crd servicemonitors.monitoring.coreos.com`",
)
GPU_OPERATOR = Release(
    "gpu-operator",
    "gpu-operator",
    "chart/gpu-operator",
    values=("gpu/gpu-operator-values.yaml",),
    timeout_s=900,  # the driver container compiles the kernel module in the VM
    fix_hint="look at the operator's pods: `kubectl --kubeconfig secrets/kubeconfig -n gpu-operator get pods` "
    "(the driver pod's log says why the driver did not load)",
)
HAMI = Release(
    "hami",
    "kube-system",
    "chart/hami",
    values=("gpu/hami-values.yaml",),
    timeout_s=600,
    fix_hint="look at HAMi's pods: `kubectl --kubeconfig secrets/kubeconfig -n kube-system get pods -l "
    "app.kubernetes.io/name=hami`",
)


def gpu_releases(monitoring: bool, hami: bool) -> list[Release]:
    """Monitoring CRDs first when monitoring is on: the GPU Operator skips dcgm-exporter's ServiceMonitor when its
    CRD is absent at reconcile time. HAMi last: it needs the runtime class
    the operator's toolkit creates."""
    return [
        *([MONITORING_CRDS] if monitoring else []),
        GPU_OPERATOR,
        *([HAMI] if hami else []),
    ]
