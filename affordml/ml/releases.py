"""The ml phase's Helm releases, in install order (data). Removal runs in reverse."""

from __future__ import annotations

from affordml.helm import Release

MONITORING = Release(
    "monitoring",
    "monitoring",
    "chart/kube-prometheus-stack",
    values=("ml/kube-prometheus-stack-values.yaml",),
    timeout_s=900,
    fix_hint="look at the monitoring pods: `kubectl --kubeconfig secrets/kubeconfig -n monitoring get pods`",
)
KUEUE = Release(
    "kueue",
    "kueue-system",
    "chart/kueue",
    values=("ml/kueue-values.yaml",),
    timeout_s=600,
    # kube-controller-manager's clusterrole-aggregation controller writes Kueue's aggregated ClusterRoles with
    # server-side apply and re-creates one helm just deleted, so `uninstall --wait` never ends (seen on the real
    # control plane: "ClusterRole//kueue-batch-user-role still exists" after 600 s). Kueue's pods go either way.
    wait_on_removal=False,
    keep_crds=True,  # the users' ClusterQueues, LocalQueues and Workloads outlive `ml.training_queue: false`
    fix_hint="look at Kueue's pods: `kubectl --kubeconfig secrets/kubeconfig -n kueue-system get pods`",
)
JUPYTERHUB = Release(
    "jupyterhub",
    "jupyterhub",
    "chart/jupyterhub",
    values=("ml/jupyterhub-values.yaml",),  # and the private file with the admin's password (affordml.ml.hub)
    timeout_s=900,  # the hook pulls the notebook image on every node before the hub starts
    fix_hint="look at JupyterHub's pods: `kubectl --kubeconfig secrets/kubeconfig -n jupyterhub get pods` "
    "(a hub pod Pending on its volume: `kubectl get pvc -n jupyterhub` and the default StorageClass)",
)

# config `ml.<component>` -> what it turns on
COMPONENTS = ("monitoring", "training_queue", "inference", "jupyterhub")


def ml_releases(wanted: dict) -> list[Release]:
    """Monitoring first (the others' ServiceMonitors need its CRDs and operator), then the queue, the serving
    stack, and JupyterHub last: its notebook profiles use what the others set up."""
    from affordml.ml.serving import SERVING_RELEASES

    releases = [MONITORING] if wanted.get("monitoring") else []
    releases += [KUEUE] if wanted.get("training_queue") else []
    releases += list(SERVING_RELEASES) if wanted.get("inference") else []
    releases += [JUPYTERHUB] if wanted.get("jupyterhub") else []
    return releases


def all_ml_releases() -> list[Release]:
    return ml_releases(dict.fromkeys(COMPONENTS, True))
