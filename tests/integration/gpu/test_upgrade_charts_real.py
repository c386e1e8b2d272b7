"""A chart hop of `affordml upgrade` against real engines (outside CI): the GPU Operator installed at the
previous lock's chart (v26.3.3, the real chart source at that tag) on the real control plane of tests/kubecp,
then `run_upgrade` plans one gpu hop, takes the backup and runs the gpu phase's upgrade action over the phase
registry: the real helm upgrades the release to v26.7.0 (revision 2), and the state records the new lock.
Needs AFFORDML_CHART_SOURCES to also hold gpu-operator-v26.3.3/deployments/gpu-operator
(`git archive v26.3.3 deployments/gpu-operator` of github.com/NVIDIA/gpu-operator)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tarfile
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


HOOK_CRDS = ("nvidia.com_clusterpolicies.yaml", "nvidia.com_nvidiadrivers.yaml", "nvidia.com_gpuclusters.yaml")


def stand_in_for_the_crd_hook(kubeconfig: Path, archive: Path, work: Path) -> None:
    """The chart's pre-upgrade hook Job (templates/upgrade_crd.yaml, operator.upgradeCRD: true) runs the operator
    image's `manage-crds apply` on these CRDs: helm itself never upgrades crds/. No container runs on the stand-in
    kubelet, so the test applies the same files from the new chart, as that Job would."""
    from affordml.gpu.apply import GpuApi, apply_crds, read_crds

    work.mkdir()
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(HOOK_CRDS) and "/crds/" in member.name:
                (work / Path(member.name).name).write_bytes(tar.extractfile(member).read())
    assert sorted(p.name for p in work.iterdir()) == sorted(HOOK_CRDS)
    gpu_api = GpuApi(kubeconfig)
    try:
        apply_crds(gpu_api, read_crds(work))
    finally:
        gpu_api.close()


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

        monkeypatch.setitem(steps.PYTHON_STEPS, "gpu", lambda c: run_gpu_phase(c, lambda n: helm_tools[n]))
        stand_in_for_the_crd_hook(
            project.secrets_dir / "kubeconfig", helm_tools["chart/gpu-operator"], tmp_path / "hook"
        )
        started = time.monotonic()
        plan = run_upgrade(
            project,
            UpgradeOptions(facts_file=FIXTURES / "desktop-rtx4090.json", confirm=True),
            lambda line: (lines.append(line), print(line, flush=True)),
        )
        took = time.monotonic() - started

    assert [(h.phase, [s.to_version for s in h.steps]) for h in plan.hops] == [("gpu", ["v26.7.0"])]
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
