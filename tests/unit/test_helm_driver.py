"""The Helm release driver without a cluster: command lines, the stamp, skip and undo decisions, failure reasons
read from pod views, and the driver's flow against a stand-in helm script that records its calls."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from affordml.errors import RunError
from affordml.gpu.releases import GPU_OPERATOR, HAMI, gpu_releases
from affordml.helm import commands
from affordml.helm.decide import unchanged, undo_for
from affordml.helm.diagnose import PodView, explain, helm_error_line
from affordml.helm.driver import HelmDriver, remove_in_reverse
from affordml.helm.release import Release, ReleaseStamp, merged_values, release_stamp
from affordml.plan.model import SharingDecision
from affordml.plan.sharing import advertised_resources, node_resources

HELM, KUBECONFIG = Path("/cache/helm"), Path("/project/secrets/kubeconfig")
REL = Release("gpu-operator", "gpu-operator", "chart/gpu-operator", values=("gpu/a.yaml",), timeout_s=300)


def test_upgrade_install_passes_values_as_files_and_the_kubeconfig_as_a_path():
    argv = commands.upgrade_install(
        HELM, KUBECONFIG, REL, Path("/c/op.tgz"), [Path("/env/gpu/a.yaml")], "affordml stamp x"
    )
    assert argv[:5] == ["/cache/helm", "--kubeconfig", "/project/secrets/kubeconfig", "--namespace", "gpu-operator"]
    assert argv[5:8] == ["upgrade", "--install", "gpu-operator"] and "/c/op.tgz" in argv
    assert "--wait=watcher" in argv and "--timeout=300s" in argv and "--reset-values" in argv
    assert argv[-2:] == ["--values", "/env/gpu/a.yaml"]
    assert not any(a.startswith("--set") for a in argv)
    assert "--no-hooks" not in argv
    assert "--no-hooks" in commands.upgrade_install(
        HELM, KUBECONFIG, Release("x", "y", "z", no_hooks=True), Path("c"), [], "d"
    )


def test_rollback_and_uninstall_wait_with_the_release_timeout():
    assert commands.rollback(HELM, KUBECONFIG, REL, 2)[5:] == [
        "rollback",
        "gpu-operator",
        "2",
        "--wait=watcher",
        "--timeout=300s",
    ]
    assert commands.uninstall(HELM, KUBECONFIG, REL)[5:] == [
        "uninstall",
        "gpu-operator",
        "--wait=watcher",
        "--timeout=300s",
    ]


def test_values_merge_like_helm_later_files_win(tmp_path):
    (tmp_path / "a.yaml").write_text("a: {x: 1, y: 2}\nlist: [1]\n")
    (tmp_path / "b.yaml").write_text("a: {y: 3}\nlist: [2]\n")
    assert merged_values([tmp_path / "a.yaml", tmp_path / "b.yaml"]) == {"a": {"x": 1, "y": 3}, "list": [2]}


def test_stamp_changes_with_chart_bytes_subchart_and_values(tmp_path):
    chart, values = tmp_path / "c.tgz", tmp_path / "v.yaml"
    chart.write_bytes(b"chart-1")
    values.write_text("a: 1\n")
    first = release_stamp(chart, "", [values])
    assert first == release_stamp(chart, "", [values])
    assert first.description.startswith("affordml stamp ")
    assert release_stamp(chart, "charts/crds", [values]).digest != first.digest
    values.write_text("a: 2\n")
    assert release_stamp(chart, "", [values]).digest != first.digest
    values.write_text("a: 1\n")
    chart.write_bytes(b"chart-2")
    assert release_stamp(chart, "", [values]).digest != first.digest


STAMP = ReleaseStamp("abc", {"a": 1})


@pytest.mark.parametrize(
    ("history", "values", "expected"),
    [
        ([{"revision": 1, "status": "deployed", "description": STAMP.description}], {"a": 1}, True),
        ([], None, False),
        ([{"revision": 1, "status": "deployed", "description": "Install complete"}], {"a": 1}, False),
        ([{"revision": 1, "status": "deployed", "description": STAMP.description}], {"a": 2}, False),  # hand edit
        ([{"revision": 1, "status": "failed", "description": STAMP.description}], {"a": 1}, False),
        (
            [
                {"revision": 1, "status": "superseded", "description": STAMP.description},
                {"revision": 2, "status": "deployed", "description": "affordml stamp other"},
            ],
            {"a": 1},
            False,
        ),
    ],
)
def test_unchanged_only_when_the_newest_revision_is_ours_and_deployed(history, values, expected):
    assert unchanged(history, values, STAMP) is expected


def test_undo_goes_back_to_the_deployed_revision_or_removes_a_first_install():
    assert undo_for([]).action == "uninstall"
    assert undo_for([{"revision": 1, "status": "failed"}]).action == "uninstall"
    rollback = undo_for([{"revision": 1, "status": "superseded"}, {"revision": 2, "status": "deployed"}])
    assert (rollback.action, rollback.revision) == ("rollback", 2)
    assert undo_for([{"revision": 1, "status": "superseded"}, {"revision": 2, "status": "failed"}]).revision == 1
    assert rollback.said() == "rolled back to revision 2"


def test_the_reason_is_the_unschedulable_pod_and_the_fix_matches_it():
    pods = [
        PodView("op-1", "Running", True),
        PodView("op-2", "Pending", False, unschedulable="0/1 nodes are available: 1 Insufficient nvidia.com/gpu."),
        PodView("dp-1", "Pending", False, waiting=("ImagePullBackOff",)),
    ]
    reason, fix = explain(pods, "context deadline exceeded", "fallback")
    assert (
        reason == "pod op-2 Pending: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu. (and 1 more pod not ready)"
    )
    assert "advertise fewer GPU shares" in fix
    reason, fix = explain([pods[2]], "", "fallback")
    assert reason == "pod dp-1 Pending: ImagePullBackOff" and "cannot be pulled" in fix
    assert explain([], "boom", "fallback") == ("boom", "fallback")
    warning = (
        'DaemonSet hami-device-plugin: FailedCreate: pods "hami-device-plugin-" is forbidden: pod rejected: '
        'RuntimeClass "nvidia" not found'
    )
    refused = 'UPGRADE FAILED: ClusterPolicy.nvidia.com "cluster-policy" is invalid: spec.mig.strategy: Unsupported'
    assert "refused a value" in explain([], refused, "fallback")[1]
    reason, fix = explain([PodView("s", "Running", True)], "context deadline exceeded", "fallback", (warning,))
    assert reason == warning and "GPU Operator creates it" in fix


def test_helm_error_line_is_the_apis_refusal():
    stderr = (
        'level=WARN msg=x\nError: UPGRADE FAILED: ClusterPolicy.nvidia.com "cluster-policy" is invalid: '
        'spec.mig.strategy: Unsupported value: "many"\n'
    )
    assert helm_error_line(stderr).startswith('UPGRADE FAILED: ClusterPolicy.nvidia.com "cluster-policy" is invalid')


def test_release_order_is_data_operator_before_hami():
    assert [r.name for r in gpu_releases(hami=False)] == ["gpu-operator"]
    assert gpu_releases(hami=True) == [GPU_OPERATOR, HAMI]


def test_the_plan_says_what_the_device_plugin_advertises():
    assert advertised_resources(SharingDecision("mps", 5, "", replicas=5)) == {"nvidia.com/gpu": 5}
    assert advertised_resources(SharingDecision("exclusive", 1, "")) == {"nvidia.com/gpu": 1}
    mig = SharingDecision("mig", 4, "", mig_instances=("1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"))
    assert advertised_resources(mig) == {
        "nvidia.com/mig-1g.10gb": 2,
        "nvidia.com/mig-2g.20gb": 1,
        "nvidia.com/mig-3g.40gb": 1,
    }
    two = [SharingDecision("time-slicing", 3, "", replicas=3), SharingDecision("hami", 4, "", replicas=4)]
    assert node_resources(two) == {"nvidia.com/gpu": 7}


# ---------------------------------------------------------------- the driver against a stand-in helm
FAKE_HELM = r"""#!/usr/bin/env python3
import json, os, sys
state = os.path.join(os.path.dirname(os.path.abspath(__file__)), "state.json")
data = json.load(open(state)) if os.path.exists(state) else {"calls": [], "history": [], "values": None, "fail": ""}
args = sys.argv[1:]
data["calls"].append(args)
verb = args[4]
def save():
    json.dump(data, open(state, "w"))
if verb == "history":
    save()
    if not data["history"]:
        sys.exit("Error: release: not found")
    print(json.dumps(data["history"]))
elif verb == "get" and args[5] == "manifest":
    save()
    if not data["history"]:
        sys.exit("Error: release: not found")
    print("---\nkind: ClusterRole\nmetadata:\n  name: op-role\n---\n# Source: op/templates/empty.yaml\n")
elif verb == "get":
    save(); print(json.dumps(data["values"]))
elif verb == "upgrade":
    rev = len(data["history"]) + 1
    desc = args[args.index("--description") + 1]
    vals = {}
    for i, a in enumerate(args):
        if a == "--values":
            vals.update(json.load(open(args[i + 1])))
    if data["fail"]:
        data["history"].append({"revision": rev, "status": "failed", "description": data["fail"]}); save()
        sys.exit("Error: UPGRADE FAILED: " + data["fail"])
    for h in data["history"]:
        h["status"] = "superseded" if h["status"] == "deployed" else h["status"]
    data["history"].append({"revision": rev, "status": "deployed", "description": desc}); data["values"] = vals; save()
elif verb == "rollback":
    rev = len(data["history"]) + 1
    data["history"].append({"revision": rev, "status": "deployed", "description": "Rollback"}); save()
elif verb == "uninstall":
    data["history"] = []; save()
"""


@pytest.fixture
def fake(tmp_path):
    helm = tmp_path / "bin" / "helm"
    helm.parent.mkdir()
    helm.write_text(FAKE_HELM)
    helm.chmod(helm.stat().st_mode | stat.S_IXUSR)
    chart = tmp_path / "op.tgz"
    chart.write_bytes(b"chart")
    values = tmp_path / "values.yaml"
    values.write_text('{"driver": {"enabled": true}}')
    lines: list[str] = []
    pods = [PodView("op-x", "Pending", False, unschedulable="0/3 nodes are available: 1 Insufficient nvidia.com/gpu.")]
    driver = HelmDriver(helm, tmp_path / "kubeconfig", tmp_path / "home", lines.append, lambda ns: pods)
    state = helm.parent / "state.json"

    def load():
        return json.loads(state.read_text())

    def set_fail(text):
        data = load() if state.exists() else {"calls": [], "history": [], "values": None}
        data["fail"] = text
        state.write_text(json.dumps(data))

    return driver, chart, values, lines, load, set_fail


def test_the_deployed_manifest_is_helms_stored_one_and_none_for_an_absent_release(fake):
    driver, chart, values, lines, load, _ = fake
    assert driver.deployed_manifest(REL) is None
    driver.ensure(REL, chart, [values], chart)
    assert driver.deployed_manifest(REL) == [{"kind": "ClusterRole", "metadata": {"name": "op-role"}}]
    assert load()["calls"][-1][4:] == ["get", "manifest", REL.name]


def test_install_then_an_unchanged_rerun_skips_then_a_failure_rolls_back_in_one_line(fake):
    driver, chart, values, lines, load, set_fail = fake
    assert driver.ensure(REL, chart, [values], chart).action == "installed"
    assert driver.ensure(REL, chart, [values], chart).action == "unchanged"
    assert [c[4] for c in load()["calls"]].count("upgrade") == 1
    values.write_text('{"driver": {"enabled": false}}')
    set_fail("context deadline exceeded")
    with pytest.raises(RunError) as failed:
        driver.ensure(REL, chart, [values], chart)
    line = failed.value.one_line()
    assert line == (
        "release gpu-operator (namespace gpu-operator) failed: pod op-x Pending: 0/3 nodes are available: 1 "
        "Insufficient nvidia.com/gpu.; rolled back to revision 1 — fix: the GPU nodes advertise fewer GPU shares "
        "than the pods request: compare `affordml plan` (shares per GPU) with `kubectl --kubeconfig "
        "secrets/kubeconfig describe node` (Capacity), and check the device plugin pods"
    )
    assert load()["calls"][-1][4:7] == ["rollback", "gpu-operator", "1"]


def test_a_failed_first_install_is_removed_and_helm_gets_no_secret_in_its_environment(fake, monkeypatch):
    driver, chart, values, _, load, set_fail = fake
    monkeypatch.setenv("OS_PASSWORD", "hunter2")
    monkeypatch.setenv("KUBECONFIG", "/elsewhere")
    set_fail("boom")
    with pytest.raises(RunError, match="removed again"):
        driver.ensure(REL, chart, [values], chart)
    assert load()["calls"][-1][4] == "uninstall"
    assert set(driver.env()) == {"PATH", "HOME", "HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME", "LANG"}


def test_destroy_removes_in_reverse_order_and_skips_absent_releases(fake):
    driver, chart, values, lines, load, _ = fake
    driver.ensure(REL, chart, [values], chart)
    first = Release("first", "ns", "chart/x")
    outcomes = remove_in_reverse(driver, [first, REL])
    assert [(o.release, o.action) for o in outcomes] == [("gpu-operator", "removed"), ("first", "absent")]


def _tarball(path: Path, members: dict[str, bytes]) -> Path:
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


def test_helm_comes_from_its_release_tarball_unpacked_once_and_safely(tmp_path):
    from affordml.errors import ArtifactError
    from affordml.helm.local import chart_dir, helm_binary

    tarball = _tarball(
        tmp_path / "helm-v4.2.4-linux-amd64.tar.gz", {"linux-amd64/helm": b"#!", "linux-amd64/LICENSE": b""}
    )
    helm = helm_binary(tarball, tmp_path / "cache")
    assert helm.name == "helm" and helm.parent.name == "linux-amd64" and helm.stat().st_mode & 0o100
    assert helm_binary(tarball, tmp_path / "cache") == helm  # the same digest: not unpacked again
    evil = _tarball(tmp_path / "evil.tar.gz", {"../outside": b"x"})
    with pytest.raises(ArtifactError, match="refused to unpack"):
        helm_binary(evil, tmp_path / "cache")
    assert not (tmp_path / "outside").exists()
    chart = _tarball(tmp_path / "kps-88.5.3.tgz", {"kube-prometheus-stack/charts/crds/Chart.yaml": b"name: crds\n"})
    assert chart_dir(chart, "charts/crds", tmp_path / "cache").name == "crds"
    with pytest.raises(RunError, match="no chart at ../../etc"):
        chart_dir(chart, "../../etc", tmp_path / "cache")


def test_a_release_the_cluster_re_creates_parts_of_is_removed_without_waiting():
    from affordml.ml.releases import KUEUE

    argv = commands.uninstall(HELM, KUBECONFIG, KUEUE)
    assert argv[5:7] == ["uninstall", "kueue"]
    assert "--wait=watcher" not in argv
