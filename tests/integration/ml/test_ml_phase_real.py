"""The ml phase's own code against a real kube-apiserver, scheduler and controller-manager, the real helm and the
real charts at the locked versions (outside CI; see tests/gpustack/README.md), for every golden case: JupyterHub
4.4.0 installs with the rendered values (plus the private file with the admin's password) and its values pass
the chart's own values.schema.yaml at 4.4.0; a second run skips; turning JupyterHub off and the queue on installs
Kueue v0.19.2 and removes JupyterHub, keeping its accounts volume. Kueue and JupyterHub run in separate passes:
Kueue's Deployment webhook is fail-closed and no Kueue process serves it here (no kubelet runs containers)."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest
import yaml

from affordml.phases.workflow import PhaseContext
from tests.cases import GOLDEN, load_cases, merge, phase_context

NODE = {"cpu": "64", "memory": "256Gi", "pods": "250"}
ONLY_HUB = {"monitoring": False, "training_queue": False, "inference": False, "jupyterhub": True}
ONLY_QUEUE = {**ONLY_HUB, "jupyterhub": False, "training_queue": True}


CASES = {
    name: case for name, case in load_cases().items() if (GOLDEN / name / "ml" / "jupyterhub-values.yaml").is_file()
}


def make_context(case: dict, root: Path, kubeconfig_text: str, say) -> PhaseContext:
    ctx = phase_context(case, root, kubeconfig_text, say, adjust=_with_queue)
    kueue_values = ctx.project.env_dir / "ml" / "kueue-values.yaml"
    if not kueue_values.is_file():  # rendered by the ml-queue work once merged; the chart's defaults until then
        kueue_values.write_text("{}\n")
    return ctx


def _with_queue(config) -> None:
    config.ml.training_queue = True  # rendered too: the second pass installs Kueue


def prepare_cluster(cp, plan) -> None:
    """The VMs as Nodes, and one volume for the hub's database (what Kubespray's local-path provisioner gives)."""
    from kubernetes import client

    core = client.CoreV1Api(cp.client())
    for vm in plan.vms:
        cp.register_node(
            vm.name, capacity=NODE, labels={"kubernetes.io/hostname": vm.name, "kubernetes.io/os": "linux"}
        )
        core.patch_node(vm.name, {"spec": {"taints": []}})
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "hub-db"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/x"}},
    }
    core.create_persistent_volume(pv)


def chart_schema_problems(values_files: list[Path]) -> list[str]:
    """The merged values against values.schema.yaml of the chart source at 4.4.0 (what the released chart's
    values.schema.json is generated from)."""
    import jsonschema

    from affordml.helm.release import merged_values

    chart = Path(os.environ["AFFORDML_CHART_SOURCES"]) / "jupyterhub-4.4.0" / "jupyterhub"
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    merged = merge(defaults, merged_values(values_files))
    schema = yaml.safe_load((chart / "values.schema.yaml").read_text())
    return [
        f"{'.'.join(map(str, e.path))}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(merged)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_ml_phase_installs_jupyterhub_then_kueue_on_a_real_api(
    name, control_plane_factory, fetch, tmp_path, monkeypatch
):
    from kubernetes import client

    from affordml.ml import hub, phase
    from tests.gpustack.kubelet import StandInKubelet

    hooked: list[str] = []
    monkeypatch.setitem(phase.AFTER, "kueue", lambda ctx, kubeconfig: hooked.append(kubeconfig.name))
    cp = control_plane_factory()
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    ctx = make_context(CASES[name], tmp_path / "project", cp.admin_kubeconfig(), say)
    prepare_cluster(cp, ctx.plan)
    api = cp.client()
    secret_values = ctx.project.secrets_dir / hub.VALUES_FILE
    timings = {}
    with StandInKubelet(api):
        ctx.plan.ml.update(ONLY_HUB)
        started = time.monotonic()
        phase.run_ml_phase(ctx, fetch)
        timings["hub"] = time.monotonic() - started
        assert ctx.state.data["ml"]["releases"] == [{"name": "jupyterhub", "action": "installed"}], lines
        values = [ctx.project.env_dir / "ml" / "jupyterhub-values.yaml", secret_values]
        assert chart_schema_problems(values) == []
        started = time.monotonic()
        phase.run_ml_phase(ctx, fetch)
        timings["hub again"] = time.monotonic() - started
        assert ctx.state.data["ml"]["releases"] == [{"name": "jupyterhub", "action": "unchanged"}], lines

        core = client.CoreV1Api(api)
        service = core.read_namespaced_service("proxy-public", "jupyterhub")
        assert service.spec.type == "NodePort"
        assert [p.node_port for p in service.spec.ports if p.name == "http"] == [hub.NODE_PORT]
        hub_secret = core.read_namespaced_secret("hub", "jupyterhub").data["values.yaml"]
        in_cluster = yaml.safe_load(base64.b64decode(hub_secret))
        password = yaml.safe_load((ctx.project.secrets_dir / hub.SECRETS_FILE).read_text())["admin_password"]
        assert in_cluster["custom"]["affordml"] == {"adminUser": "admin", "adminPassword": password}
        from affordml.gpu.phase import make_driver
        from affordml.ml.releases import JUPYTERHUB

        history = make_driver(ctx, fetch).history(JUPYTERHUB)
        assert history and not any(password in str(entry) for entry in history)  # the stamp carries no secret
        shown = [line for line in lines if password in line]
        assert len(shown) == 1 and "log in as admin with password" in shown[0]

        ctx.plan.ml.update(ONLY_QUEUE)
        started = time.monotonic()
        phase.run_ml_phase(ctx, fetch)
        timings["queue"] = time.monotonic() - started
        assert ctx.state.data["ml"]["releases"] == [
            {"name": "kueue", "action": "installed"},
            {"name": "jupyterhub", "action": "removed"},
        ], lines
        assert hooked == ["kubeconfig"]
        pvcs = [p.metadata.name for p in core.list_namespaced_persistent_volume_claim("jupyterhub").items]
        assert pvcs == ["hub-db-dir"]  # the accounts survive (helm.sh/resource-policy: keep)
        phase.run_ml_phase(ctx, fetch)
        assert ctx.state.data["ml"]["releases"] == [{"name": "kueue", "action": "unchanged"}], lines
        crds = client.ApiextensionsV1Api(api).list_custom_resource_definition().items
        assert "clusterqueues.kueue.x-k8s.io" in {c.metadata.name for c in crds}
    print(f"TABLE {name}: jupyterhub installed ({timings['hub']:.0f} s, again {timings['hub again']:.1f} s unchanged), "
          f"kueue installed ({timings['queue']:.0f} s), jupyterhub removed")  # fmt: skip
