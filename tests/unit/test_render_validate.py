"""Every rendered env/ (each case of tests/golden/cases.yaml whose plan succeeds) checked with the upstream tools'
own validators and data, read at test time from ../shared/upstream (see its SOURCES.md) and from the installed
kolla-ansible package:

- YAML parses (yaml.safe_load_all, reading Ansible's `!unsafe` tag as the string it marks; the files Ansible reads
  also with Ansible's own loader, where no string it would template holds template syntax); INI parses
  (configparser, strict=False for nova's repeated keys), and each
  nova `device_spec` / `alias` value is JSON with hex vendor/product ids;
- Kubernetes objects: kubernetes-validate --strict for the lock's kubernetes_minor; Kueue objects also against
  the Kueue CRDs' openAPIV3Schema (jsonschema + a walker that rejects fields the schema does not list, which the
  API server would prune) and their CEL rules where cel-python is installed;
- Helm values: JupyterHub against the chart's values.schema.yaml (merged over its values.yaml, as helm does);
  GPU Operator, HAMi and kube-prometheus-stack: every key path we set exists in the chart's values.yaml with a
  value of the same kind; the GPU Operator values also against the ClusterPolicy CRD where the paths match;
- the device plugin configs inside the ConfigMap: only keys and value kinds the upstream examples show;
- Kubespray: group_vars keys exist upstream, the inventory parses with Ansible's own yaml inventory plugin and
  has the groups Kubespray uses; the kube_version has upstream checksums;
- kolla-ansible: every globals.yml key exists in the globals.yml shipped inside the installed kolla-ansible
  (the toolchain venv), with a value from its "Valid options" list where it gives one; differences against
  kolla-ansible master are reported as warnings.
"""

from __future__ import annotations

import configparser
import functools
import ipaddress
import json
import re
import warnings
from pathlib import Path

import pytest
import yaml

from affordml import ansible_data
from affordml.errors import PlanError
from affordml.render.engine import STAMP
from affordml.versions import load_lock
from tests.cases import FIXTURES

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = REPO.parent / "shared" / "upstream"
LOCK = load_lock()
K8S_MINOR = LOCK["kubernetes"]["kubernetes_minor"]


def _load_golden_module():
    """The cases and their renderer live in test_render_golden.py (one definition for both files)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_affordml_render_golden", Path(__file__).with_name("test_render_golden.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_golden = _load_golden_module()
RENDERED: dict[str, dict[str, str]] = {}
for _name, _case in sorted(_golden.CASES.items()):
    _result = _golden.render_case(_case)
    if not isinstance(_result, PlanError):
        RENDERED[_name] = _result
ENV_CASES = sorted(RENDERED)


def upstream(rel: str) -> Path:
    path = UPSTREAM / rel
    if not path.exists():
        pytest.skip(
            f"upstream file {rel} is not in {UPSTREAM} (the shared upstream folder beside the repo, see SOURCES.md)"
        )
    return path


_YAML_CACHE: dict[str, object] = {}


def load_upstream_yaml(rel: str):
    """An upstream YAML file, parsed once per session (callers must not change it)."""
    if rel not in _YAML_CACHE:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        _YAML_CACHE[rel] = yaml.load(upstream(rel).read_text(), Loader=loader)  # noqa: S506 - a safe loader
    return _YAML_CACHE[rel]


RenderedLoader = ansible_data.UnsafeLoader
load_rendered = ansible_data.load


def docs(text: str) -> list:
    return [d for d in yaml.load_all(text, Loader=RenderedLoader) if d is not None]  # noqa: S506 - a safe loader


def yaml_files(files: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in files.items() if k.endswith((".yml", ".yaml"))}


def k8s_objects(files: dict[str, str]) -> list[tuple[str, dict]]:
    return [
        (rel, d) for rel, text in yaml_files(files).items() for d in docs(text) if "apiVersion" in d and "kind" in d
    ]


def dotted(path) -> str:
    return ".".join(str(p) for p in path) or "<root>"


def test_every_fixture_with_a_plan_is_validated():
    assert ENV_CASES, "no case renders an env/"
    assert {c["fixture"] for n, c in _golden.CASES.items() if n in RENDERED} >= {
        p.stem for p in FIXTURES.glob("*.json") if p.stem not in _golden.PLAN_FAILS
    }


# ------------------------------------------------------------------------------------------ parse: YAML, INI


def check_yaml(files: dict[str, str]) -> list[str]:
    problems = []
    for rel, text in yaml_files(files).items():
        try:
            found = docs(text)
        except yaml.YAMLError as exc:
            problems.append(f"{rel}: {' '.join(str(exc).split())}")
            continue
        if not found or not all(isinstance(d, dict) and d for d in found):
            problems.append(f"{rel}: every document must be a non-empty mapping, got {found!r}")
    if not problems and load_rendered(files[STAMP])["files"] != sorted(set(files) - {STAMP}):
        problems.append("the stamp does not list the rendered files")
    strangers = set(files) - set(yaml_files(files)) - {f for f in files if f.endswith(".conf")}
    problems += [f"{rel}: neither YAML nor INI" for rel in sorted(strangers)]
    return problems


@pytest.mark.parametrize("case", ENV_CASES)
def test_yaml_files_parse_to_mappings(case):
    problems = check_yaml(RENDERED[case])
    assert not problems, "\n".join(problems)


class _MultiValues(dict):
    """configparser dict_type that keeps every value of a repeated key (oslo.config's MultiStrOpt)."""

    def __setitem__(self, key, value):
        if isinstance(value, list) and isinstance(self.get(key), list):
            value = self[key] + value
        super().__setitem__(key, value)


def parse_ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, dict_type=_MultiValues)
    parser.read_string(text)
    return parser


def multi(parser: configparser.ConfigParser, section: str, key: str) -> list[str]:
    return parser.get(section, key).split("\n") if parser.has_option(section, key) else []


PCI_ADDRESS = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
HEX4 = re.compile(r"^[0-9a-f]{4}$")


def _json_values(rel: str, parser, key: str, problems: list[str]) -> list[dict]:
    values = []
    for raw in multi(parser, "pci", key):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"{rel}: [pci] {key} = {raw}: not JSON ({exc.msg})")
            continue
        if not isinstance(value, dict):
            problems.append(f"{rel}: [pci] {key} = {raw}: not a JSON object")
            continue
        values.append(value)
    return values


def check_nova_ini(files: dict[str, str]) -> list[str]:
    problems, parsed = [], {}
    for rel, text in files.items():
        if not rel.endswith(".conf"):
            continue
        try:
            parsed[rel] = parse_ini(text)
        except configparser.Error as exc:
            problems.append(f"{rel}: {' '.join(str(exc).split())}")
            continue
        for section in parsed[rel].sections():
            for key, value in parsed[rel].items(section):
                if "$" in value:
                    problems.append(f"{rel} [{section}] {key}: '$' would be substituted by oslo.config")
    if problems:
        return problems
    compute_rel, api_rel = "kolla/config/nova/nova-compute.conf", "kolla/config/nova/nova-api.conf"
    specs = _json_values(compute_rel, parsed[compute_rel], "device_spec", problems)
    aliases = _json_values(compute_rel, parsed[compute_rel], "alias", problems)
    if aliases != _json_values(api_rel, parsed[api_rel], "alias", problems):
        problems.append("nova-api and nova-compute list different aliases")
    for spec in specs:
        if set(spec) != {"vendor_id", "product_id", "address"}:
            problems.append(f"device_spec {spec}: keys must be vendor_id, product_id and address")
        elif not PCI_ADDRESS.match(spec["address"]):
            problems.append(f"device_spec {spec}: address must be a full PCI address (domain:bus:slot.function)")
    for alias in aliases:
        if set(alias) != {"name", "vendor_id", "product_id", "device_type"}:
            problems.append(f"alias {alias}: keys must be name, vendor_id, product_id, device_type")
        if alias.get("device_type") not in {"type-PCI", "type-PF", "type-VF"}:
            problems.append(f"alias {alias}: device_type must be type-PCI, type-PF or type-VF")
    for value in specs + aliases:
        for key in ("vendor_id", "product_id"):
            if not HEX4.match(str(value.get(key))):
                problems.append(f"{value}: {key} must be 4 lower-case hex digits")
    names = [a.get("name") for a in aliases]
    if len(names) != len(set(names)):
        problems.append(f"alias names repeat: {names}")
    spec_ids = {f"{s.get('vendor_id')}:{s.get('product_id')}" for s in specs}
    if {f"{a.get('vendor_id')}:{a.get('product_id')}" for a in aliases} != spec_ids:
        problems.append("every alias needs a device_spec and the other way round")
    plan_vars = first_host_vars(files)
    for spec in specs:
        ids = f"{spec.get('vendor_id')}:{spec.get('product_id')}"
        by_address = spec.get("address") in plan_vars["affordml_vfio_addresses"]
        if ids not in plan_vars["affordml_vfio_ids"] and not by_address:
            problems.append(f"device_spec {spec}: the device is not bound to vfio-pci (by ids or by address)")
    scheduler = parsed["kolla/config/nova/nova-scheduler.conf"]
    enabled = scheduler.get("filter_scheduler", "enabled_filters", fallback="").split(",")
    if "PciPassthroughFilter" not in enabled or len(enabled) != len(set(enabled)):
        problems.append(f"enabled_filters {enabled}: needs PciPassthroughFilter, once")
    return problems


def first_host_vars(files: dict[str, str]) -> dict:
    """The first PC's own plan variables (vfio binding, NICs) are host variables in affordml's inventory."""
    hosts = load_rendered(files["inventory/hosts.yml"])["all"]["children"]["affordml_hosts"]["hosts"]
    return next(iter(hosts.values()))


@pytest.mark.parametrize("case", ENV_CASES)
def test_nova_ini_files_parse_and_pci_values_are_json(case):
    files = RENDERED[case]
    plan_vars = first_host_vars(files)
    if not plan_vars["affordml_vfio_ids"] + plan_vars["affordml_vfio_addresses"]:
        assert not [f for f in files if f.endswith(".conf")], "a plan without GPUs needs no nova PCI config"
        pytest.skip(f"{case}: no GPU, no nova PCI config")
    problems = check_nova_ini(files)
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------ Kubernetes objects

DNS1123_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(?=.{0,63}$)(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^(?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
CONFIGMAP_KEY = re.compile(r"^(?=.{1,253}$)[-._a-zA-Z0-9]+$")


def label_key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and not DNS1123_SUBDOMAIN.match(prefix):
        return f"label key {key!r}: prefix is not a DNS subdomain"
    if not LABEL_NAME.match(name):
        return f"label key {key!r}: name part is not a valid label name"
    return None


def metadata_problems(obj: dict) -> list[str]:
    """ObjectMeta checks that JSON schemas cannot do (apimachinery's name and label syntax)."""
    meta = obj.get("metadata", {})
    problems = []
    if not DNS1123_SUBDOMAIN.match(meta.get("name", "")):
        problems.append(f"{obj['kind']} name {meta.get('name')!r} is not a DNS-1123 subdomain")
    if "namespace" in meta and not DNS1123_LABEL.match(meta["namespace"]):
        problems.append(f"{obj['kind']} namespace {meta['namespace']!r} is not a DNS-1123 label")
    for key, value in meta.get("labels", {}).items():
        problems += [p for p in [label_key_problem(key)] if p]
        if not isinstance(value, str) or not LABEL_VALUE.match(value):
            problems.append(f"label {key}={value!r}: not a valid label value")
    return problems


def k8s_validate(obj: dict) -> str | None:
    """kubernetes-validate --strict for the lock's minor; the validated minor, or None for a custom resource."""
    import kubernetes_validate

    try:
        return kubernetes_validate.validate(obj, K8S_MINOR, strict=True)
    except kubernetes_validate.utils.SchemaNotFoundError:
        return None


def check_k8s(files: dict[str, str]) -> list[str]:
    import kubernetes_validate

    problems, custom = [], []
    objects = k8s_objects(files)
    for rel, obj in objects:
        where = f"{rel}: {obj['kind']}/{obj.get('metadata', {}).get('name')}"
        try:
            minor = k8s_validate(obj)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{where}: {dotted(exc.path)}: {exc.message}")
            continue
        if minor is None:
            custom.append(obj)
            # the CRD schema leaves metadata open: check it as the ObjectMeta of a built-in kind
            try:
                k8s_validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj.get("metadata")})
            except kubernetes_validate.ValidationError as exc:
                problems.append(f"{where}: metadata.{dotted(exc.path)[len('metadata.') :]}: {exc.message}")
        elif minor != K8S_MINOR:
            problems.append(f"{where}: kubernetes-validate used the {minor} schemas, the lock says {K8S_MINOR}")
        problems += [f"{where}: {p}" for p in metadata_problems(obj)]
    checked_elsewhere = ("kueue.x-k8s.io/", "serving.kserve.io/")  # test_kueue_objects..., tests/unit/test_serving.py
    strangers = [o["kind"] for o in custom if not o["apiVersion"].startswith(checked_elsewhere)]
    problems += [f"custom resource {kind}: no CRD here to validate it against" for kind in strangers]
    return problems


@pytest.mark.parametrize("case", ENV_CASES)
def test_kubernetes_objects_validate_strict(case):
    if not k8s_objects(RENDERED[case]):
        pytest.skip(f"{case}: no Kubernetes objects rendered")
    problems = check_k8s(RENDERED[case])
    assert not problems, "\n".join(problems)


def _crds(folder: str) -> dict[tuple[str, str], dict]:
    crds = {}
    for path in sorted(upstream(folder).glob("*.yaml")):
        crd = load_rendered(path.read_text())
        crds[(crd["spec"]["group"], crd["spec"]["names"]["kind"])] = crd
    return crds


def crd_schema(crds: dict, api_version: str, kind: str) -> tuple[dict, dict]:
    group, _, version = api_version.partition("/")
    crd = crds.get((group, kind))
    assert crd, f"no CRD for {kind} in group {group}"
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    assert version in served, f"{kind}: {api_version} is not served (served: {sorted(served)})"
    return crd, served[version]["schema"]["openAPIV3Schema"]


def _props(schema: dict) -> dict | None:
    """properties of a schema, including those under allOf/anyOf/oneOf; None when it lists none."""
    props = dict(schema.get("properties", {})) if "properties" in schema else None
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, []):
            if "properties" in sub:
                props = {**(props or {}), **sub["properties"]}
    return props


def unknown_fields(obj, schema: dict, path=()) -> list[str]:
    """Fields the structural schema does not list: the API server prunes them (or rejects them, strict)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found = []
    if isinstance(obj, dict):
        props, extra = _props(schema), schema.get("additionalProperties")
        for key, value in obj.items():
            if not path and key == "metadata":
                continue  # ObjectMeta: the CRD leaves it open, test_kubernetes_objects_validate_strict checks it
            if props is not None and key in props:
                found += unknown_fields(value, props[key], (*path, key))
            elif isinstance(extra, dict):
                found += unknown_fields(value, extra, (*path, key))
            elif extra is True:
                continue
            else:
                found.append(dotted((*path, key)))
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            found += unknown_fields(item, schema["items"], (*path, i))
    return found


def cel_rules(schema: dict, obj, path=()):
    """(path, rule, value) for each x-kubernetes-validations rule that applies to a value present in obj."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield path, rule, obj
    props = _props(schema) or {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in props:
                yield from cel_rules(props[key], value, (*path, key))
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            yield from cel_rules(schema["items"], item, (*path, i))


def cel_check(rule: str, value) -> bool:
    import celpy

    env = celpy.Environment()
    program = env.program(env.compile(rule))
    result = program.evaluate({"self": celpy.json_to_cel(value)})
    return not isinstance(result, Exception) and result == celpy.celtypes.BoolType(True)


def have_cel() -> bool:
    try:
        import celpy  # noqa: F401
    except ImportError:
        return False
    return True


def switched_queues(objects: list[dict], rendered: list[dict]) -> list[dict]:
    """Each ClusterQueue as an after-hours CronJob leaves it: its `kubectl patch --type=merge` applied (RFC 7386)."""
    queues = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ClusterQueue"}
    variants = []
    for job in (d for d in rendered if d["kind"] == "CronJob"):
        container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        args = container["args"]
        target = queues[args[args.index("clusterqueue") + 1]]
        patch = json.loads(args[args.index("--patch") + 1])
        variant = json.loads(json.dumps(target))
        variant["spec"].update(patch["spec"])
        variant["metadata"]["name"] += f" (after {job['metadata']['name']})"
        variants.append(variant)
    return variants


def check_kueue(files: dict[str, str]) -> list[str]:
    import jsonschema

    crds = _crds("kueue/config/components/crd/bases")
    rendered = docs(files["ml/kueue-queues.yaml"])
    objects = [d for d in rendered if d["apiVersion"].startswith("kueue.x-k8s.io/")]
    problems = [] if objects else ["no Kueue objects"]
    objects += switched_queues(objects, rendered)
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        crd, schema = crd_schema(crds, obj["apiVersion"], obj["kind"])
        for err in jsonschema.Draft4Validator(schema).iter_errors(obj):
            problems.append(f"{where}: {dotted(err.path)}: {err.message}")
        problems += [f"{where}: {p}: unknown field (not in the CRD schema)" for p in unknown_fields(obj, schema)]
        namespaced = crd["spec"]["scope"] == "Namespaced"
        if namespaced != ("namespace" in obj["metadata"]):
            problems.append(
                f"{where}: scope {crd['spec']['scope']} but namespace is {obj['metadata'].get('namespace')}"
            )
        if have_cel():
            for path, rule, value in cel_rules(schema, obj):
                if "oldSelf" in rule["rule"]:
                    continue  # transition rules compare with a previous version of the object
                if not cel_check(rule["rule"], value):
                    problems.append(f"{where}: {dotted(path)}: CEL rule fails: {rule.get('message') or rule['rule']}")
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    for cq in by_kind.get("ClusterQueue", {}).values():
        for group in cq["spec"]["resourceGroups"]:
            for flavor in group["flavors"]:
                if flavor["name"] not in by_kind.get("ResourceFlavor", {}):
                    problems.append(f"ClusterQueue uses ResourceFlavor {flavor['name']} that is not rendered")
                if [r["name"] for r in flavor["resources"]] != group["coveredResources"]:
                    problems.append("a flavor's resources must list coveredResources in the same order (kueue webhook)")
    for lq in by_kind.get("LocalQueue", {}).values():
        if lq["spec"]["clusterQueue"] not in by_kind.get("ClusterQueue", {}):
            problems.append(f"LocalQueue points at ClusterQueue {lq['spec']['clusterQueue']} that is not rendered")
    return problems


@pytest.mark.parametrize("case", ENV_CASES)
def test_kueue_objects_match_the_crds(case):
    files = RENDERED[case]
    if "ml/kueue-queues.yaml" not in files:
        pytest.skip(f"{case}: training_queue is off")
    problems = check_kueue(files)
    assert not problems, "\n".join(problems)
    if not have_cel():
        warnings.warn("cel-python is not installed: the Kueue CRDs' CEL rules were not evaluated", stacklevel=1)


# ------------------------------------------------------------------------------------------ Helm values


def coalesce(base, over):
    """helm's merge of user values over chart values: mappings merge, anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: coalesce(base.get(k), v) for k, v in over.items()}}
    return over


def _kind(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def unknown_value_paths(ours, theirs, path=()) -> list[str]:
    """Key paths we set that the upstream values.yaml lacks, or whose value is of another kind there."""
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            return [f"{dotted(path)}: we set a mapping, upstream has {_kind(theirs)}"]
        if not theirs:  # an empty mapping upstream (nodeSelector: {}, ...) takes any keys
            return []
        found = []
        for key, value in ours.items():
            if key not in theirs:
                found.append(f"{dotted((*path, key))}: not in the upstream values.yaml")
            else:
                found += unknown_value_paths(value, theirs[key], (*path, key))
        return found
    if isinstance(ours, list):
        if theirs is not None and not isinstance(theirs, list):
            return [f"{dotted(path)}: we set a list, upstream has {_kind(theirs)}"]
        if theirs and isinstance(theirs[0], dict):
            return [p for i, item in enumerate(ours) for p in unknown_value_paths(item, theirs[0], (*path, i))]
        return []
    if theirs is not None and _kind(ours) != _kind(theirs):
        return [f"{dotted(path)}: we set a {_kind(ours)} ({ours!r}), upstream has a {_kind(theirs)} ({theirs!r})"]
    return []


HELM_VALUES = {
    "gpu/gpu-operator-values.yaml": "gpu-operator/deployments/gpu-operator/values.yaml",
    "gpu/hami-values.yaml": "hami/charts/hami/values.yaml",
    "ml/kube-prometheus-stack-values.yaml": "prometheus-community-helm-charts/charts/kube-prometheus-stack/values.yaml",
    "ml/kserve-values.yaml": "kserve/charts/kserve-resources/values.yaml",
}


def check_helm_values(files: dict[str, str], target: str) -> list[str]:
    theirs = load_upstream_yaml(HELM_VALUES[target])
    return [f"{target}: {p}" for p in unknown_value_paths(load_rendered(files[target]), theirs)]


@pytest.mark.parametrize("target", sorted(HELM_VALUES))
@pytest.mark.parametrize("case", ENV_CASES)
def test_helm_values_keys_exist_upstream(case, target):
    files = RENDERED[case]
    if target not in files:
        pytest.skip(f"{case}: {target} is not rendered (component off)")
    problems = check_helm_values(files, target)
    assert not problems, f"vs upstream {HELM_VALUES[target]}:\n" + "\n".join(problems)


def check_clusterpolicy(files: dict[str, str]) -> list[str]:
    """The chart copies driver/devicePlugin/mig/... into ClusterPolicy.spec: our values there must fit its schema."""
    import jsonschema

    crd = load_upstream_yaml("gpu-operator/deployments/gpu-operator/crds/nvidia.com_clusterpolicies.yaml")
    spec_schema = crd["spec"]["versions"][-1]["schema"]["openAPIV3Schema"]["properties"]["spec"]

    def prune(value, schema):  # keep what the CRD describes; chart-only keys (config.create) are not in the CR
        if isinstance(value, dict) and "properties" in schema:
            return {k: prune(v, schema["properties"][k]) for k, v in value.items() if k in schema["properties"]}
        return value

    defaults = load_upstream_yaml("gpu-operator/deployments/gpu-operator/values.yaml")
    ours = load_rendered(files["gpu/gpu-operator-values.yaml"])
    validator = jsonschema.Draft4Validator(spec_schema)
    assert not list(validator.iter_errors(prune(defaults, spec_schema))), "upstream defaults should fit the CRD"
    assert {"driver", "mig", "devicePlugin", "dcgmExporter"} <= set(prune(ours, spec_schema))
    merged = prune(coalesce(defaults, ours), spec_schema)
    return [f"ClusterPolicy spec.{dotted(e.path)}: {e.message}" for e in validator.iter_errors(merged)]


@pytest.mark.parametrize("case", ENV_CASES)
def test_gpu_operator_values_match_the_clusterpolicy_crd(case):
    files = RENDERED[case]
    if "gpu/gpu-operator-values.yaml" not in files:
        pytest.skip(f"{case}: no GPU")
    problems = check_clusterpolicy(files)
    assert not problems, "\n".join(problems)


def check_jupyterhub(files: dict[str, str]) -> list[str]:
    import jsonschema

    schema = load_upstream_yaml("zero-to-jupyterhub-k8s/jupyterhub/values.schema.yaml")
    defaults = load_upstream_yaml("zero-to-jupyterhub-k8s/jupyterhub/values.yaml")
    ours = load_rendered(files["ml/jupyterhub-values.yaml"])
    validator = jsonschema.Draft7Validator(schema)
    assert not list(validator.iter_errors(defaults)), "the upstream values.yaml should pass its own schema"
    problems = [f"{dotted(e.path)}: {e.message}" for e in validator.iter_errors(coalesce(defaults, ours))]
    # profileList items are KubeSpawner's, hub.config is traitlets config for any class and singleuser.extraLabels
    # any pod labels (the schema takes any key there): the chart passes them through, its values.yaml has no example
    passed_through = ("singleuser.profileList", "hub.config.", "singleuser.extraLabels.")
    problems += [p for p in unknown_value_paths(ours, defaults) if not p.startswith(passed_through)]
    profiles = ours.get("singleuser", {}).get("profileList", [])
    slugs = [p.get("slug", "") for p in profiles]
    if len(slugs) != len(set(slugs)) or not all(DNS1123_LABEL.match(s) for s in slugs):
        problems.append(f"profile slugs must be unique DNS labels: {slugs}")
    if sum(1 for p in profiles if p.get("default")) != 1:
        problems.append("exactly one profile must be the default")
    return problems


@pytest.mark.parametrize("case", ENV_CASES)
def test_jupyterhub_values_match_the_chart_schema(case):
    files = RENDERED[case]
    if "ml/jupyterhub-values.yaml" not in files:
        pytest.skip(f"{case}: jupyterhub is off")
    problems = check_jupyterhub(files)
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------ device plugin config


@functools.cache
def _example_shapes() -> dict[tuple, set[str]]:
    """key path (lists as []) -> kinds of value, from the upstream device-plugin config examples and templates."""
    folder = upstream("k8s-device-plugin/_extracted-from-README.md")
    texts = [p.read_text() for p in sorted(folder.iterdir()) if p.suffix in {".yaml", ".txt"}]
    texts.append(upstream("gpu-operator/tests/plugin-config.yaml").read_text())
    shapes: dict[tuple, set[str]] = {}

    def placeholder(match):  # <bool>, <num-replicas>, <resource-name> in the README's option templates
        word = match.group(1)
        return "true" if word == "bool" else "2" if word.startswith("num") else '"text"'

    def walk(value, path):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*path, k))
        elif isinstance(value, list):
            for item in value:
                walk(item, (*path, "[]"))
        else:
            shapes.setdefault(path, set()).add(_kind(value))

    for text in texts:
        text = "\n".join(line for line in text.splitlines() if line.strip() != "...")
        walk(load_rendered(re.sub(r"<([a-z-]+)>", placeholder, text)), ())
    return shapes


def _values_seen(key: str) -> set:
    """Every value the upstream examples give a key (e.g. migStrategy), placeholders left out."""
    seen = set()
    folder = upstream("k8s-device-plugin/_extracted-from-README.md")
    for path in [*sorted(folder.glob("*.yaml")), upstream("gpu-operator/tests/plugin-config.yaml")]:
        for match in re.finditer(rf"^\s*{key}:\s*\"?([^\"\s#]+)", path.read_text(), re.M):
            seen.add(match.group(1))
    return seen


def check_device_plugin(files: dict[str, str]) -> list[str]:
    shapes = _example_shapes()
    mig_strategies = _values_seen("migStrategy")
    assert shapes and mig_strategies
    (configmap,) = docs(files["gpu/device-plugin-config.yaml"])
    values = load_rendered(files["gpu/gpu-operator-values.yaml"])
    labels = load_rendered(files["gpu/node-labels.yaml"])
    problems = []

    def walk(value, path, key):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*path, k), key)
        elif isinstance(value, list):
            for item in value:
                walk(item, (*path, "[]"), key)
        elif path not in shapes:
            problems.append(f"{key}: {dotted(path)}: no upstream example has this key")
        elif _kind(value) not in shapes[path]:
            problems.append(f"{key}: {dotted(path)} is a {_kind(value)}, upstream examples: {shapes[path]}")

    for key, text in configmap["data"].items():
        if not CONFIGMAP_KEY.match(key):
            problems.append(f"{key!r} is not a valid ConfigMap key")
        try:
            config = load_rendered(text)
        except yaml.YAMLError as exc:
            problems.append(f"{key}: not YAML: {' '.join(str(exc).split())}")
            continue
        if not isinstance(config, dict):
            problems.append(f"{key}: not a mapping")
            continue
        walk(config, (), key)
        if config.get("version") != "v1":
            problems.append(f"{key}: version must be v1")
        if config.get("flags", {}).get("migStrategy") not in mig_strategies:
            problems.append(f"{key}: migStrategy {config.get('flags', {}).get('migStrategy')} not in {mig_strategies}")
        for mode in ("timeSlicing", "mps"):
            for resource in config.get("sharing", {}).get(mode, {}).get("resources", []):
                if not (isinstance(resource.get("replicas"), int) and resource["replicas"] >= 2):
                    problems.append(f"{key}: {mode} replicas must be a whole number of at least 2")
        if len(config.get("sharing", {})) > 1:
            problems.append(f"{key}: one sharing strategy per config")
    # how the GPU Operator finds these: values name the ConfigMap and a default key; nodes are labelled with keys
    plugin = values["devicePlugin"]["config"]
    if plugin["name"] != configmap["metadata"]["name"]:
        problems.append(f"values devicePlugin.config.name {plugin['name']} is not the ConfigMap's name")
    if plugin["default"] not in configmap["data"]:
        problems.append(f"values devicePlugin.config.default {plugin['default']} is not a key of the ConfigMap")
    for node, node_labels in labels.items():
        key = node_labels.get("nvidia.com/device-plugin.config")
        if key not in configmap["data"]:
            problems.append(f"node {node}: label nvidia.com/device-plugin.config={key} names no ConfigMap key")
        for name, value in node_labels.items():
            problems += [p for p in [label_key_problem(name)] if p]
            if not LABEL_VALUE.match(value):
                problems.append(f"node {node}: label value {value!r} is not valid")
    return problems


@pytest.mark.parametrize("case", ENV_CASES)
def test_device_plugin_configs_have_the_upstream_shape(case):
    files = RENDERED[case]
    if "gpu/device-plugin-config.yaml" not in files:
        pytest.skip(f"{case}: no GPU")
    problems = check_device_plugin(files)
    assert not problems, "\n".join(problems)


def kueue_transformations(files: dict[str, str]) -> list[dict]:
    values = load_rendered(files.get("ml/kueue-values.yaml", "{}")) or {}
    text = values.get("managerConfig", {}).get("controllerManagerConfigYaml", "")
    return ((yaml.safe_load(text) or {}).get("resources") or {}).get("transformations", [])


def check_gpu_resources(files: dict[str, str]) -> list[str]:
    """Labelled nodes are Kubespray nodes; every extended resource asked for is one the GPU stack advertises."""
    problems = []
    inventory = load_rendered(files["kubespray/inventory.yml"])
    kube_nodes = set(inventory["all"]["children"]["kube_node"]["hosts"] or {})
    labels = load_rendered(files.get("gpu/node-labels.yaml", "{}")) or {}
    if not set(labels) <= kube_nodes:
        problems.append(f"labelled nodes {sorted(labels)} are not all in kube_node {sorted(kube_nodes)}")
    advertised = set()
    if labels:
        advertised.add("nvidia.com/gpu")
        if any(n.get("affordml.io/gpu-sharing") == "mig" for n in labels.values()):
            advertised.add(re.compile(r"^nvidia\.com/mig-\d+g\.\d+gb$"))
    if "gpu/hami-values.yaml" in files:
        hami = load_upstream_yaml("hami/charts/hami/values.yaml")
        advertised |= {hami[k] for k in ("resourceName", "resourceMem", "resourceMemPercentage", "resourceCores")}
    requested = set()
    if "ml/jupyterhub-values.yaml" in files:
        for profile in load_rendered(files["ml/jupyterhub-values.yaml"])["singleuser"]["profileList"]:
            requested |= set(profile.get("kubespawner_override", {}).get("extra_resource_limits", {}))
    if "ml/kueue-queues.yaml" in files:
        for d in docs(files["ml/kueue-queues.yaml"]):
            for group in d.get("spec", {}).get("resourceGroups", []):
                requested |= {r for r in group["coveredResources"] if "/" in r}
        # Kueue's resource transformations count these from advertised ones (their inputs)
        for t in kueue_transformations(files):
            if any(a == t["input"] for a in advertised if isinstance(a, str)):
                advertised |= set(t["outputs"])

    def known(resource):
        return any(a == resource if isinstance(a, str) else a.match(resource) for a in advertised)

    problems += [f"nothing advertises the resource {r}" for r in sorted(requested) if not known(r)]
    return problems


@pytest.mark.parametrize("case", ENV_CASES)
def test_gpu_nodes_and_requested_resources_exist(case):
    problems = check_gpu_resources(RENDERED[case])
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------ Kubespray

KUBESPRAY_VARS = [
    "kubespray/inventory/sample/group_vars",
    "kubespray/roles/kubespray_defaults/defaults/main",
    "kubespray/roles/kubespray_defaults/vars/main",
]


@functools.cache
def kubespray_keys() -> dict[str, object]:
    """Every variable Kubespray documents (sample group_vars, set or `# key:`) or defaults, with its value."""
    keys: dict[str, object] = {}
    for folder in KUBESPRAY_VARS:
        for path in sorted(upstream(folder).rglob("*.yml")):
            text = path.read_text()
            for match in re.finditer(r"^#\s?([a-z_][a-z0-9_]*):", text, re.M):
                keys.setdefault(match.group(1), None)
            keys.update(load_rendered(text) or {})
    return keys


def options_comment(key: str) -> set[str] | None:
    """The "Can be a, b or c" comment just above a key in the sample group_vars, as a set."""
    for path in upstream("kubespray/inventory/sample/group_vars").rglob("*.yml"):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.startswith(f"{key}:"):
                for above in lines[max(0, i - 3) : i]:
                    match = re.match(r"#\s*Can be (.+)$", above)
                    if match:
                        return set(re.split(r",\s*|\s+or\s+", match.group(1).strip()))
    return None


def check_kubespray_vars(files: dict[str, str]) -> list[str]:
    keys = kubespray_keys()
    problems, ours = [], {}
    for rel, text in files.items():
        if rel.startswith("kubespray/group_vars/"):
            for key, value in load_rendered(text).items():
                ours[key] = value
                if key not in keys:
                    problems.append(f"{rel}: {key} is not a Kubespray variable")
                elif (
                    keys[key] is not None
                    and not (isinstance(keys[key], str) and "{{" in keys[key])
                    and _kind(value) != _kind(keys[key])
                ):
                    problems.append(f"{rel}: {key} is a {_kind(value)}, Kubespray's default is {keys[key]!r}")
    assert ours, "no group_vars rendered"
    for key in ("kube_proxy_mode", "dns_mode"):
        allowed = options_comment(key)
        if key in ours and allowed and ours[key] not in allowed:
            problems.append(f"{key}: {ours[key]} is not one of {sorted(allowed)}")
    plugin = ours.get("kube_network_plugin")
    if (
        plugin
        and not (upstream("kubespray/inventory/sample/group_vars/k8s_cluster") / f"k8s-net-{plugin}.yml").exists()
    ):
        problems.append(f"kube_network_plugin {plugin}: Kubespray has no k8s-net-{plugin}.yml")
    checksums = load_upstream_yaml("kubespray/roles/kubespray_defaults/vars/main/checksums.yml")
    if ours["kube_version"] not in {str(v) for v in checksums["kubelet_checksums"]["amd64"]}:
        problems.append(f"kube_version {ours['kube_version']}: Kubespray has no kubelet checksum for it")
    plan_vars = load_rendered(files["vars/plan.yml"])
    nets = {
        "kube_pods_subnet": ours["kube_pods_subnet"],
        "kube_service_addresses": ours["kube_service_addresses"],
        "vm subnet": plan_vars["affordml_vm_subnet"],
        "external subnet": plan_vars["affordml_external_subnet"],
    }
    parsed = {k: ipaddress.ip_network(v) for k, v in nets.items()}
    names = sorted(parsed)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if parsed[a].overlaps(parsed[b]):
                problems.append(f"{a} {parsed[a]} overlaps {b} {parsed[b]}")
    return problems


@pytest.mark.parametrize("case", ENV_CASES)
def test_kubespray_group_vars_exist_upstream(case):
    problems = check_kubespray_vars(RENDERED[case])
    assert not problems, "\n".join(problems)


def check_platform_choices(files: dict[str, str]) -> list[str]:
    """What the platform needs from Kubespray beyond valid keys: cluster.local (charts assume it), a default
    StorageClass (JupyterHub's hub PVC), a kube-proxy mode and CNI backend a stock guest kernel carries, one etcd
    member on the control plane (docs/kubernetes.md), and connection keys that Kubespray documents."""
    from affordml.kube.access import ClusterAccess, NodeAccess
    from affordml.kube.inventory import connection_inventory

    ours: dict = {}
    for rel, text in files.items():
        if rel.startswith("kubespray/group_vars/"):
            ours.update(load_rendered(text))
    problems = []
    wanted = {
        "cluster_name": "cluster.local",
        "local_path_provisioner_enabled": True,
        "kube_proxy_mode": "iptables",
        "calico_network_backend": "vxlan",
        "etcd_deployment_type": "host",
    }
    problems += [f"{k} is {ours.get(k)!r}, the platform needs {v!r}" for k, v in wanted.items() if ours.get(k) != v]
    inventory = load_rendered(files["kubespray/inventory.yml"])["all"]["children"]
    if list(inventory["etcd"]["hosts"]) != list(inventory["kube_control_plane"]["hosts"]):
        problems.append("etcd must be the control plane's single member")
    keys = kubespray_keys()
    access = ClusterAccess((NodeAccess("cp-1", "control-plane", "192.0.2.10", "ubuntu", Path("k"), Path("kh")),))
    for key in connection_inventory(access)["all"]["vars"]:
        if not key.startswith("ansible_") and key not in keys:
            problems.append(f"connection inventory: {key} is not a Kubespray variable")
    return problems


@pytest.mark.parametrize("case", ENV_CASES)
def test_kubespray_platform_choices(case):
    problems = check_platform_choices(RENDERED[case])
    assert not problems, "\n".join(problems)


def ansible_yaml_inventory(text: str, tmp_path: Path, name: str):
    """Parse with Ansible's own yaml inventory plugin (what ansible-playbook -i does)."""
    from ansible.inventory.data import InventoryData
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import inventory_loader

    path = tmp_path / name
    path.write_text(text)
    plugin = inventory_loader.get("yaml")
    inventory = InventoryData()
    loader = DataLoader()
    assert plugin.verify_file(str(path))
    plugin.parse(inventory, loader, str(path), cache=False)
    return inventory


def check_inventories(files: dict[str, str], tmp_path: Path) -> list[str]:
    from ansible.errors import AnsibleError

    problems = []
    try:
        kube = ansible_yaml_inventory(files["kubespray/inventory.yml"], tmp_path, "kubespray.yml")
        ours = ansible_yaml_inventory(files["inventory/hosts.yml"], tmp_path, "hosts.yml")
    except AnsibleError as exc:
        return [f"Ansible cannot read an inventory: {' '.join(str(exc).split())}"]
    defaults = upstream("kubespray/roles/kubespray_defaults/defaults/main").rglob("*.yml")
    upstream_text = "\n".join(p.read_text() for p in defaults)
    groups = {g: sorted(h.name for h in kube.groups[g].get_hosts()) for g in kube.groups}
    for group in ("kube_control_plane", "etcd", "kube_node", "k8s_cluster"):
        if not groups.get(group):
            problems.append(f"Kubespray group {group} is missing or empty")
        if not re.search(rf"(?<![\w-]){group}(?![\w-])", upstream_text):
            problems.append(f"Kubespray's defaults never name the group {group}")
    cluster = set(groups.get("kube_control_plane", [])) | set(groups.get("kube_node", []))
    if set(groups.get("k8s_cluster", [])) != cluster:
        problems.append("k8s_cluster must hold kube_control_plane and kube_node")
    if len(groups.get("etcd", [])) % 2 != 1:
        problems.append("etcd needs an odd number of members")
    # Ansible connects to the floating IP the cloud phase records (per-run connection inventory, tests/unit/
    # test_kube.py); the nodes talk over their tenant addresses
    for host in kube.hosts.values():
        try:
            if len({ipaddress.ip_address(host.vars[k]) for k in ("ip", "access_ip")}) != 1:
                problems.append(f"{host.name}: ip and access_ip differ")
            if "ansible_host" in host.vars:
                problems.append(f"{host.name}: ansible_host belongs to the per-run connection inventory")
        except (KeyError, ValueError) as exc:
            problems.append(f"{host.name}: {exc}")
    controllers = (
        {h.name for h in ours.groups["affordml_controller"].get_hosts()}
        if "affordml_controller" in ours.groups
        else set()
    )
    if not controllers or not controllers <= set(ours.hosts):
        problems.append("inventory/hosts.yml: affordml_controller must name a host")
    return problems


@pytest.mark.parametrize("case", ENV_CASES)
def test_inventories_parse_with_ansible(case, tmp_path):
    problems = check_inventories(RENDERED[case], tmp_path)
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------ kolla-ansible


@pytest.fixture(scope="session")
def kolla_share() -> Path:
    """share/kolla-ansible of the kolla-ansible toolchain (pip install once, cached under AFFORDML_TOOLCHAINS)."""
    from affordml.errors import RunError
    from affordml.run.toolchains import ensure, kolla_toolchain

    try:
        bin_dir = ensure(kolla_toolchain(LOCK), log=lambda message: print(message))
    except RunError as exc:
        pytest.skip(f"the kolla-ansible toolchain cannot be installed here: {exc.one_line()}")
    share = bin_dir.parent / "share" / "kolla-ansible"
    assert (share / "etc_examples" / "kolla" / "globals.yml").is_file(), f"no globals.yml in {share}"
    return share


def globals_keys(text: str) -> dict[str, str]:
    """key -> its comment block and example line, for every `key:` or `#key:` at the start of a line."""
    keys, block = {}, []
    for line in text.splitlines():
        match = re.match(r"^#?([a-z_][a-z0-9_]*):(.*)$", line)
        if match:
            keys.setdefault(match.group(1), "\n".join(block[-6:]) + "\n" + match.group(2))
            block = []
        elif line.startswith("#"):
            block.append(line)
        else:
            block = []
    return keys


def valid_options(context: str) -> set[str] | None:
    match = re.search(r"Valid options are \[([^\]]+)\]", context)
    return {o.strip().strip("'\"") for o in match.group(1).split(",")} if match else None


def check_kolla_globals(files: dict[str, str], share: Path) -> list[str]:
    ours = load_rendered(files["kolla/globals.yml"])
    shipped = globals_keys((share / "etc_examples" / "kolla" / "globals.yml").read_text())
    version = LOCK["kolla_ansible"]["version"]
    problems = [f"{k}: not in kolla-ansible {version} globals.yml" for k in ours if k not in shipped]
    for key, value in ours.items():
        if key not in shipped:
            continue
        allowed = valid_options(shipped[key])
        if allowed and str(value) not in allowed:
            problems.append(f"{key}: {value!r} is not one of {sorted(allowed)}")
    common = load_rendered((share / "ansible" / "group_vars" / "all" / "common.yml").read_text())
    if ours.get("openstack_release") != common["openstack_release"]:
        release = common["openstack_release"]
        problems.append(f"openstack_release {ours.get('openstack_release')}: kolla-ansible {version} deploys {release}")
    return problems


@pytest.mark.parametrize("case", ENV_CASES)
def test_kolla_globals_keys_exist_in_the_installed_kolla_ansible(case, kolla_share):
    problems = check_kolla_globals(RENDERED[case], kolla_share)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", ENV_CASES)
def test_proxysql_and_mariadb_never_share_an_address(case, kolla_share):
    """In the installed kolla-ansible, ProxySQL is on wherever MariaDB is and listens on the internal VIP, MariaDB
    on the host's management address: the VIP must be another address (haproxy and keepalived on, the
    all-in-one layout kolla-ansible's CI deploys), or the deploy's MariaDB cannot bind port 3306."""
    ansible = kolla_share / "ansible"
    assert 'enable_proxysql: "{{ enable_mariadb }}"' in (ansible / "group_vars/all/proxysql.yml").read_text()
    assert "bind-address={{ api_interface_address }}" in (ansible / "roles/mariadb/templates/galera.cnf.j2").read_text()
    proxysql = (ansible / "roles/loadbalancer/templates/proxysql/proxysql.yaml.j2").read_text()
    assert 'interfaces: "{{ kolla_internal_vip_address' in proxysql
    ours = load_rendered(RENDERED[case]["kolla/globals.yml"])
    plan_vars = load_rendered(RENDERED[case]["vars/plan.yml"])
    assert ours.get("enable_mariadb", "yes") == "yes"
    assert ours["kolla_internal_vip_address"] != plan_vars["affordml_management_address"]
    assert (ours["enable_haproxy"], ours["enable_keepalived"]) == ("yes", "yes")


def test_kolla_globals_against_master_is_reported(kolla_share):
    """kolla-ansible master (the next release) against the installed one, for the keys we set: warnings only."""
    master = globals_keys(upstream("kolla-ansible/etc/kolla/globals.yml").read_text())
    shipped = globals_keys((kolla_share / "etc_examples" / "kolla" / "globals.yml").read_text())
    ours = sorted({k for files in RENDERED.values() for k in load_rendered(files["kolla/globals.yml"])})
    assert ours and all(k in shipped for k in ours)
    report = [f"{k}: gone on master" for k in ours if k not in master]
    for key in ours:
        if key in master and valid_options(master[key]) != valid_options(shipped[key]):
            before, after = sorted(valid_options(shipped[key]) or []), sorted(valid_options(master[key]) or [])
            report.append(f"{key}: valid options {before} -> {after}")
    added, dropped = sorted(set(master) - set(shipped)), sorted(set(shipped) - set(master))
    report.append(f"master globals.yml adds {len(added)} keys, drops {len(dropped)}: {', '.join(dropped) or 'none'}")
    warnings.warn("kolla-ansible master vs installed, keys affordml sets: " + "; ".join(report), stacklevel=1)


def check_kolla_custom_config(files: dict[str, str], share: Path) -> list[str]:
    services, problems = {}, []
    for role, var in (("nova", "nova_services"), ("nova-cell", "nova_cell_services")):
        services.update(load_rendered((share / "ansible" / "roles" / role / "defaults" / "main.yml").read_text())[var])
        config_tasks = (share / "ansible" / "roles" / role / "tasks" / "config.yml").read_text()
        if "{{ node_custom_config }}/nova/{{ item.key }}.conf" not in config_tasks:
            problems.append(f"kolla-ansible's {role} role no longer merges nova/<service>.conf")
    for rel in files:
        if rel.startswith("kolla/config/"):
            folder, _, name = rel.removeprefix("kolla/config/").rpartition("/")
            if folder != "nova" or name.removesuffix(".conf") not in services:
                problems.append(f"{rel}: kolla-ansible merges no such file (nova services: {sorted(services)})")
    return problems


@pytest.mark.parametrize("case", ENV_CASES)
def test_kolla_custom_config_files_name_nova_services(case, kolla_share):
    if not [rel for rel in RENDERED[case] if rel.startswith("kolla/config/")]:
        pytest.skip(f"{case}: no custom kolla config")
    problems = check_kolla_custom_config(RENDERED[case], kolla_share)
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------ the checks can fail

MUTATION_CASE = "desktop-rtx4090--time-slicing"

# (what, check, file, regex, replacement): one edit of a good render that the check must reject
MUTATIONS = [
    ("yaml syntax", "check_yaml", "kubespray/group_vars/all/all.yml", r"\[\]", "[\n  - x"),
    ("INI value not JSON", "check_nova_ini", "kolla/config/nova/nova-compute.conf", r'\{"vendor_id"', "{vendor_id"),
    ("INI upper-case id", "check_nova_ini", "kolla/config/nova/nova-api.conf", r'"10de"', '"10DE"'),
    ("INI no section", "check_nova_ini", "kolla/config/nova/nova-scheduler.conf", r"\[filter_scheduler\]\n", ""),
    ("k8s unknown field", "check_k8s", "gpu/device-plugin-config.yaml", r"  labels:", "  labelz:"),
    (
        "k8s label value",
        "check_k8s",
        "gpu/device-plugin-config.yaml",
        r"managed-by: affordml",
        "managed-by: affordml ml",
    ),
    ("k8s bad name", "check_k8s", "ml/kueue-queues.yaml", r"name: ml\b", "name: ML_Jobs"),
    ("kueue unknown field", "check_kueue", "ml/kueue-queues.yaml", r"(  queueingStrategy: \w+)", "\\1\n  fairness: on"),
    ("kueue enum", "check_kueue", "ml/kueue-queues.yaml", r"BestEffortFIFO", "Fastest"),
    ("kueue quantity", "check_kueue", "ml/kueue-queues.yaml", r'Gi"', ' gigabytes"'),
    ("kueue scope", "check_kueue", "ml/kueue-queues.yaml", r"(  name: affordml-training\n)", "\\1  namespace: ml\n"),
    ("kueue order", "check_kueue", "ml/kueue-queues.yaml", r"\[cpu, memory", "[memory, cpu"),
    (  # the after-hours switch's merge patch is validated as the ClusterQueue it leaves behind
        "kueue switch patch",
        "check_kueue",
        "ml/kueue-queues.yaml",
        r'\\"borrowingLimit\\":\\"0\\"',
        r'\\"borrowingLimit\\":\\"lots\\"',
    ),
    (
        "helm values typo",
        "check_helm_values:gpu/gpu-operator-values.yaml",
        "gpu/gpu-operator-values.yaml",
        r"migManager:",
        "migManagr:",
    ),
    (
        "helm values kind",
        "check_helm_values:gpu/gpu-operator-values.yaml",
        "gpu/gpu-operator-values.yaml",
        r"enabled: true",
        'enabled: "true"',
    ),
    (
        "helm values deep",
        "check_helm_values:ml/kube-prometheus-stack-values.yaml",
        "ml/kube-prometheus-stack-values.yaml",
        r"retention:",
        "retension:",
    ),
    ("ClusterPolicy enum", "check_clusterpolicy", "gpu/gpu-operator-values.yaml", r"strategy: mixed", "strategy: mixd"),
    (
        "jupyterhub unknown key",
        "check_jupyterhub",
        "ml/jupyterhub-values.yaml",
        r"(  timeout: \d+)",
        "\\1\n  interval: 5",
    ),
    ("jupyterhub type", "check_jupyterhub", "ml/jupyterhub-values.yaml", r"timeout: \d+", "timeout: an hour"),
    ("jupyterhub slug", "check_jupyterhub", "ml/jupyterhub-values.yaml", r'slug: "cpu"', 'slug: "CPU only"'),
    (
        "plugin unknown key",
        "check_device_plugin",
        "gpu/device-plugin-config.yaml",
        r"( +)(failRequestsGreaterThanOne: true)",
        "\\1\\2\n\\1oversubscribe: true",
    ),
    ("plugin kind", "check_device_plugin", "gpu/device-plugin-config.yaml", r"replicas: (\d+)", 'replicas: "\\1"'),
    (
        "plugin migStrategy",
        "check_device_plugin",
        "gpu/device-plugin-config.yaml",
        r"migStrategy: none",
        "migStrategy: all",
    ),
    ("plugin label", "check_device_plugin", "gpu/node-labels.yaml", r'config: "[^"]+"', 'config: "worker-9"'),
    ("resource name", "check_gpu_resources", "ml/jupyterhub-values.yaml", r"nvidia.com/gpu:", "nvidia.com/gpus:"),
    (
        "kubespray unknown var",
        "check_kubespray_vars",
        "kubespray/group_vars/k8s_cluster/addons.yml",
        r"metrics_server_enabled",
        "metrics_server_enable",
    ),
    (
        "kubespray option",
        "check_kubespray_vars",
        "kubespray/group_vars/k8s_cluster/k8s-cluster.yml",
        r"kube_proxy_mode: \w+",
        "kube_proxy_mode: userspace",
    ),
    (
        "kubespray plugin",
        "check_kubespray_vars",
        "kubespray/group_vars/k8s_cluster/k8s-cluster.yml",
        r"kube_network_plugin: \w+",
        "kube_network_plugin: weave",
    ),
    (
        "kubespray version",
        "check_kubespray_vars",
        "kubespray/group_vars/k8s_cluster/k8s-cluster.yml",
        r'kube_version: !unsafe "[^"]+"',
        'kube_version: "1.20.0"',
    ),
    (
        "kubespray kind",
        "check_kubespray_vars",
        "kubespray/group_vars/k8s_cluster/addons.yml",
        r"metrics_server_enabled: true",
        "metrics_server_enabled: yes please",
    ),
    (
        "kubespray cluster domain",
        "check_platform_choices",
        "kubespray/group_vars/k8s_cluster/k8s-cluster.yml",
        r'cluster_name: !unsafe "cluster.local"',
        'cluster_name: !unsafe "affordml.local"',
    ),
    (
        "no default storage class",
        "check_platform_choices",
        "kubespray/group_vars/k8s_cluster/addons.yml",
        r"local_path_provisioner_enabled: true",
        "local_path_provisioner_enabled: false",
    ),
    (
        "etcd beyond the control plane",
        "check_platform_choices",
        "kubespray/inventory.yml",
        r"    etcd:\n      hosts:\n        cp-1:\n",
        "    etcd:\n      hosts:\n        cp-1:\n        worker-1:\n        worker-2:\n",
    ),
    (
        "subnet overlap",
        "check_kubespray_vars",
        "kubespray/group_vars/k8s_cluster/k8s-cluster.yml",
        r"kube_pods_subnet: \S+",
        "kube_pods_subnet: 10.42.0.0/16",
    ),
    (
        "inventory group",
        "check_inventories",
        "kubespray/inventory.yml",
        r"    etcd:\n      hosts:\n        cp-1:\n",
        "",
    ),
    (
        "inventory shape",
        "check_inventories",
        "kubespray/inventory.yml",
        r"  children:\n    kube_control_plane:",
        "  children:\n    - kube_control_plane:",
    ),
    (
        "inventory ip",
        "check_inventories",
        "kubespray/inventory.yml",
        r'access_ip: !unsafe "[^"]+"',
        'access_ip: "10.9.9.9"',
    ),
]
KOLLA_MUTATIONS = [
    ("globals unknown key", "check_kolla_globals", "kolla/globals.yml", r"enable_heat:", "enable_heatt:"),
    (
        "globals option",
        "check_kolla_globals",
        "kolla/globals.yml",
        r'neutron_plugin_agent: "\w+"',
        'neutron_plugin_agent: "ovs"',
    ),
    (
        "globals release",
        "check_kolla_globals",
        "kolla/globals.yml",
        r'openstack_release: !unsafe "[^"]+"',
        'openstack_release: "2024.1"',
    ),
    (
        "custom config name",
        "check_kolla_custom_config",
        "kolla/config/nova/nova-api.conf",
        None,
        "kolla/config/nova/nova-apis.conf",
    ),
]


def _mutated(rel: str, pattern: str | None, replacement: str) -> dict[str, str]:
    files = dict(RENDERED[MUTATION_CASE])
    if pattern is None:  # a rename
        files[replacement] = files.pop(rel)
        return files
    files[rel], count = re.subn(pattern, replacement, files[rel], count=1)
    assert count == 1, f"the mutation {pattern!r} no longer matches {rel}"
    return files


def _run_check(name: str, files: dict[str, str], **extra) -> list[str]:
    check, _, target = name.partition(":")
    return globals()[check](files, target, **extra) if target else globals()[check](files, **extra)


@pytest.mark.parametrize(("what", "check", "rel", "pattern", "replacement"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_each_check_rejects_a_broken_render(what, check, rel, pattern, replacement, tmp_path):
    extra = {"tmp_path": tmp_path} if check == "check_inventories" else {}
    assert not _run_check(check, dict(RENDERED[MUTATION_CASE]), **extra), "the unchanged render should pass"
    problems = _run_check(check, _mutated(rel, pattern, replacement), **extra)
    assert problems, f"{check} accepted a render with: {what}"


@pytest.mark.parametrize(
    ("what", "check", "rel", "pattern", "replacement"), KOLLA_MUTATIONS, ids=[m[0] for m in KOLLA_MUTATIONS]
)
def test_each_kolla_check_rejects_a_broken_render(what, check, rel, pattern, replacement, kolla_share):
    assert not _run_check(check, dict(RENDERED[MUTATION_CASE]), share=kolla_share)
    assert _run_check(check, _mutated(rel, pattern, replacement), share=kolla_share), f"{check} accepted: {what}"


def test_kueue_cel_rules_are_evaluated():
    pytest.importorskip("celpy", reason="cel-python (test extra) evaluates the CRDs' x-kubernetes-validations rules")
    files = _mutated("ml/kueue-queues.yaml", r'            - name: "cpu"\n              nominalQuota: "\d+"\n', "")
    assert any("CEL rule fails" in p for p in check_kueue(files)), check_kueue(files)


def ansible_read_files(files: dict[str, str]) -> dict[str, str]:
    """The rendered YAML files that Ansible itself loads (inventories, extra-vars files, group_vars)."""
    from affordml.render.engine import OUTPUTS

    return {o.target: files[o.target] for o in OUTPUTS if o.reader == "ansible" and o.target in files}


def templatable_strings(value, path=()) -> list[str]:
    """Paths of the strings in a value loaded by Ansible that Ansible would still template."""
    from ansible.template import is_trusted_as_template

    if isinstance(value, dict):
        return [p for k, v in value.items() for p in templatable_strings(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in templatable_strings(v, (*path, i))]
    if isinstance(value, str) and is_trusted_as_template(value):
        return [".".join(str(p) for p in path) + f" = {value!r}"]
    return []


# Template strings affordml writes on purpose, for Kubespray's run: the VM key comes from the cloud phase.
@pytest.mark.parametrize("case", ENV_CASES)
def test_ansible_loads_every_rendered_string_as_data(case, tmp_path):
    """Ansible's own loader, trusting the file as a vars file (as Ansible does), marks what it may template: no
    string it would template holds template syntax.
    (tests/unit/test_values_inert.py renders payloads from every config and facts field.)"""
    from ansible.parsing.dataloader import DataLoader

    loader = DataLoader()
    problems = []
    for rel, text in ansible_read_files(RENDERED[case]).items():
        path = tmp_path / rel.replace("/", "_")
        path.write_text(text)
        data = loader.load_from_file(str(path), cache="none", trusted_as_template=True)
        for found in templatable_strings(data):
            if re.search(r"\{[{%#]", found):
                problems.append(f"{rel}: {found}")
    assert not problems, "\n".join(problems)
