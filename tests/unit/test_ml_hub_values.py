"""JupyterHub's values for every golden case, with the private file the ml phase adds on top, against z2jh's
values.schema.yaml from ../shared/upstream (merged over its values.yaml, as helm does); and what they promise:
real authentication, the LAN NodePort, the idle culler, homes on the default StorageClass, a CPU-only profile."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from affordml.helm.release import merged_values
from affordml.ml import hub

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO.parent / "shared" / "upstream" / "zero-to-jupyterhub-k8s" / "jupyterhub"
CASES = sorted(p.parent.parent.name for p in (REPO / "tests" / "golden").glob("*/ml/jupyterhub-values.yaml"))


def _with_secret(case: str, tmp_path: Path) -> dict:
    secret = tmp_path / hub.VALUES_FILE
    secret.write_text(yaml.safe_dump({"custom": {"affordml": {"adminPassword": "x" * 20}}}))
    return merged_values([REPO / "tests" / "golden" / case / "ml" / "jupyterhub-values.yaml", secret])


@pytest.mark.parametrize("case", CASES)
def test_values_with_the_private_file_pass_the_chart_schema(case, tmp_path):
    if not (SCHEMA / "values.schema.yaml").is_file():
        pytest.skip(f"{SCHEMA} is absent: the z2jh schema lives outside the repository (../shared/upstream)")
    import jsonschema

    ours = _with_secret(case, tmp_path)
    defaults = yaml.safe_load((SCHEMA / "values.yaml").read_text())
    merged = merged_values_dicts(defaults, ours)
    errors = list(
        jsonschema.Draft7Validator(yaml.safe_load((SCHEMA / "values.schema.yaml").read_text())).iter_errors(merged)
    )
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


def merged_values_dicts(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        out[key] = (
            merged_values_dicts(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


@pytest.mark.parametrize("case", CASES)
def test_values_promise_real_accounts_lan_access_culling_and_homes(case, tmp_path):
    values = _with_secret(case, tmp_path)
    config = values["hub"]["config"]
    assert config.get("JupyterHub", {}).get("authenticator_class") != "dummy"
    assert "c.JupyterHub.authenticator_class = AffordmlAuthenticator" in values["hub"]["extraConfig"]["affordml-admin"]
    assert config["NativeAuthenticator"]["open_signup"] is False  # an admin approves each sign-up
    assert config["Authenticator"]["admin_users"] == [hub.ADMIN_USER] == [values["custom"]["affordml"]["adminUser"]]
    assert values["proxy"]["service"] == {"type": "NodePort", "nodePorts": {"http": hub.NODE_PORT}}
    assert values["cull"]["enabled"] is True and values["cull"]["timeout"] == 3600
    assert values["singleuser"]["storage"]["type"] == "dynamic"
    assert "storageClass" not in values["singleuser"]["storage"].get("dynamic", {})  # the default StorageClass
    assert values["hub"]["db"]["pvc"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    profiles = values["singleuser"]["profileList"]
    cpu = [p for p in profiles if p["slug"] == "cpu"]
    assert cpu and cpu[0]["default"] is True and "kubespawner_override" not in cpu[0]


def test_the_schema_check_refuses_a_broken_value(tmp_path):
    if not (SCHEMA / "values.schema.yaml").is_file():
        pytest.skip(f"{SCHEMA} is absent: the z2jh schema lives outside the repository (../shared/upstream)")
    import jsonschema

    ours = _with_secret(CASES[0], tmp_path)
    ours["proxy"]["service"]["type"] = "Public"  # not a Service type
    ours["cull"]["timeout"] = "an hour"
    merged = merged_values_dicts(yaml.safe_load((SCHEMA / "values.yaml").read_text()), ours)
    schema = yaml.safe_load((SCHEMA / "values.schema.yaml").read_text())
    paths = {".".join(map(str, e.path)) for e in jsonschema.Draft7Validator(schema).iter_errors(merged)}
    assert {"proxy.service.type", "cull.timeout"} <= paths
