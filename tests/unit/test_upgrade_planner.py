"""The hop planner as pure functions: fixed cases from the realistic previous lock, and properties over every
pair of installable versions in the upgrade rules (hypothesis): never a downgrade, never two Kubernetes
minors in one hop, every hop supported by the Kubespray tag and the OpenStack releases involved."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from affordml.lifecycle.rules import load_rules, lock_summary, minor_of, version_key
from affordml.lifecycle.upgrade import UpgradeRefused, plan_upgrade, supports
from affordml.versions import load_lock

PREVIOUS = Path(__file__).resolve().parents[1] / "fixtures" / "locks" / "2026.05.yaml"
RULES = load_rules()
TAGS = RULES["kubespray"]["tags"]
RELEASES = RULES["kolla_ansible"]["releases"]


def previous() -> dict:
    return lock_summary(yaml.safe_load(PREVIOUS.read_text()))


def current() -> dict:
    return lock_summary(load_lock())


def test_realistic_lock_change_gives_the_expected_hops() -> None:
    plan = plan_upgrade(previous(), current(), RULES)
    rows = [(h.phase, s.component, s.from_version, s.to_version) for h in plan.hops for s in h.steps]
    assert rows == [
        ("openstack", "kolla_ansible", "21.3.0", "22.2.0"),
        ("kubernetes", "kubernetes", "1.34.3", "1.35.4"),
        ("gpu", "gpu_operator", "v26.3.3", "v26.7.0"),
        ("gpu", "hami", "2.9.0", "2.10.0"),
        ("ml", "kube_prometheus_stack", "87.9.0", "88.5.3"),
        ("ml", "kserve", "v0.19.0", "v0.20.0"),
        ("ml", "kueue", "v0.18.6", "v0.19.2"),
        ("ml", "jupyterhub", "4.3.5", "4.4.0"),
    ]
    kube_hop = plan.hops[1]
    assert kube_hop.lock["kubespray"]["version"] == "v2.31.0"
    locked = next(a for a in load_lock()["artifacts"] if a["name"] == "kubespray")
    assert kube_hop.lock["artifact:kubespray"] == {"version": locked["version"], "git_tree": locked["git_tree"]}
    assert "upgrade-cluster.yml" in kube_hop.steps[0].how
    assert plan.source == "2026.05" and plan.target == current()["name"]


def test_each_chart_step_says_how_its_crds_move() -> None:
    """The CRDs helm never upgrades (a chart's crds/) are the phase's to apply; the printed hop says so per chart."""
    from affordml.gpu.releases import GPU_OPERATOR

    charts = {c["component"]: c for c in RULES["charts"]}
    assert all(str(c.get("crds", "")).strip() for c in charts.values()), "every chart says how its CRDs move"
    steps = {s.component: s.how for h in plan_upgrade(previous(), current(), RULES).hops for s in h.steps}
    assert steps["gpu_operator"].endswith(charts["gpu_operator"]["crds"])
    assert "which helm never upgrades" in steps["gpu_operator"] and "crds/" in steps["gpu_operator"]
    assert "which helm never upgrades" in steps["kube_prometheus_stack"]
    assert "upgraded by helm" in steps["kueue"] and steps["jupyterhub"].endswith("no CRDs")
    assert GPU_OPERATOR.crd_folders  # what the gpu phase applies for the first of those


def test_the_same_lock_has_no_hops() -> None:
    assert plan_upgrade(current(), current(), RULES).hops == ()


def test_skip_level_between_slurp_releases_and_one_tag_per_kubespray_minor() -> None:
    old = previous() | {
        "openstack_release": "2025.1",
        "kolla_ansible": "20.6.0",
        "kubespray": "v2.28.1",
        "kubernetes": "1.32.8",
    }
    plan = plan_upgrade(old, current(), RULES)
    openstack = [h for h in plan.hops if h.phase == "openstack"]
    assert [h.lock["kolla_ansible"]["openstack_release"] for h in openstack] == ["2026.1"]
    assert "skip-level (SLURP) 2025.1 -> 2026.1" in openstack[0].steps[0].how
    kube = [(h.lock["kubespray"]["version"], h.steps[0].to_version) for h in plan.hops if h.phase == "kubernetes"]
    assert kube == [("v2.29.1", "1.33.7"), ("v2.30.0", "1.34.3"), ("v2.31.0", "1.35.4")]


def test_downgrade_is_refused_naming_the_way() -> None:
    with pytest.raises(UpgradeRefused, match="never downgrades"):
        plan_upgrade(current(), previous(), RULES)


def test_unknown_release_is_refused_with_the_known_ones() -> None:
    with pytest.raises(UpgradeRefused, match=r"OpenStack 2024.2 is not in .*known: 2025.1, 2025.2, 2026.1"):
        plan_upgrade(previous() | {"openstack_release": "2024.2"}, current(), RULES)


def test_gpu_operator_two_majors_refused_with_the_supported_path() -> None:
    with pytest.raises(UpgradeRefused) as refused:
        plan_upgrade(previous() | {"gpu_operator": "v24.9.2"}, current(), RULES)
    assert "gpu_operator v24.9.2 -> v26.7.0 jumps 2 majors" in refused.value.one_line()
    assert "upgrade gpu_operator to 25.x first" in refused.value.one_line()


def test_a_kubespray_tag_that_cannot_handle_the_cluster_is_refused() -> None:
    # v2.28.0 installs at most 1.32.5; a 1.32.8 cluster made by v2.28.1 cannot go through it.
    target = current() | {"kubespray": "v2.28.0", "kubernetes": "1.32.5"}
    with pytest.raises(UpgradeRefused):
        plan_upgrade(previous() | {"kubespray": "v2.28.0", "kubernetes": "1.32.8"}, target, RULES)


# ------------------------------------------------------------------ properties


def kube_versions(tag: dict) -> list[str]:
    out = []
    for minor, newest in tag["kube"].items():
        out += [f"{minor}.{p}" for p in range(version_key(newest)[2] + 1)]
    return out


@st.composite
def installable(draw) -> tuple[int, str]:
    at = draw(st.integers(0, len(TAGS) - 1))
    return at, draw(st.sampled_from(kube_versions(TAGS[at])))


@st.composite
def release(draw) -> tuple[int, str]:
    at = draw(st.integers(0, len(RELEASES) - 1))
    major = RELEASES[at]["major"]
    newest = version_key(RELEASES[at]["newest"])
    return at, f"{major}.{draw(st.integers(0, newest[1]))}.0"


def summary(kube: tuple[int, str], openstack: tuple[int, str]) -> dict:
    return current() | {
        "kubespray": TAGS[kube[0]]["tag"],
        "kubernetes": kube[1],
        "openstack_release": RELEASES[openstack[0]]["openstack_release"],
        "kolla_ansible": openstack[1],
    }


@settings(max_examples=400, deadline=None)
@given(installable(), installable(), release(), release())
def test_every_plan_is_supported_step_by_step(kube_a, kube_b, os_a, os_b) -> None:
    installed, target = summary(kube_a, os_a), summary(kube_b, os_b)
    try:
        plan = plan_upgrade(installed, target, RULES)
    except UpgradeRefused as refused:
        assert refused.fix  # every refusal names what to do
        return
    tags = {t["tag"]: i for i, t in enumerate(TAGS)}
    kube, tag_at = installed["kubernetes"], tags[installed["kubespray"]]
    for hop in (h for h in plan.hops if h.phase == "kubernetes"):
        step = hop.steps[0]
        tag = hop.lock["kubespray"]["version"]
        assert step.from_version == kube  # hops chain
        assert version_key(step.to_version) >= version_key(step.from_version)  # never a downgrade
        assert version_key(step.to_version)[:2][1] - version_key(step.from_version)[:2][1] <= 1  # one minor
        assert supports(TAGS[tags[tag]], step.from_version) and supports(TAGS[tags[tag]], step.to_version)
        assert hop.lock["kubernetes"]["kubernetes_minor"] == minor_of(step.to_version)
        assert tags[tag] >= tag_at  # one Kubespray minor series per hop at most (patch tags may be skipped)
        assert version_key(tag)[1] - version_key(TAGS[tag_at]["tag"])[1] <= 1
        kube, tag_at = step.to_version, tags[tag]
    assert kube == target["kubernetes"]
    assert tag_at == tags[target["kubespray"]] or installed["kubespray"] == target["kubespray"]
    release_at = [r["openstack_release"] for r in RELEASES].index(installed["openstack_release"])
    for hop in (h for h in plan.hops if h.phase == "openstack"):
        to = [r["openstack_release"] for r in RELEASES].index(hop.lock["kolla_ansible"]["openstack_release"])
        gap = to - release_at
        assert gap in (0, 1) or (gap == 2 and RELEASES[release_at]["slurp"] and RELEASES[to]["slurp"])
        assert version_key(hop.steps[0].to_version) >= version_key(hop.steps[0].from_version)
        release_at = to
    assert RELEASES[release_at]["openstack_release"] == target["openstack_release"]


@settings(max_examples=200, deadline=None)
@given(installable(), installable(), release(), release())
def test_a_plan_that_goes_down_anywhere_is_refused(kube_a, kube_b, os_a, os_b) -> None:
    installed, target = summary(kube_a, os_a), summary(kube_b, os_b)
    down = any(
        version_key(target[key]) < version_key(installed[key])
        for key in ("kubespray", "kubernetes", "openstack_release", "kolla_ansible")
    )
    if down:
        with pytest.raises(UpgradeRefused):
            plan_upgrade(installed, target, RULES)


def test_a_cluster_too_old_for_the_next_tag_is_raised_with_the_installed_tag_first() -> None:
    plan = plan_upgrade(previous() | {"kubespray": "v2.28.1", "kubernetes": "1.30.14"}, current(), RULES)
    kube = [(h.lock["kubespray"]["version"], h.steps[0].to_version) for h in plan.hops if h.phase == "kubernetes"]
    assert kube == [
        ("v2.28.1", "1.31.12"),
        ("v2.29.1", "1.32.10"),
        ("v2.30.0", "1.33.7"),
        ("v2.31.0", "1.34.7"),
        ("v2.31.0", "1.35.4"),
    ]


def test_the_rules_agree_with_the_shipped_lock() -> None:
    lock = load_lock()
    tag = next(t for t in TAGS if t["tag"] == lock["kubespray"]["tag"])
    artifact = next(a for a in lock["artifacts"] if a["name"] == "kubespray")
    assert (tag["commit"], tag["git_tree"], tag["ansible"]) == (
        lock["kubespray"]["commit"],
        artifact["git_tree"],
        lock["kubespray"]["ansible"],
    )
    assert supports(tag, lock["kubernetes"]["version"]) and tag["kube"][minor_of(lock["kubernetes"]["version"])]
    assert min(tag["kube"], key=version_key) + ".0" == lock["kubespray"]["kube_version_min"]
    assert max(tag["kube"].values(), key=version_key) == lock["kubespray"]["kube_version_max"]
    release = next(r for r in RELEASES if r["openstack_release"] == lock["kolla_ansible"]["openstack_release"])
    assert release["newest"] == lock["kolla_ansible"]["version"]
    assert release["ansible_core"] == lock["kolla_ansible"]["ansible_core"]
    upgrade_from = lock["upgrade_from"]
    assert set(upgrade_from["kolla_ansible"]["from_openstack_release"]) <= {r["openstack_release"] for r in RELEASES}
    assert upgrade_from["kubespray"]["from_tag"] in {t["tag"] for t in TAGS}


def test_status_lines_say_where_an_upgrade_stands() -> None:
    from affordml.lifecycle.status import lifecycle_lines

    assert lifecycle_lines({}) == {"lock": "not recorded (nothing installed yet)"}
    plan = plan_upgrade(previous(), current(), RULES)
    record = {"from": "2026.05", "to": "2026.11", "hops": [h.to_dict() for h in plan.hops], "done": 1}
    record |= {"status": "running", "backup": "/p/backups/b"}
    line = lifecycle_lines({"lock": previous(), "upgrade": record})["upgrade"]
    assert line.startswith("2026.05 -> 2026.11: 1/4 hop(s) done, running; next: hop 2 (kubernetes)")
    assert line.endswith("backup /p/backups/b")
