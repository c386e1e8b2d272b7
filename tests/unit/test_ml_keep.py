"""Removing an ml release keeps the users' objects (the real helm and API: tests/integration/ml/
test_keep_crds_real.py): the post-renderer that marks the CRDs, the helm command line and stamp, and the API steps
(mark, leftovers, the after-hours switch, the namespace, --delete-data) against recorded API answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes.client import ApiException

from affordml.helm import commands
from affordml.helm.keep import PLUGIN, SCRIPT, ensure_plugin
from affordml.helm.release import release_stamp
from affordml.ml.kept import ReleaseCleanup
from affordml.ml.queues import QueueApi
from affordml.ml.releases import JUPYTERHUB, KUEUE
from affordml.ml.serving import KSERVE, KSERVE_CRD

MANIFEST = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: localqueues.kueue.x-k8s.io
  annotations:
    controller-gen.kubebuilder.io/version: v0.20.1
spec:
  group: kueue.x-k8s.io
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: kueue-controller-manager
"""


def test_the_post_renderer_marks_every_crd_keep_and_nothing_else():
    done = subprocess.run([sys.executable, str(SCRIPT)], input=MANIFEST, capture_output=True, text=True, check=True)
    crd, deployment = list(yaml.safe_load_all(done.stdout))
    assert crd["metadata"]["annotations"] == {
        "controller-gen.kubebuilder.io/version": "v0.20.1",
        "helm.sh/resource-policy": "keep",
    }
    assert crd["spec"] == {"group": "kueue.x-k8s.io"}
    assert deployment == yaml.safe_load(MANIFEST.split("---\n")[1])


def test_the_plugin_lives_in_the_projects_helm_home_and_runs_this_interpreter(tmp_path):
    folder = ensure_plugin(tmp_path)
    assert folder == tmp_path / "data" / "plugins" / PLUGIN
    manifest = yaml.safe_load((folder / "plugin.yaml").read_text())
    assert manifest["type"] == "postrenderer/v1" and manifest["runtime"] == "subprocess"
    assert manifest["runtimeConfig"]["platformCommand"] == [{"command": sys.executable, "args": [str(SCRIPT)]}]
    before = (folder / "plugin.yaml").stat().st_mtime_ns
    ensure_plugin(tmp_path)
    assert (folder / "plugin.yaml").stat().st_mtime_ns == before  # unchanged: not rewritten


def test_only_the_releases_with_templated_crds_go_through_the_post_renderer(tmp_path):
    def argv(release):
        return commands.upgrade_install(Path("helm"), Path("kc"), release, Path("chart.tgz"), [], "d")

    assert [KUEUE.keep_crds, KSERVE_CRD.keep_crds, KSERVE.keep_crds, JUPYTERHUB.keep_crds] == [True, True, False, False]
    assert argv(KUEUE)[-2:] == ["--post-renderer", PLUGIN]
    assert "--post-renderer" not in argv(JUPYTERHUB)


def test_a_release_deployed_before_keep_crds_is_upgraded_once(tmp_path):
    chart = tmp_path / "c.tgz"
    chart.write_bytes(b"chart")
    assert release_stamp(chart, "", [], keep_crds=True).digest != release_stamp(chart, "", []).digest


class RecordedApi:
    """Answers by (method, path); records every call."""

    def __init__(self, answers: dict):
        self.answers, self.calls = answers, []

    def __call__(self, method, path, body=None, query=(), content_type="application/json"):
        self.calls.append((method, path, body, content_type))
        answer = self.answers.get((method, path), {})
        if callable(answer):
            answer = answer()
        if isinstance(answer, ApiException):
            raise answer
        return answer


def cleanup_with(answers: dict, cls=ReleaseCleanup):
    api = cls.__new__(cls)
    api._call = RecordedApi(answers)
    return api


CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def crd(name: str, release: str, namespace: str) -> dict:
    notes = {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace}
    return {"metadata": {"name": name, "annotations": notes}}


def test_mark_kept_patches_only_this_releases_crds_with_a_merge_patch():
    listed = {"items": [crd("workloads.kueue.x-k8s.io", "kueue", "kueue-system"),
                        crd("inferenceservices.serving.kserve.io", "kserve-crd", "kserve"),
                        crd("other.example.io", "kueue", "elsewhere"),
                        {"metadata": {"name": "plain.example.io"}}]}  # fmt: skip
    api = cleanup_with({("GET", CRDS): listed})
    assert api.mark_kept(KUEUE) == ["workloads.kueue.x-k8s.io"]
    assert api._call.calls[-1] == (
        "PATCH",
        f"{CRDS}/workloads.kueue.x-k8s.io",
        {"metadata": {"annotations": {"helm.sh/resource-policy": "keep"}}},
        "application/merge-patch+json",
    )


def test_delete_data_clears_the_finalizers_the_gone_controller_would_have_cleared_then_deletes():
    name = "clusterqueues.kueue.x-k8s.io"
    spec = {"group": "kueue.x-k8s.io", "names": {"plural": "clusterqueues"},
            "versions": [{"name": "v1beta1", "storage": False}, {"name": "v1beta2", "storage": True}]}  # fmt: skip
    items = {"items": [{"metadata": {"name": "team-a", "finalizers": ["kueue.x-k8s.io/resource-in-use"]}},
                       {"metadata": {"name": "team-b"}}]}  # fmt: skip
    api = cleanup_with({
        ("GET", CRDS): {"items": [crd(name, "kueue", "kueue-system")]},
        ("GET", f"{CRDS}/{name}"): {"spec": spec},
        ("GET", "/apis/kueue.x-k8s.io/v1beta2/clusterqueues"): items,
    })  # fmt: skip
    assert api.delete_crds(KUEUE) == [name]
    writes = [(m, p, b) for m, p, b, _ in api._call.calls if m != "GET"]
    assert writes == [
        ("PATCH", "/apis/kueue.x-k8s.io/v1beta2/clusterqueues/team-a", {"metadata": {"finalizers": None}}),
        ("DELETE", f"{CRDS}/{name}", None),
    ]


def test_leftover_roles_are_deleted_in_bounded_rounds_and_what_stays_is_returned():
    role = "/apis/rbac.authorization.k8s.io/v1/clusterroles/kueue-batch-user-role"
    recreated = iter([{}, {}, ApiException(status=404)])  # there, re-created once, then gone
    api = cleanup_with({("GET", role): lambda: next(recreated)})
    assert api.delete_leftover_roles(["kueue-batch-user-role"], pause_s=0) == []
    assert [m for m, p, *_ in api._call.calls if p == role] == ["GET", "DELETE", "GET", "DELETE", "GET"]

    stubborn = cleanup_with({("GET", role): {}})
    assert stubborn.delete_leftover_roles(["kueue-batch-user-role"], attempts=3, pause_s=0) == ["kueue-batch-user-role"]
    assert [m for m, *_ in stubborn._call.calls].count("DELETE") == 3


def test_the_after_hours_switch_goes_by_its_label_and_kueues_own_kinds_stay():
    cronjobs = {"items": [{"metadata": {"name": "affordml-queue-workday-0", "namespace": "kueue-system"}}]}
    roles = {"items": [{"metadata": {"name": "affordml-queue-switch"}}]}
    api = cleanup_with({("GET", "/apis/batch/v1/cronjobs"): cronjobs,
                        ("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles"): roles}, QueueApi)  # fmt: skip
    assert api.remove_switches() == ["CronJob affordml-queue-workday-0", "ClusterRole affordml-queue-switch"]
    deletes = [(p, b) for m, p, b, _ in api._call.calls if m == "DELETE"]
    assert deletes == [
        (
            "/apis/batch/v1/namespaces/kueue-system/cronjobs/affordml-queue-workday-0",
            {"propagationPolicy": "Background"},
        ),
        ("/apis/rbac.authorization.k8s.io/v1/clusterroles/affordml-queue-switch", {"propagationPolicy": "Background"}),
    ]  # the CronJob's Jobs and pods go with it
    assert not [p for *_, p, _, _ in api._call.calls if "kueue.x-k8s.io" in p]


NS = "/api/v1/namespaces/kueue-system"


def test_the_namespace_goes_only_when_it_holds_nobody_elses_objects():
    release_label = {"app.kubernetes.io/instance": "kueue"}
    mine = {"items": [{"metadata": {"name": "kube-root-ca.crt"}},
                      {"metadata": {"name": "kueue-manager-config", "labels": release_label}}]}  # fmt: skip
    pods = {
        "items": [{"metadata": {"name": "kueue-controller-manager-x", "ownerReferences": [{"kind": "ReplicaSet"}]}}]
    }
    gone = iter([{}, ApiException(status=404)])
    api = cleanup_with({(("GET", f"{NS}/configmaps")): mine, ("GET", f"{NS}/pods"): pods,
                        ("GET", NS): lambda: next(gone)}, QueueApi)  # fmt: skip
    assert api.remove_namespace_if_empty("kueue-system", "kueue") == []
    assert ("DELETE", NS) in [(m, p) for m, p, *_ in api._call.calls]

    theirs = {"items": [{"metadata": {"name": "someones-settings"}}]}
    kept = cleanup_with({("GET", f"{NS}/configmaps"): theirs}, QueueApi)
    assert kept.remove_namespace_if_empty("kueue-system", "kueue") == ["ConfigMap someones-settings"]
    assert not [m for m, *_ in kept._call.calls if m == "DELETE"]


def test_destroy_with_delete_data_also_deletes_the_kept_crds():
    from affordml.lifecycle import destroy
    from affordml.lifecycle.destroy_steps import delete_ml_data

    assert destroy._data_step("ml") is delete_ml_data
    assert "CRDs kept" in " ".join(destroy.listing(destroy.Selection((), delete_data=True)))


@pytest.mark.parametrize("release", [KUEUE, KSERVE_CRD])
def test_the_keep_releases_are_the_ones_whose_charts_template_their_crds(release):
    assert release.keep_crds and not release.crd_folders  # templated CRDs: helm owns them, not crds/
