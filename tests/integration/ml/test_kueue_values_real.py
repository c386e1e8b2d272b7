"""env/ml/kueue-values.yaml through the real Kueue v0.19.2 chart (helm template with the real helm) and against
Kueue's own Configuration type at that tag (outside CI: the chart source and apis/config/v1beta2 under
AFFORDML_CHART_SOURCES/kueue-v0.19.2, extracted with `git archive v0.19.2`)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.test_render_validate import RENDERED

SOURCE = "kueue-v0.19.2"
CASES = sorted(case for case, files in RENDERED.items() if "ml/kueue-values.yaml" in files)


def _source() -> Path:
    if os.environ.get("CI"):
        pytest.skip("CI: Kueue's chart source is not in any package registry (see tests/gpustack/README.md)")
    root = os.environ.get("AFFORDML_CHART_SOURCES")
    folder = Path(root or "/nonexistent") / SOURCE
    if not (folder / "charts/kueue/Chart.yaml").is_file() or not (folder / "apis/config/v1beta2").is_dir():
        pytest.skip(f"set AFFORDML_CHART_SOURCES to a folder with {SOURCE}/charts/kueue and apis/config/v1beta2")
    return folder


def _template(folder: Path, case: str, tmp_path: Path) -> tuple[Path, str]:
    """The case's rendered values file and what the real helm templates from the chart with it."""
    from tests.artifacts.realfiles import helm_binary

    values = tmp_path / "kueue-values.yaml"
    values.write_text(RENDERED[case]["ml/kueue-values.yaml"])
    argv = [str(helm_binary()), "template", "kueue", str(folder / "charts/kueue"), "-n", "kueue-system"]
    done = subprocess.run([*argv, "-f", str(values)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return values, done.stdout


def _json_names(folder: Path) -> set[str]:
    text = (folder / "apis/config/v1beta2/configuration_types.go").read_text()
    return set(re.findall(r'json:"([A-Za-z0-9]+)[,"]', text))


def _keys(value, out: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, sub in value.items():
            out.add(key)
            _keys(sub, out)
    elif isinstance(value, list):
        for item in value:
            _keys(item, out)
    return out


FREE_KEYS = {"Job.batch", "Pod", "Workload.kueue.x-k8s.io", "LocalQueue.kueue.x-k8s.io"}  # map keys, not fields
# fields of the Kubernetes types Configuration embeds: metav1.TypeMeta, component-base's
# LeaderElectionConfiguration (`leaderElection`) and metav1.LabelSelector (`managedJobsNamespaceSelector`)
EMBEDDED = {"apiVersion", "kind", "leaderElect", "resourceName", "matchExpressions", "key", "operator", "values"}


@pytest.mark.parametrize("case", ["desktop-rtx4090", "workstation-2gpu--hami-one-worker"])
def test_the_chart_carries_our_configuration(case, tmp_path):
    folder = _source()
    values, manifests = _template(folder, case, tmp_path)
    docs = [d for d in yaml.safe_load_all(manifests) if d]
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("manager-config")]
    theirs = yaml.safe_load(configmap["data"]["controller_manager_config.yaml"])
    ours = yaml.safe_load(yaml.safe_load(values.read_text())["managerConfig"]["controllerManagerConfigYaml"])
    assert {k: v for k, v in theirs.items() if k != "internalCertManagement"} == ours
    maps = {"groupKindConcurrency", "outputs"}  # their keys are resource names / kinds
    names = _json_names(folder)
    unknown = set()
    for key in _keys(ours, set()):
        if key not in names and not any(key in (ours.get("controller", {}).get(m) or {}) for m in maps):
            unknown.add(key)
    unknown -= {"ClusterQueue.kueue.x-k8s.io", "ResourceFlavor.kueue.x-k8s.io"} | FREE_KEYS | EMBEDDED
    unknown -= {o for t in (ours.get("resources") or {}).get("transformations", []) for o in t["outputs"]}
    assert not unknown, f"not fields of Kueue v0.19.2's Configuration: {sorted(unknown)}"
    print(f"{case}: {len(docs)} objects from the chart; Configuration keys {len(_keys(ours, set()))}, all Kueue's")


@pytest.mark.parametrize("case", ["desktop-rtx4090"])
def test_kueue_webhooks_watch_only_the_queued_namespaces(case, tmp_path):
    """The pod webhook fails closed once the pod integration is on: with the chart's default selector no pod could
    start anywhere while Kueue is down. The chart copies managedJobsNamespaceSelector into every webhook."""
    _, manifests = _template(_source(), case, tmp_path)
    kinds = {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
    hooks = [h for d in yaml.safe_load_all(manifests) if d and d["kind"] in kinds for h in d["webhooks"]]
    pod_hooks = [h for h in hooks if h["name"] in ("mpod.kb.io", "vpod.kb.io")]
    assert [h["failurePolicy"] for h in pod_hooks] == ["Fail", "Fail"]
    wanted = {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["ml", "jupyterhub", "affordml-verify"]}
    scoped = [h for h in hooks if h.get("namespaceSelector", {}).get("matchExpressions") == [wanted]]
    print(f"{case}: {len(scoped)} of {len(hooks)} webhooks scoped to ml, jupyterhub, affordml-verify")
    assert pod_hooks and all(h in scoped for h in pod_hooks)
