"""The CRDs helm never upgrades (a chart's crds/ folders): found in the chart archive about to be installed, also in
a subchart packed as a .tgz, and applied right before their release, in the gpu phase's order (no cluster; the
real API: tests/integration/gpu/test_upgrade_charts_real.py)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from affordml.errors import RunError
from affordml.gpu import phase
from affordml.gpu.releases import GPU_OPERATOR, HAMI
from affordml.helm.local import chart_folder

CRD = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: %s}\n"


def _tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_crd_folders_are_found_in_the_chart_and_in_a_packed_subchart(tmp_path):
    nfd = _tar(tmp_path / "nfd.tgz", {"nfd/Chart.yaml": b"name: nfd\n", "nfd/crds/a.yaml": b""})
    archive = _tar(
        tmp_path / "gpu-operator-v1.tgz",
        {
            "gpu-operator/Chart.yaml": b"name: gpu-operator\n",
            "gpu-operator/crds/clusterpolicies.yaml": (CRD % "clusterpolicies.nvidia.com").encode(),
            "gpu-operator/charts/node-feature-discovery-0.19.0.tgz": nfd.read_bytes(),
        },
    )
    cache = tmp_path / "cache"
    assert chart_folder(archive, "crds", cache).name == "crds"
    assert (chart_folder(archive, "charts/node-feature-discovery/crds", cache) / "a.yaml").is_file()
    with pytest.raises(RunError, match="has no folder charts/other/crds"):
        chart_folder(archive, "charts/other/crds", cache)
    with pytest.raises(RunError, match=r"has no folder \.\./\.\."):
        chart_folder(archive, "../..", cache)


def test_the_operator_chart_crds_go_in_right_before_it_and_hami_waits_for_the_runtime_class(monkeypatch, tmp_path):
    events: list[tuple[str, str]] = []
    monkeypatch.setattr(
        phase, "apply_chart_crds", lambda ctx, kc, release, archive: events.append(("crds", archive.name))
    )
    monkeypatch.setattr(phase, "wait_for_runtime_class", lambda ctx, kc: events.append(("runtime-class", "")))
    planned = [(GPU_OPERATOR, None, [], Path("gpu-operator-v2.tgz")), (HAMI, None, [], Path("hami.tgz"))]
    hooks = phase.before_hooks(SimpleNamespace(), tmp_path / "kubeconfig", planned)
    assert sorted(hooks) == ["gpu-operator", "hami"]
    hooks["gpu-operator"]()
    hooks["hami"]()
    assert events == [("crds", "gpu-operator-v2.tgz"), ("runtime-class", "")]
    # every crds/ folder of the operator's chart: its own and node-feature-discovery's (both outside templates/)
    assert GPU_OPERATOR.crd_folders == ("crds", "charts/node-feature-discovery/crds")
    assert HAMI.crd_folders == ()


def test_the_ml_phase_applies_a_release_s_chart_crds_right_before_it(monkeypatch, tmp_path):
    from affordml.helm import Release
    from affordml.helm.driver import Outcome
    from affordml.ml import phase as ml_phase

    events: list[str] = []
    monkeypatch.setattr(
        phase, "apply_chart_crds", lambda ctx, kc, release, archive, name: events.append(f"crds {name}")
    )
    with_crds = Release("with-crds", "ns", "chart/x", crd_folders=("crds",))
    plain = Release("plain", "ns", "chart/y")
    driver = SimpleNamespace(ensure=lambda release, *rest: events.append(release.name) or Outcome(release.name, "x"))
    planned = [(plain, None, [], Path("y.tgz")), (with_crds, None, [], Path("x.tgz"))]
    ml_phase.install(SimpleNamespace(), driver, planned, tmp_path / "kubeconfig", lambda name: Path(name))
    assert events == ["plain", "crds ml", "with-crds"]
