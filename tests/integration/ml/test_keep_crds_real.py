"""Turning `ml.training_queue` / `ml.inference` off keeps the users' objects, on the real control plane (outside CI;
tests/kubecp/README.md, tests/gpustack/README.md): Kueue v0.19.2 and KServe v0.20.0 installed by the ml phase with
the real helm, a user's ClusterQueue, LocalQueue and InferenceService made; the switches off -> the releases go, their
CRDs (marked keep by affordml's post-renderer) and the users' objects stay, the after-hours CronJobs and Kueue's
ClusterRoles go; on again -> helm adopts the kept CRDs, the objects are the same; `destroy --only ml`'s step keeps
them too; --delete-data's step deletes the CRDs. Also recorded: what a kept Kueue CRD, whose conversion webhook's
Service is gone, answers to reads of its stored version and of the other one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.integration.ml.test_upgrade_ml_charts_real import stand_in_hooks

REPO = Path(__file__).resolve().parents[3]
FIXTURE = REPO / "tests" / "fixtures" / "hardware" / "desktop-rtx4090.json"
ML = {"monitoring": False, "training_queue": True, "inference": True, "jupyterhub": False}
GROUPS = ("kueue.x-k8s.io", "serving.kserve.io")
CQ_SPEC = {
    "namespaceSelector": {},
    "resourceGroups": [
        {
            "coveredResources": ["cpu"],
            "flavors": [{"name": "default-flavor", "resources": [{"name": "cpu", "nominalQuota": "2"}]}],
        }
    ],
}
ISVC_SPEC = {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "gs://bucket/model"}}}
# (group, version, plural, namespace, name, kind, spec)
USERS = [
    ("kueue.x-k8s.io", "v1beta2", "clusterqueues", None, "team-a-cq", "ClusterQueue", CQ_SPEC),
    ("kueue.x-k8s.io", "v1beta2", "localqueues", "ml", "team-a", "LocalQueue", {"clusterQueue": "team-a-cq"}),
    ("serving.kserve.io", "v1beta1", "inferenceservices", "ml", "team-a", "InferenceService", ISVC_SPEC),
]


def make_users(api) -> None:
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    for group, version, plural, namespace, name, kind, spec in USERS:
        body = {"apiVersion": f"{group}/{version}", "kind": kind, "metadata": {"name": name}, "spec": spec}
        if namespace:
            custom.create_namespaced_custom_object(group, version, namespace, plural, body)
        else:
            custom.create_cluster_custom_object(group, version, plural, body)


def users_uids(api) -> dict[str, str]:
    from kubernetes import client
    from kubernetes.client import ApiException

    custom = client.CustomObjectsApi(api)
    found = {}
    for group, version, plural, namespace, name, _, _ in USERS:
        try:
            if namespace:
                obj = custom.get_namespaced_custom_object(group, version, namespace, plural, name)
            else:
                obj = custom.get_cluster_custom_object(group, version, plural, name)
        except ApiException as exc:
            found[f"{plural}/{name}"] = f"error {exc.status}"
            continue
        found[f"{plural}/{name}"] = obj["metadata"]["uid"]
    return found


def crds(api) -> dict[str, dict]:
    """CRD name -> its helm marks, for the two groups."""
    from kubernetes import client

    out = {}
    for crd in client.ApiextensionsV1Api(api).list_custom_resource_definition().items:
        if crd.spec.group in GROUPS:
            notes, labels = crd.metadata.annotations or {}, crd.metadata.labels or {}
            out[crd.metadata.name] = {
                "release": notes.get("meta.helm.sh/release-name"),
                "policy": notes.get("helm.sh/resource-policy"),
                "managed-by": labels.get("app.kubernetes.io/managed-by"),
                "conversion": crd.spec.conversion.strategy if crd.spec.conversion else None,
                "storage": next(v.name for v in crd.spec.versions if v.storage),
            }
    return out


def read_other_version(api) -> str:
    """The user's LocalQueue through v1beta1 (not the stored version: the API server asks the conversion webhook)."""
    from kubernetes import client
    from kubernetes.client import ApiException

    try:
        client.CustomObjectsApi(api).get_namespaced_custom_object(
            "kueue.x-k8s.io", "v1beta1", "ml", "localqueues", "team-a", _request_timeout=40
        )
    except ApiException as exc:
        return f"{exc.status}: {' '.join(str(exc.body)[:300].split())}"
    except Exception as exc:  # noqa: BLE001 - what the client saw, recorded
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return "ok"


def leftovers(api) -> dict[str, list[str]]:
    from kubernetes import client

    rbac, batch, core = client.RbacAuthorizationV1Api(api), client.BatchV1Api(api), client.CoreV1Api(api)
    return {
        "kueue ClusterRoles": sorted(
            r.metadata.name for r in rbac.list_cluster_role().items if "kueue" in r.metadata.name
        ),
        "CronJobs": sorted(
            f"{c.metadata.namespace}/{c.metadata.name}" for c in batch.list_cron_job_for_all_namespaces().items
        ),
        "switch accounts": sorted(
            a.metadata.name
            for a in core.list_service_account_for_all_namespaces(
                label_selector="app.kubernetes.io/part-of=affordml-training-queue"
            ).items
        ),
        "kueue-system": [n.status.phase for n in core.list_namespace().items if n.metadata.name == "kueue-system"],
    }


@pytest.mark.slow
def test_switches_off_keep_the_users_objects_and_destroy_deletes_them_only_with_delete_data(
    control_plane_factory, helm_tools, fetch, tmp_path, monkeypatch
):
    from affordml.lifecycle.destroy_steps import delete_ml_data, destroy_ml
    from affordml.ml import phase
    from affordml.render.project import render_project
    from affordml.versions import load_lock
    from tests.gpustack.kubelet import StandInKubelet
    from tests.integration.ml.test_ml_phase_real import make_context, prepare_cluster

    cp = control_plane_factory()
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    ctx = make_context(
        {"fixture": FIXTURE.stem, "config": {"ml": ML}}, tmp_path / "project", cp.admin_kubeconfig(), say
    )
    ctx.plan.ml.update(ML)
    (ctx.project.root / "affordml.yaml").write_text(yaml.safe_dump({"hosts": [{"name": ctx.config.hosts[0].name}]}))
    render_project(ctx.project, ctx.plan, ctx.config, load_lock())
    prepare_cluster(cp, ctx.plan)
    api = cp.client()
    monkeypatch.setattr(phase, "AFTER", stand_in_hooks(api, dict(phase.AFTER)))
    monkeypatch.setattr(ctx, "artifact_store", lambda: type("Store", (), {"fetch": staticmethod(fetch)})())
    times, seen = {}, {}
    with StandInKubelet(api):
        started = time.monotonic()
        phase.run_ml_phase(ctx, fetch)
        times["install"] = time.monotonic() - started
        make_users(api)
        before = users_uids(api)
        seen["installed"] = (crds(api), leftovers(api))

        ctx.plan.ml.update(training_queue=False, inference=False)
        started = time.monotonic()
        phase.run_ml_phase(ctx, fetch)
        times["switches off"] = time.monotonic() - started
        seen["off"] = (crds(api), leftovers(api), users_uids(api))
        seen["other version with the webhook gone"] = read_other_version(api)
        off_releases = ctx.state.data["ml"]["releases"]

        ctx.plan.ml.update(training_queue=True, inference=True)
        started = time.monotonic()
        phase.run_ml_phase(ctx, fetch)
        times["on again"] = time.monotonic() - started
        seen["on again"] = (crds(api), users_uids(api))
        on_releases = ctx.state.data["ml"]["releases"]

        started = time.monotonic()
        removed = destroy_ml(ctx)
        times["destroy --only ml"] = time.monotonic() - started
        seen["destroyed"] = (crds(api), leftovers(api), users_uids(api))
        started = time.monotonic()
        data = delete_ml_data(ctx)
        times["--delete-data"] = time.monotonic() - started
        seen["data deleted"] = (crds(api), users_uids(api))

    print(f"times: { ({k: round(v, 1) for k, v in times.items()}) }")
    for key, value in seen.items():
        print(f"{key}: {value}")
    installed_crds = seen["installed"][0]
    assert len(installed_crds) == 17 and all(c["policy"] == "keep" for c in installed_crds.values()), installed_crds
    assert seen["installed"][1]["CronJobs"], "the after-hours switch was not applied"
    assert {r["name"]: r["action"] for r in off_releases} == {
        "kserve": "removed",
        "kserve-crd": "removed",
        "cert-manager": "removed",
        "kueue": "removed",
    }, lines
    off_crds, off_left, off_users = seen["off"]
    assert off_crds == installed_crds  # kept, marks and all
    assert off_users == before
    assert off_left["CronJobs"] == [] and off_left["switch accounts"] == [] and off_left["kueue ClusterRoles"] == []
    assert off_left["kueue-system"] in ([], ["Terminating"])  # affordml's namespace, empty of others' objects
    # the stored version reads without Kueue; the other one needs the conversion webhook, whose Service is gone
    assert seen["other version with the webhook gone"].startswith("500: "), seen
    assert (
        "conversion webhook for kueue.x-k8s.io/v1beta2, Kind=LocalQueue failed"
        in seen["other version with the webhook gone"]
    )
    assert any("kueue: kept: 11 CRDs with the users' objects" in line for line in lines), lines
    assert any("kserve-crd: kept: 6 CRDs with the users' objects" in line for line in lines), lines
    assert {r["name"]: r["action"] for r in on_releases} == {
        "kueue": "installed",
        "cert-manager": "installed",
        "kserve-crd": "installed",
        "kserve": "installed",
    }, lines
    on_crds, on_users = seen["on again"]
    assert on_crds == installed_crds and on_users == before  # adopted: release annotation, managed-by label
    assert removed == ["kserve", "kserve-crd", "cert-manager", "kueue"], lines
    gone_crds, gone_left, gone_users = seen["destroyed"]
    assert gone_crds == installed_crds and gone_users == before
    assert gone_left["CronJobs"] == [] and gone_left["kueue ClusterRoles"] == []
    assert sorted(data["crds"]) == sorted(installed_crds)
    assert seen["data deleted"][0] == {}
    assert all(v.startswith("error 404") for v in seen["data deleted"][1].values()), seen["data deleted"]
