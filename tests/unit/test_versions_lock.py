"""The version lock shipped in the package (affordml/versions.yaml) is complete and consistent."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

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


# ------------------------------------------------------------------ artifacts (what affordml downloads)
CHARTS_INSTALLED = {"gpu_operator", "hami", "jupyterhub", "kueue", "kserve", "kube_prometheus_stack"}


@pytest.fixture(scope="module")
def artifacts(lock: dict) -> list[dict]:
    entries = lock["artifacts"]
    assert isinstance(entries, list) and entries
    return entries


def test_artifacts_is_not_a_component(components: dict) -> None:
    assert "artifacts" not in components


def test_artifact_names_unique_and_expected(artifacts: list[dict]) -> None:
    names = [a["name"] for a in artifacts]
    assert len(names) == len(set(names))
    assert {"kubespray", "helm", "guest-image"} <= set(names)
    assert all(re.fullmatch(r"[a-z0-9-]+(/[a-z0-9-]+)?", n) for n in names), names


def test_every_artifact_says_how_it_is_checked(artifacts: list[dict]) -> None:
    from affordml.artifacts.lock import artifact_from_entry

    for entry in artifacts:
        artifact = artifact_from_entry(entry)  # raises on a missing field or a bad sha256
        assert artifact.url.startswith("https://") and "{" not in artifact.url + artifact.file, artifact.name
        assert len(artifact.checksum_source) > 40, f"{artifact.name}: say where the checksum is read"
        if entry["sha256"] is None:
            assert artifact.verify != "sha256", f"{artifact.name}: verify sha256 needs a pinned sha256"
            assert artifact.verify == "git-tree" or artifact.evidence_name, artifact.name


def test_artifact_versions_match_their_components(artifacts: list[dict], components: dict) -> None:
    for entry in artifacts:
        comp = components[entry["component"]]
        versions = {comp["version"], comp.get("tag")}
        for chart in [comp.get("chart") or {}, *comp.get("charts", [])]:
            versions.add(chart.get("version"))
        versions |= {str(v) for v in (comp.get("requires") or {}).values()}
        assert entry["version"] in versions, f"{entry['name']} {entry['version']} is not a version of {comp}"


def test_every_installed_chart_has_an_artifact(artifacts: list[dict], components: dict) -> None:
    by_component = {a["component"] for a in artifacts if a["name"].startswith("chart/")}
    assert by_component >= CHARTS_INSTALLED
    kserve_charts = {c["name"] for c in components["kserve"]["charts"]}
    assert {f"chart/{n}" for n in kserve_charts} | {"chart/cert-manager"} <= {a["name"] for a in artifacts}


def test_kubespray_artifact_is_the_locked_tag(artifacts: list[dict], components: dict) -> None:
    spray = next(a for a in artifacts if a["name"] == "kubespray")
    assert spray["version"] == components["kubespray"]["tag"]
    assert spray["verify"] == "git-tree" and re.fullmatch(r"[0-9a-f]{40}", spray["git_tree"])
    assert components["kubespray"]["commit"] in spray["checksum_source"]


def test_helm_and_guest_image_artifacts_follow_their_components(artifacts: list[dict], components: dict) -> None:
    by_name = {a["name"]: a for a in artifacts}
    helm = components["helm"]
    assert by_name["helm"]["url"].format(version=helm["version"]) == helm["download_url"].format(
        version=helm["version"], arch="amd64"
    )
    assert by_name["helm"]["checksum_url"].format(version=helm["version"]) == helm["checksum_url"].format(
        version=helm["version"], arch="amd64"
    )
    image = components["guest_image"]
    assert by_name["guest-image"]["url"] == image["url"]
    assert by_name["guest-image"]["checksum_url"] == image["sha256sums_url"]


def test_chart_images_are_pinned_references(artifacts: list[dict]) -> None:
    for entry in artifacts:
        for image in entry.get("images") or []:
            host, _, rest = image.partition("/")
            assert "." in host and ":" in rest and not rest.endswith(":latest"), f"{entry['name']}: {image}"


UPSTREAM = Path(__file__).resolve().parents[3] / "shared" / "upstream"


def _values(relative: str) -> dict:
    path = UPSTREAM / relative
    if not path.is_file():
        pytest.skip(f"{path} is absent (upstream values live in ../shared/upstream, outside the repository)")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_gpu_operator_images_are_its_values_defaults(artifacts: list[dict]) -> None:
    values = _values("gpu-operator/deployments/gpu-operator/values.yaml")
    listed = set(next(a for a in artifacts if a["name"] == "chart/gpu-operator")["images"])
    for key in ("driver", "toolkit", "devicePlugin", "dcgm", "dcgmExporter", "migManager"):
        part = values[key]
        tag = f"{part['version']}-ubuntu24.04" if key == "driver" else part["version"]
        assert f"{part['repository']}/{part['image']}:{tag}" in listed, key
    manager = values["driver"]["manager"]
    assert f"{manager['repository']}/{manager['image']}:{manager['version']}" in listed


def test_hami_and_prometheus_images_are_their_values_defaults(artifacts: list[dict]) -> None:
    by_name = {a["name"]: set(a.get("images") or []) for a in artifacts}
    hami = _values("hami/charts/hami/values.yaml")
    new_certgen = hami["scheduler"]["patch"]["imageNew"]
    assert f"{new_certgen['registry']}/{new_certgen['repository']}:{new_certgen['tag']}" in by_name["chart/hami"]
    prom = _values("prometheus-community-helm-charts/charts/kube-prometheus-stack/values.yaml")
    for image in (prom["prometheus"]["prometheusSpec"]["image"], prom["alertmanager"]["alertmanagerSpec"]["image"]):
        assert f"{image['registry']}/{image['repository']}:{image['tag']}" in by_name["chart/kube-prometheus-stack"]


def test_the_queue_switch_image_is_listed_with_the_kueue_chart(lock: dict, artifacts: list[dict]) -> None:
    from affordml.ml.queue_objects import kubectl_image

    listed = next(a for a in artifacts if a["name"] == "chart/kueue")["images"]
    assert kubectl_image(lock["kubernetes"]["version"]) in listed
