"""A chart hop of `affordml upgrade` against real engines (outside CI): the GPU Operator installed at the
previous lock's chart (v26.3.3, the real chart source at that tag) on the real control plane of tests/kubecp,
then `run_upgrade` plans one gpu hop, takes the backup and runs the gpu phase's upgrade action over the phase
registry: the phase applies v26.7.0's crds/ (and node-feature-discovery's) before the real helm upgrades the
release to v26.7.0 (revision 2), and the state records the new lock.
Needs AFFORDML_CHART_SOURCES to also hold gpu-operator-v26.3.3/deployments/gpu-operator
(`git archive v26.3.3 deployments/gpu-operator` of github.com/NVIDIA/gpu-operator)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from affordml.lifecycle.rules import lock_summary
from affordml.phases.state import load_state, save_state
from affordml.versions import load_lock
from tests.cases import FIXTURES
from tests.integration.gpu.test_gpu_phase_real import make_context, register_nodes

PREVIOUS_OPERATOR = ("gpu-operator-v26.3.3/deployments/gpu-operator", "v26.3.3")


def package_previous(helm: Path, cache: Path) -> Path:
    source = Path(os.environ["AFFORDML_CHART_SOURCES"]) / PREVIOUS_OPERATOR[0]
    if not (source / "Chart.yaml").is_file():
        pytest.skip(f"no chart source at {source} (see this module's docstring)")
    version = PREVIOUS_OPERATOR[1]
    target = cache / f"gpu-operator-{version}.tgz"
    if not target.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [str(helm), "package", str(source), "--version", version, "--app-version", version, "--destination",
             str(cache)],
            check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    return target


NEW_CRDS = {  # in v26.7.0's crds/ and not in v26.3.3's: helm would not add them on upgrade, nor does the hook Job
    "gpuclusters.nvidia.com",
    "computedomains.resource.nvidia.com",
    "computedomaincliques.resource.nvidia.com",
}


def crd_names(api) -> set[str]:
    from kubernetes import client

    return {c.metadata.name for c in client.ApiextensionsV1Api(api).list_custom_resource_definition().items}


@pytest.mark.slow
def test_gpu_hop_upgrades_the_operator_chart_through_the_runner(
    control_plane_factory, helm_tools, tmp_path, monkeypatch
):
    from affordml.gpu.phase import make_driver, run_gpu_phase
    from affordml.gpu.releases import GPU_OPERATOR
    from affordml.lifecycle.run import UpgradeOptions, run_upgrade
    from affordml.phases import steps
    from affordml.render.project import render_project
    from tests.gpustack.kubelet import StandInKubelet

    old_archive = package_previous(helm_tools["helm_bin"], tmp_path / "old-charts")
    cp = control_plane_factory()
    lines: list[str] = []
    ctx = make_context({"fixture": "desktop-rtx4090"}, tmp_path / "project", cp.admin_kubeconfig(), lines)
    project = ctx.project
    (project.root / "affordml.yaml").write_text(f"hosts:\n  - name: {ctx.config.hosts[0].name}\n")
    previous = copy.deepcopy(load_lock())
    previous["name"] = "2026.05"
    previous["gpu_operator"]["version"] = PREVIOUS_OPERATOR[1]
    render_project(project, ctx.plan, ctx.config, previous)
    ctx.lock = previous
    register_nodes(cp, ctx.plan)
    api = cp.client()

    def fetch_old(name: str) -> Path:
        return old_archive if name == "chart/gpu-operator" else helm_tools[name]

    with StandInKubelet(api):
        run_gpu_phase(ctx, fetch_old)  # what the previous affordml installed
        state = ctx.state
        state.phase("gpu").status = "done"
        state.data["lock"] = lock_summary(previous)
        save_state(project.state_file, state)

        before = crd_names(api)
        monkeypatch.setitem(steps.PYTHON_STEPS, "gpu", lambda c: run_gpu_phase(c, lambda n: helm_tools[n]))
        started = time.monotonic()
        plan = run_upgrade(
            project,
            UpgradeOptions(facts_file=FIXTURES / "desktop-rtx4090.json", confirm=True),
            lambda line: (lines.append(line), print(line, flush=True)),
        )
        took = time.monotonic() - started

    assert [(h.phase, [s.to_version for s in h.steps]) for h in plan.hops] == [("gpu", ["v26.7.0"])]
    # the new chart's crds/ went in before `helm upgrade` (the phase's own step; v26.7.0's ClusterPolicy values
    # need the new ClusterPolicy CRD, or the API refuses the release: "field not declared in schema")
    assert not NEW_CRDS & before and crd_names(api) >= NEW_CRDS
    assert any("gpu-operator: 8 CRDs of its chart applied and Established" in line for line in lines), lines
    after = load_state(project.state_file)
    assert after.data["gpu"]["releases"][0] == {"name": "gpu-operator", "action": "upgraded"}
    assert after.data["lock"]["name"] == load_lock()["name"] and after.data["upgrade"]["status"] == "done"
    history = make_driver(ctx, lambda n: helm_tools[n]).history(GPU_OPERATOR)
    charts = [(h["revision"], h["chart"], h["status"]) for h in history]
    print(f"gpu hop: {charts} in {took:.1f} s")
    assert charts[-1] == (2, "gpu-operator-v26.7.0", "deployed")
    assert charts[0][:2] == (1, "gpu-operator-v26.3.3")
    (backup,) = (project.root / "backups").iterdir()
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["lock"]["name"] == "2026.05"
    assert any(i["path"].endswith("secrets/kubeconfig") for i in manifest["items"])
