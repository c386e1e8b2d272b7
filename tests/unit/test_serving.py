"""Serving (KServe): the releases as data, and the rendered sample InferenceService of every golden case checked
against KServe's own InferenceService CRD (openAPIV3Schema, jsonschema; read from ../shared/upstream, see its
SOURCES.md), on a GPU share the plan's nodes advertise. cert-manager's values against the chart's own
values.schema.json where the chart sources are present (AFFORDML_CHART_SOURCES, outside CI)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import yaml

from affordml.errors import PlanError
from affordml.ml.sample import SAMPLE_FILE, SampleError, how_to_call, parse_sample
from affordml.ml.serving import SERVING_RELEASES, inference_share, share_limits
from affordml.plan.build import make_plan
from affordml.plan.sharing import node_resources
from affordml.render.engine import OUTPUTS
from affordml.versions import load_lock, version_table
from tests.cases import GOLDEN, case_config, case_facts, load_cases

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = REPO.parent / "shared" / "upstream"
ISVC_CRD = "kserve/config/crd/full/serving.kserve.io_inferenceservices.yaml"


CASES = load_cases()
SAMPLE_CASES = sorted(name for name in CASES if (GOLDEN / name / SAMPLE_FILE).is_file())


def plan_for(case: dict):
    facts = case_facts(case)
    config = case_config(facts, case)
    return make_plan(facts, config, version_table(load_lock())), config


def isvc_schema() -> dict:
    path = UPSTREAM / ISVC_CRD
    if not path.is_file():
        pytest.skip(f"{ISVC_CRD} is not in {UPSTREAM} (the shared upstream folder beside the repo, see SOURCES.md)")
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1" and v["served"])
    return version["schema"]["openAPIV3Schema"]


_SCHEMA: list[dict] = []


def schema() -> dict:
    if not _SCHEMA:
        _SCHEMA.append(isvc_schema())
    return _SCHEMA[0]


def unknown_fields(obj, node: dict, path=()) -> list[str]:
    """Fields the structural schema does not list (the API server would prune or, strict, refuse them)."""
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(obj, dict):
        props, extra, found = node.get("properties"), node.get("additionalProperties"), []
        for key, value in obj.items():
            if not path and key == "metadata":
                continue
            if props is not None and key in props:
                found += unknown_fields(value, props[key], (*path, key))
            elif isinstance(extra, dict):
                found += unknown_fields(value, extra, (*path, key))
            elif extra is not True:
                found.append(".".join(map(str, (*path, key))))
        return found
    if isinstance(obj, list) and isinstance(node.get("items"), dict):
        return [p for i, item in enumerate(obj) for p in unknown_fields(item, node["items"], (*path, i))]
    return []


def schema_problems(isvc: dict) -> list[str]:
    import jsonschema

    errors = [
        f"{'.'.join(map(str, e.path))}: {e.message}" for e in jsonschema.Draft4Validator(schema()).iter_errors(isvc)
    ]
    return errors + [f"{p}: unknown field" for p in unknown_fields(isvc, schema())]


def rendered_sample(case: str):
    path = GOLDEN / case / SAMPLE_FILE
    return parse_sample(path.read_text(), path)


# ------------------------------------------------------------------------------------------ releases


def test_serving_releases_install_in_dependency_order():
    assert [(r.name, r.namespace, r.chart) for r in SERVING_RELEASES] == [
        ("cert-manager", "cert-manager", "chart/cert-manager"),
        ("kserve-crd", "kserve", "chart/kserve-crd"),
        ("kserve", "kserve", "chart/kserve-resources"),
    ]
    artifacts = {a["name"]: a for a in load_lock()["artifacts"]}
    lock = load_lock()
    assert artifacts["chart/cert-manager"]["version"] == lock["kserve"]["requires"]["cert_manager"] == "v1.17.0"
    for release in SERVING_RELEASES[1:]:
        assert artifacts[release.chart]["version"] == lock["kserve"]["version"] == "v0.20.0"
    rendered = {o.target: o.when for o in OUTPUTS}
    for release in SERVING_RELEASES:
        for values in release.values:
            assert rendered.get(values) == "inference", f"{release.name}: {values} is not rendered with inference on"


def test_kserve_runs_in_standard_mode_without_ingress():
    for case in SAMPLE_CASES:
        values = yaml.safe_load((GOLDEN / case / "ml" / "kserve-values.yaml").read_text())["kserve"]["controller"]
        assert values["deploymentMode"] == "Standard"  # v0.20.0 pkg/constants: Standard (RawDeployment deprecated)
        assert values["gateway"]["disableIngressCreation"] is True
        assert values["gateway"]["domain"] == "svc.cluster.local"  # constants.ClusterLocalDomain: internal
        cert_manager = yaml.safe_load((GOLDEN / case / "ml" / "cert-manager-values.yaml").read_text())
        assert cert_manager == {"crds": {"enabled": True, "keep": True}}


# ------------------------------------------------------------------------------------------ the sample


def test_every_case_with_inference_renders_the_sample():
    with_inference = [n for n in CASES if (GOLDEN / n / "ml" / "kserve-values.yaml").is_file()]
    assert with_inference and sorted(with_inference) == SAMPLE_CASES


@pytest.mark.parametrize("case", SAMPLE_CASES)
def test_sample_matches_the_inferenceservice_crd(case):
    objects = rendered_sample(case)
    problems = schema_problems(objects.inference_service)
    assert not problems, "\n".join(problems)
    container = objects.inference_service["spec"]["predictor"]["containers"][0]
    assert container["name"] == "kserve-container"  # where KServe's storage initializer mounts /mnt/models
    assert {"name": "STORAGE_URI", "value": "gs://kfserving-examples/models/sklearn/1.0/model"} in container["env"]
    assert objects.lan_service["spec"]["type"] == "NodePort"
    assert objects.lan_service["spec"]["selector"] == {"app": "isvc.affordml-sample-predictor"}


@pytest.mark.parametrize("case", SAMPLE_CASES)
def test_sample_asks_for_a_share_its_node_advertises(case):
    plan, _config = plan_for(CASES[case])
    objects = rendered_sample(case)
    limits = objects.inference_service["spec"]["predictor"]["containers"][0]["resources"]["limits"]
    gpu_limits = {k for k in limits if k == "nvidia.com/gpu" or k.startswith("nvidia.com/mig-")}
    if not plan.gpus:
        assert not gpu_limits
        return
    node = objects.node
    advertised = node_resources([g.sharing for g in plan.gpus if g.vm == node])
    assert len(gpu_limits) == 1 and gpu_limits <= set(advertised), (limits, advertised)


def test_a_broken_sample_is_refused_by_the_schema():
    objects = rendered_sample(SAMPLE_CASES[0])
    broken = copy.deepcopy(objects.inference_service)
    broken["spec"]["predictor"]["minReplicas"] = "one"
    broken["spec"]["predictor"]["containers"][0]["imageName"] = "typo"
    problems = schema_problems(broken)
    assert any("minReplicas" in p and "'one' is not of type 'integer'" in p for p in problems), problems
    assert any("imageName: unknown field" in p for p in problems), problems


def test_the_gpu_with_role_inference_serves_the_sample():
    case = {
        "fixture": "workstation-2gpu",
        "config": {"gpu": {"per_gpu": {"0000:31:00.0": {"mode": "auto", "role": "inference"}}}},
    }
    try:
        plan, config = plan_for(case)
    except PlanError as exc:
        pytest.fail(exc.one_line())
    share = inference_share(plan, config)
    chosen = next(g for g in plan.gpus if g.address == "0000:31:00.0")
    assert share["gpu"].startswith("0000:31:00.0") and share["node"] == chosen.vm
    assert share["limits"] == share_limits(chosen.sharing)
    first = inference_share(*plan_for({"fixture": "workstation-2gpu", "config": {}}))
    assert first["gpu"].startswith(plan.gpus[0].address)


def test_mig_share_is_the_smallest_slice():
    from affordml.plan.model import SharingDecision

    decision = SharingDecision("mig", 4, "", mig_instances=("3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"))
    assert share_limits(decision) == {"nvidia.com/mig-1g.10gb": "1"}
    hami = SharingDecision("hami", 4, "", replicas=4, hami_memory_percent=25, hami_cores_percent=30)
    assert share_limits(hami) == {
        "nvidia.com/gpu": "1",
        "nvidia.com/gpumem-percentage": "25",
        "nvidia.com/gpucores": "30",
    }


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "no env/ml/serving-sample.yaml"),
        ("a: [", "is not YAML"),
        ("kind: Service\nmetadata: {name: affordml-sample-lan, namespace: ml}\n", "no InferenceService ml/affordml"),
        (
            "kind: InferenceService\nmetadata: {name: other, namespace: ml}\n---\n"
            "kind: Service\nmetadata: {name: affordml-sample-lan, namespace: ml}\n",
            "no InferenceService ml/affordml-sample",
        ),
    ],
)
def test_a_missing_or_foreign_sample_file_is_one_line(text, says):
    with pytest.raises(SampleError) as caught:
        parse_sample(text, Path("env") / SAMPLE_FILE)
    line = caught.value.one_line()
    assert says in line and "\n" not in line and "fix: run `affordml init`" in line


def test_how_to_call_names_the_url_and_a_request():
    lines = how_to_call("192.0.2.50", 31234)
    assert lines[0] == "URL (from the LAN): http://192.0.2.50:31234/v1/models/affordml-sample:predict"
    body = lines[1].split("-d '", 1)[1].split("'", 1)[0]
    assert json.loads(body) == {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}


# ------------------------------------------------------------------------------------------ cert-manager values


def cert_manager_schema() -> dict:
    if os.environ.get("CI"):
        pytest.skip("CI: cert-manager's chart source is not in ../shared (set AFFORDML_CHART_SOURCES outside CI)")
    root = os.environ.get("AFFORDML_CHART_SOURCES")
    path = Path(root or "/nonexistent") / "cert-manager-v1.17.0/deploy/charts/cert-manager/values.schema.json"
    if not path.is_file():
        pytest.skip(f"no cert-manager v1.17.0 chart source at {path} (tests/gpustack/README.md)")
    return json.loads(path.read_text())


@pytest.mark.parametrize("case", SAMPLE_CASES[:1])
def test_cert_manager_values_match_the_chart_schema(case):
    import jsonschema

    schema_doc = cert_manager_schema()
    values = yaml.safe_load((GOLDEN / case / "ml" / "cert-manager-values.yaml").read_text())
    validator = jsonschema.validators.validator_for(schema_doc)(schema_doc)
    assert not [e.message for e in validator.iter_errors(values)]
    assert list(validator.iter_errors({"crds": {"enabled": "yes"}})), "the schema should refuse a string there"
