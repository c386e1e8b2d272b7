"""The training queue's objects from the plan, the mode they are applied in, and the apply order (pure parts and a
fake API; the real API server is tests/integration/ml/test_queue_objects_real.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import yaml

from affordml.errors import RunError
from affordml.ml import queues
from affordml.ml.queues import in_current_mode, read_queue_objects
from tests.unit.test_render_validate import RENDERED

MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MONDAY_NIGHT = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
QUEUE_CASES = sorted(case for case, files in RENDERED.items() if "ml/kueue-queues.yaml" in files)


def objects(case: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(RENDERED[case]["ml/kueue-queues.yaml"]) if d]


def quotas(cq: dict, key: str = "nominalQuota") -> dict[tuple[str, str], str]:
    return {
        (f["name"], r["name"]): r.get(key)
        for g in cq["spec"]["resourceGroups"]
        for f in g["flavors"]
        for r in f["resources"]
    }


def amount(text: str) -> int:
    return int(text.removesuffix("Gi"))


@pytest.mark.parametrize("case", QUEUE_CASES)
def test_training_and_interactive_together_hold_what_the_platform_advertises(case):
    by_name = {o["metadata"]["name"]: o for o in objects(case) if o["kind"] == "ClusterQueue"}
    training, interactive = quotas(by_name["affordml-training"]), quotas(by_name["affordml-interactive"])
    assert training.keys() == interactive.keys()
    plan_gpu = RENDERED[case].get("gpu/node-labels.yaml")
    flavors = {f for f, _ in training}
    assert ("affordml-default", "cpu") in training and ("affordml-default", "memory") in training
    assert len(flavors) == 1 + len(yaml.safe_load(plan_gpu) or {}) if plan_gpu else flavors == {"affordml-default"}
    for key in training:
        whole = amount(training[key]) + amount(interactive[key])
        assert amount(interactive[key]) == (whole * 50 + 50) // 100, (key, training[key], interactive[key])


def test_without_after_hours_one_queue_holds_everything():
    from tests.cases import merge
    from tests.unit.test_render_validate import _golden

    case = _golden.CASES["workstation-2gpu--hami-one-worker"]
    files = _golden.render_case({**case, "config": merge(case["config"], {"ml": {"after_hours": None}})})
    docs = [d for d in yaml.safe_load_all(files["ml/kueue-queues.yaml"]) if d]
    assert [d["kind"] for d in docs if d["kind"] in ("CronJob", "ServiceAccount", "ClusterRole")] == []
    (cq,) = [d for d in docs if d["kind"] == "ClusterQueue"]
    assert cq["metadata"]["name"] == "affordml-training" and "cohortName" not in cq["spec"]
    assert quotas(cq) == {
        ("affordml-default", "cpu"): "25",
        ("affordml-default", "memory"): "108Gi",
        ("affordml-worker-1-hami", "nvidia.com/gpu"): "8",
        ("affordml-worker-1-hami", "nvidia.com/total-gpucores"): "200",
        ("affordml-worker-1-hami", "nvidia.com/total-gpumem"): "98280",
        ("affordml-worker-1-hami", "nvidia.com/total-gpumem-percentage"): "200",
    }
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "LocalQueue"] == ["training"]


def test_hami_transformations_only_where_hami_shares_a_gpu():
    for case in QUEUE_CASES:
        values = yaml.safe_load(RENDERED[case]["ml/kueue-values.yaml"])
        config = yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"])
        assert config["integrations"]["frameworks"] == ["batch/job", "pod"]
        hami = "gpu/hami-values.yaml" in RENDERED[case]
        transformations = (config.get("resources") or {}).get("transformations", [])
        assert bool(transformations) == hami, case
        for t in transformations:
            assert t["multiplyBy"] == "nvidia.com/gpu" and t["strategy"] == "Replace"


@pytest.mark.parametrize("case", ["desktop-rtx4090", "server-a100-mig", "workstation-2gpu--hami-one-worker"])
def test_the_mode_of_the_moment_is_applied(case):
    rendered = objects(case)
    noon, night = in_current_mode(rendered, MONDAY_NOON), in_current_mode(rendered, MONDAY_NIGHT)
    assert noon == rendered  # the rendered file is the workday state
    cq = {o["metadata"]["name"]: o for o in night if o["kind"] == "ClusterQueue"}
    assert set(quotas(cq["affordml-interactive"], "lendingLimit").values()) == {None}
    assert set(quotas(cq["affordml-interactive"], "borrowingLimit").values()) == {"0"}
    before = {o["metadata"]["name"]: o for o in rendered if o["kind"] == "ClusterQueue"}
    assert set(quotas(before["affordml-interactive"], "lendingLimit").values()) == {"0"}
    assert cq["affordml-training"] == before["affordml-training"]


def test_a_file_that_is_not_the_queue_file_is_refused(tmp_path):
    path = tmp_path / "kueue-queues.yaml"
    path.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n")
    with pytest.raises(RunError, match="unexpected object v1 Secret"):
        read_queue_objects(path)
    with pytest.raises(RunError, match="cannot read"):
        read_queue_objects(tmp_path / "absent.yaml")


def test_apply_order_and_namespaces(tmp_path, monkeypatch):
    applied, said = [], []

    class FakeApi:
        def __init__(self, kubeconfig):
            pass

        def apply(self, obj):
            applied.append((obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]))

        def prune(self, wanted):
            return ["CronJob affordml-queue-workday-7"]

        def close(self):
            pass

    monkeypatch.setattr(queues, "QueueApi", FakeApi)
    (tmp_path / "env" / "ml").mkdir(parents=True)
    (tmp_path / "env" / "ml" / "kueue-queues.yaml").write_text(RENDERED["desktop-rtx4090"]["ml/kueue-queues.yaml"])
    ctx = SimpleNamespace(project=SimpleNamespace(env_dir=tmp_path / "env"), say=said.append)
    queues.apply_queue_objects(ctx, tmp_path / "kubeconfig", now=MONDAY_NOON)
    kinds = [k for k, _, _ in applied]
    assert kinds[:3] == ["Namespace"] * 3  # ml (rendered), jupyterhub and kueue-system (ensured)
    assert {n for k, _, n in applied if k == "Namespace"} == {"ml", "jupyterhub", "kueue-system"}
    assert kinds.index("ResourceFlavor") < kinds.index("ClusterQueue") < kinds.index("LocalQueue")
    assert kinds[-1] == "CronJob"
    assert any("removed CronJob affordml-queue-workday-7" in line for line in said)
