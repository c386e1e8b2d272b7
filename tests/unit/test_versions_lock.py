"""The version lock shipped in the package (affordml/versions.yaml) is complete and consistent."""

from __future__ import annotations

import re
from importlib import resources

import pytest
import yaml

REQUIRED_COMPONENTS = {
    "kolla_ansible",
    "kubespray",
    "kubernetes",
    "helm",
    "gpu_operator",
    "nvidia_driver",
    "nvidia_device_plugin",
    "hami",
    "jupyterhub",
    "kueue",
    "kserve",
    "kube_prometheus_stack",
    "dcgm_exporter",
    "guest_image",
}


def _version_tuple(text: str) -> tuple[int, ...]:
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", text)
    assert match, f"not a plain x.y.z version: {text!r}"
    return tuple(int(part) for part in match.groups())


@pytest.fixture(scope="module")
def lock() -> dict:
    text = resources.files("affordml").joinpath("versions.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def components(lock: dict) -> dict:
    """Components are the top-level mappings that carry a version (as affordml/versions.py reads them)."""
    return {name: entry for name, entry in lock.items() if isinstance(entry, dict) and "version" in entry}


def test_header(lock: dict) -> None:
    assert lock["lock_version"] == 1
    assert isinstance(lock["name"], str) and re.fullmatch(r"\d{4}\.\d{2}", lock["name"])
    assert "previous" in lock
    assert lock["previous"] is None or isinstance(lock["previous"], str)
    assert lock["previous"] != lock["name"]


def test_all_components_present(components: dict) -> None:
    missing = REQUIRED_COMPONENTS - set(components)
    assert not missing, f"components missing from the lock: {sorted(missing)}"


def test_upgrade_from_is_not_a_component(lock: dict, components: dict) -> None:
    assert "upgrade_from" not in components
    assert lock["upgrade_from"]["tested"] is False


@pytest.mark.parametrize("name", sorted(REQUIRED_COMPONENTS))
def test_component_has_version_and_source(components: dict, name: str) -> None:
    comp = components[name]
    assert isinstance(comp, dict), name
    version = comp.get("version")
    assert isinstance(version, str) and version.strip(), f"{name}: version must be a non-empty string"
    source = comp.get("source")
    assert isinstance(source, str) and len(source.strip()) > 10, f"{name}: source must say where"
    if "note" in comp:
        assert isinstance(comp["note"], str) and comp["note"].strip()


def test_chart_versions_are_strings(components: dict) -> None:
    for name, comp in components.items():
        charts = comp.get("charts", [])
        if "chart" in comp:
            charts = [comp["chart"], *charts]
        for chart in charts:
            assert {"repo", "name", "version"} <= set(chart), f"{name}: chart needs repo, name, version"
            assert isinstance(chart["version"], str), f"{name}: chart version must be quoted"


def test_kolla_ansible_release(components: dict) -> None:
    kolla = components["kolla_ansible"]
    assert kolla["pypi"] == "kolla-ansible"
    assert re.fullmatch(r"\d{4}\.[12]", kolla["openstack_release"])
    assert kolla["openstack_tag"].startswith(kolla["openstack_release"] + "-")
    assert kolla["ansible_core"]


def test_kubernetes_within_kubespray_range(components: dict) -> None:
    spray = components["kubespray"]
    kube = _version_tuple(components["kubernetes"]["version"])
    low = _version_tuple(spray["kube_version_min"])
    high = _version_tuple(spray["kube_version_max"])
    assert low <= high
    assert low <= kube <= high, "kubernetes.version is outside the Kubespray tag's supported range"
    assert low <= _version_tuple(spray["kube_version_default"]) <= high
    assert spray["tag"] == spray["version"]


def test_kubernetes_minor_matches_version(components: dict) -> None:
    kube = components["kubernetes"]
    major, minor, _patch = _version_tuple(kube["version"])
    assert kube["kubernetes_minor"] == f"{major}.{minor}"


def test_kubernetes_validate_supports_minor(components: dict) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
    from kubernetes_validate import utils

    minor = components["kubernetes"]["kubernetes_minor"]
    supported = {utils.major_minor(v) for v in utils.all_versions()}
    assert minor in supported, (
        f"kubernetes-validate {kubernetes_validate.version.__version__} has no schemas for {minor}; "
        f"it has {sorted(supported, key=lambda v: tuple(map(int, v.split('.'))))}"
    )


def test_helm_download_pattern(components: dict) -> None:
    helm = components["helm"]
    assert helm["version"].startswith("v")
    url = helm["download_url"].format(version=helm["version"], arch="amd64")
    assert url == f"https://get.helm.sh/helm-{helm['version']}-linux-amd64.tar.gz"
    assert helm["checksum_url"].format(version=helm["version"], arch="amd64") == url + ".sha256sum"


def test_driver_branch_matches_version(components: dict) -> None:
    driver = components["nvidia_driver"]
    assert driver["version"].split(".")[0] == driver["branch"]
    assert components["gpu_operator"]["operands"]["driver"] == driver["version"]


def test_device_plugin_matches_operator(components: dict) -> None:
    assert components["gpu_operator"]["operands"]["device_plugin"] == components["nvidia_device_plugin"]["version"]


def test_guest_image_is_noble(components: dict) -> None:
    image = components["guest_image"]
    assert image["codename"] == "noble"
    assert image["url"].startswith("https://") and "noble" in image["url"]
    assert image["sha256sums_url"].rsplit("/", 1)[0] == image["url"].rsplit("/", 1)[0]
