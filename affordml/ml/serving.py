"""Inference serving: the releases that run KServe (data, in install order) and the sample InferenceService's
parts the plan decides (which GPU share it asks for, through which node the LAN reaches it).

KServe runs in Standard (raw deployment) mode: a Deployment and a ClusterIP Service per InferenceService, no
Knative, no Istio. This cluster has no ingress controller or Gateway (Kubespray's addons are off, see
templates/kubespray/addons.yml.j2), so KServe is told to create no Ingress (one that nothing serves would only
mislead) and its URLs are the in-cluster Service names; the LAN reaches a service through a NodePort Service on
the workers' floating IPs, whose NodePort range the cloud phase's security group opens (docs/serving.md).
"""

from __future__ import annotations

from affordml.helm import Release

CERT_MANAGER = Release(
    "cert-manager",
    "cert-manager",
    "chart/cert-manager",
    values=("ml/cert-manager-values.yaml",),
    timeout_s=600,
    fix_hint="look at cert-manager's pods: `kubectl --kubeconfig secrets/kubeconfig -n cert-manager get pods`",
)
KSERVE_CRD = Release(
    "kserve-crd",
    "kserve",
    "chart/kserve-crd",
    timeout_s=300,
    keep_crds=True,  # the users' InferenceServices outlive `ml.inference: false`
    fix_hint="check the API server answers: `kubectl --kubeconfig secrets/kubeconfig get crd | grep kserve`",
)
KSERVE = Release(
    "kserve",
    "kserve",
    "chart/kserve-resources",
    values=("ml/kserve-values.yaml",),
    timeout_s=600,
    fix_hint="look at the KServe controller: `kubectl --kubeconfig secrets/kubeconfig -n kserve get pods` (its "
    "webhook certificate comes from cert-manager: `kubectl -n kserve get certificate`)",
)
# cert-manager first: kserve-resources holds a cert-manager Issuer and Certificate (its webhook's TLS);
# kserve-crd before kserve: the chart's ClusterStorageContainer and the controller need KServe's CRDs.
SERVING_RELEASES: list[Release] = [CERT_MANAGER, KSERVE_CRD, KSERVE]

SAMPLE_NAME = "affordml-sample"
SAMPLE_NAMESPACE = "ml"
SAMPLE_LAN_SERVICE = f"{SAMPLE_NAME}-lan"
# KServe's own iris example (docs/samples at v0.20.0): a scikit-learn model fetched from a public bucket when the
# predictor starts, so the sample needs internet access from the worker VM.
SAMPLE_STORAGE_URI = "gs://kfserving-examples/models/sklearn/1.0/model"
SAMPLE_INPUT = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}


def share_limits(sharing) -> dict[str, str]:
    """The resources one pod requests to get one share of a GPU under this sharing decision."""
    if sharing.mode == "mig":
        smallest = min(sharing.mig_instances, key=lambda profile: int(profile.split("g", 1)[0]))
        return {f"nvidia.com/mig-{smallest}": "1"}
    if sharing.mode == "hami":
        return {
            "nvidia.com/gpu": "1",
            "nvidia.com/gpumem-percentage": str(sharing.hami_memory_percent),
            "nvidia.com/gpucores": str(sharing.hami_cores_percent),
        }
    return {"nvidia.com/gpu": "1"}


def _role(config, address: str) -> str | None:
    policy = config.gpu.per_gpu.get(address) or config.gpu.sharing
    return getattr(policy, "role", None)


def inference_share(plan, config) -> dict:
    """The GPU share the sample asks for: a GPU whose configured role is inference, else the plan's first GPU;
    on a plan without GPUs, none (the sample then runs on CPU). `node`: the VM whose floating IP the URL names."""
    workers = [vm.name for vm in plan.vms if vm.role == "worker"]
    if not plan.gpus:
        return {"limits": {}, "node": workers[0] if workers else "", "gpu": "", "mode": "cpu"}
    chosen = next((g for g in plan.gpus if _role(config, g.address) == "inference"), plan.gpus[0])
    return {
        "limits": share_limits(chosen.sharing),
        "node": chosen.vm,
        "gpu": f"{chosen.address} {chosen.name}",
        "mode": chosen.sharing.mode,
    }


def sample_context(plan, config) -> dict:
    """What templates/ml/serving-sample.yaml.j2 reads."""
    return {
        "name": SAMPLE_NAME,
        "namespace": SAMPLE_NAMESPACE,
        "lan_service": SAMPLE_LAN_SERVICE,
        "storage_uri": SAMPLE_STORAGE_URI,
        "share": inference_share(plan, config),
    }
