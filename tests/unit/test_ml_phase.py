"""The ml phase's logic with a fake Helm driver (the real helm and API: tests/integration/ml/): which releases, in
which order, hooks after a release, removal of the ones turned off, the dry run, the admin's password (0600, never
on a command line or in the stamp, shown once), and the address `affordml status` prints."""

from __future__ import annotations

import stat
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from affordml.cloud.spec import NODE_PORTS
from affordml.errors import RunError
from affordml.helm import commands
from affordml.helm.driver import Outcome
from affordml.helm.release import release_stamp
from affordml.ml import hub
from affordml.ml.phase import run_ml_phase
from affordml.ml.releases import COMPONENTS, all_ml_releases, ml_releases
from affordml.phases.state import State
from affordml.project import Project
from affordml.secrets import secure_dir, write_private

ALL_ON = dict.fromkeys(COMPONENTS, True)
ENV_FILES = ("kube-prometheus-stack-values.yaml", "kueue-values.yaml", "jupyterhub-values.yaml")


class FakeDriver:
    """Records what the phase asks; `installed` is what the cluster holds."""

    def __init__(self, events: list, installed: set[str] | None = None):
        self.events, self.installed, self.values = events, set(installed or ()), {}
        self.crds: dict[str, list] = {}  # release -> [(CRD name, annotations in the stored manifest)]

    def ensure(self, release, chart, values, digest_from):
        self.events.append(("ensure", release.name))
        self.values[release.name] = list(values)
        action = "unchanged" if release.name in self.installed else "installed"
        self.installed.add(release.name)
        return Outcome(release.name, action)

    def deployed_manifest(self, release):
        if release.name not in self.installed:
            return None
        return [{"kind": "ClusterRole", "metadata": {"name": f"{release.name}-aggregated-role"}}] + [
            {"kind": "CustomResourceDefinition", "metadata": {"name": name, "annotations": notes}}
            for name, notes in self.crds.get(release.name, [])
        ]

    def remove(self, release):
        if release.name not in self.installed:
            return Outcome(release.name, "absent")
        self.events.append(("remove", release.name))
        self.installed.discard(release.name)
        return Outcome(release.name, "removed")


class FakeCleanup:
    """The API side of removal (affordml.ml.kept): records what the phase asks."""

    def __init__(self, events: list):
        self.events = events

    def mark_kept(self, release):
        self.events.append(("mark-kept", release.name))
        return [f"{release.name}-a.example.io", f"{release.name}-b.example.io"]

    def delete_leftover_roles(self, names):
        self.events.append(("roles", tuple(names)))
        return []

    def close(self):
        self.events.append(("closed", ""))


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    project = Project(tmp_path / "p")
    (project.env_dir / "ml").mkdir(parents=True)
    for name in ENV_FILES:
        (project.env_dir / "ml" / name).write_text("{}\n")
    secure_dir(project.secrets_dir, project.root)
    write_private(project.secrets_dir / "kubeconfig", "apiVersion: v1\n", project.root)
    lines: list[str] = []
    events: list = []
    queues = types.ModuleType("affordml.ml.queues")  # the ml-queue module's entry point, recorded here
    queues.apply_queue_objects = lambda c, kubeconfig: events.append(("queues", kubeconfig.name))
    monkeypatch.setitem(sys.modules, "affordml.ml.queues", queues)
    from affordml.ml import phase

    monkeypatch.setitem(phase.BEFORE, "monitoring", lambda c, kubeconfig, f: events.append(("monitoring-prep", "")))
    monkeypatch.setitem(phase.AFTER_REMOVAL, "kueue", lambda c, kubeconfig: events.append(("switches-removed", "")))
    monkeypatch.setattr(phase, "release_cleanup", lambda kubeconfig: FakeCleanup(events))
    return SimpleNamespace(
        project=project,
        plan=SimpleNamespace(ml=dict(ALL_ON, inference=False)),  # the serving releases: tests/unit/test_serving.py
        state=State(),
        say=lines.append,
        dry_run=False,
        lines=lines,
        events=events,
    )


def fetch(name: str) -> Path:
    return Path(f"/charts/{name.split('/')[-1]}.tgz")


def test_releases_follow_the_config_in_dependency_order():
    assert [r.name for r in ml_releases(ALL_ON)] == [
        "monitoring",
        "kueue",
        "cert-manager",
        "kserve-crd",
        "kserve",
        "jupyterhub",
    ]
    assert [r.name for r in ml_releases({"jupyterhub": True})] == ["jupyterhub"]
    assert [r.name for r in ml_releases({"inference": True})] == ["cert-manager", "kserve-crd", "kserve"]
    assert ml_releases({}) == []
    assert [(r.name, r.namespace) for r in all_ml_releases()] == [
        ("monitoring", "monitoring"),
        ("kueue", "kueue-system"),
        ("cert-manager", "cert-manager"),
        ("kserve-crd", "kserve"),
        ("kserve", "kserve"),
        ("jupyterhub", "jupyterhub"),
    ]


def test_monitoring_is_prepared_before_its_release_and_the_queue_objects_go_in_right_after_kueue(ctx):
    driver = FakeDriver(ctx.events)
    run_ml_phase(ctx, fetch, driver)
    assert ctx.events == [
        ("monitoring-prep", ""),
        ("ensure", "monitoring"),
        ("ensure", "kueue"),
        ("queues", "kubeconfig"),
        ("ensure", "jupyterhub"),
        ("closed", ""),  # the serving releases (off) were not there: nothing marked or removed
    ]
    assert ctx.state.data["ml"]["releases"] == [
        {"name": n, "action": "installed"} for n in ("monitoring", "kueue", "jupyterhub")
    ]
    run_ml_phase(ctx, fetch, driver)
    assert [r["action"] for r in ctx.state.data["ml"]["releases"]] == ["unchanged"] * 3


def test_releases_turned_off_are_removed_newest_first(ctx):
    driver = FakeDriver(ctx.events, installed={"monitoring", "kueue", "jupyterhub"})
    ctx.plan.ml.update(training_queue=False, jupyterhub=False)
    run_ml_phase(ctx, fetch, driver)
    assert ctx.events == [
        ("monitoring-prep", ""),
        ("ensure", "monitoring"),
        ("remove", "jupyterhub"),
        ("roles", ("jupyterhub-aggregated-role",)),
        ("mark-kept", "kueue"),  # before helm uninstall; jupyterhub has no CRDs to keep
        ("remove", "kueue"),
        ("roles", ("kueue-aggregated-role",)),  # what the cluster may have re-created, after the uninstall
        ("switches-removed", ""),
        ("closed", ""),
    ]
    assert ctx.state.data["ml"]["releases"] == [
        {"name": "monitoring", "action": "unchanged"},
        {"name": "jupyterhub", "action": "removed"},
        {"name": "kueue", "action": "removed"},
    ]
    assert "[ml] kueue: kept: 2 CRDs with the users' objects; `affordml destroy --delete-data` removes them" in (
        ctx.lines
    )


def test_a_release_deployed_before_the_keep_policy_is_refused_before_anything_goes(ctx):
    driver = FakeDriver(ctx.events, installed={"monitoring", "kueue"})
    driver.crds["kueue"] = [("workloads.kueue.x-k8s.io", {}), ("cohorts.kueue.x-k8s.io", {"other": "x"})]
    ctx.plan.ml.update(training_queue=False, jupyterhub=False)
    with pytest.raises(RunError) as refused:
        run_ml_phase(ctx, fetch, driver)
    assert "removing release kueue would delete 2 CRDs and every object of theirs" in str(refused.value)
    assert "affordml init phase ml" in refused.value.fix
    assert ("remove", "kueue") not in ctx.events and ("mark-kept", "kueue") not in ctx.events

    driver.crds["kueue"] = [("workloads.kueue.x-k8s.io", {"helm.sh/resource-policy": "keep"})]
    run_ml_phase(ctx, fetch, driver)  # deployed with the policy: removed, CRDs kept
    assert ("remove", "kueue") in ctx.events


def test_destroy_with_delete_data_removes_a_release_whose_crds_would_go(ctx, monkeypatch):
    from affordml.ml.phase import remove_releases
    from affordml.ml.releases import KUEUE

    driver = FakeDriver(ctx.events, installed={"kueue"})
    driver.crds["kueue"] = [("workloads.kueue.x-k8s.io", {})]
    outcomes = remove_releases(ctx, driver, ctx.project.secrets_dir / "kubeconfig", [KUEUE], delete_data=True)
    assert [o.action for o in outcomes] == ["removed"]


def test_an_absent_release_is_not_said_kept_and_runs_no_removal_hook(ctx):
    driver = FakeDriver(ctx.events, installed={"monitoring"})
    ctx.plan.ml.update(training_queue=False, jupyterhub=False)
    run_ml_phase(ctx, fetch, driver)
    assert ("switches-removed", "") not in ctx.events and not [line for line in ctx.lines if "kept:" in line]


def test_dry_run_says_what_it_would_do_and_touches_nothing(ctx):
    ctx.dry_run = True
    ctx.plan.ml["monitoring"] = False
    run_ml_phase(ctx, fetch, driver=None)
    assert ctx.lines == [
        "[ml] would install: kueue, jupyterhub",
        "[ml] would remove if present: monitoring, cert-manager, kserve-crd, kserve",
    ]
    assert "ml" not in ctx.state.data and not (ctx.project.secrets_dir / hub.SECRETS_FILE).exists()


def test_a_missing_values_file_is_one_line_naming_it(ctx):
    (ctx.project.env_dir / "ml" / "kueue-values.yaml").unlink()
    with pytest.raises(RunError) as failed:
        run_ml_phase(ctx, fetch, FakeDriver(ctx.events))
    assert failed.value.one_line().startswith("[ml] release kueue: no values file env/ml/kueue-values.yaml")
    assert ctx.events == []  # checked before anything is installed


def test_the_admin_password_reaches_helm_only_in_a_private_file_and_is_shown_once(ctx):
    driver = FakeDriver(ctx.events)
    run_ml_phase(ctx, fetch, driver)
    secret_file = ctx.project.secrets_dir / hub.VALUES_FILE
    password = yaml.safe_load((ctx.project.secrets_dir / hub.SECRETS_FILE).read_text())["admin_password"]
    assert len(password) >= 20
    assert driver.values["jupyterhub"][-1] == secret_file  # last: nothing rendered overrides it
    assert yaml.safe_load(secret_file.read_text()) == {"custom": {"affordml": {"adminPassword": password}}}
    for path in (secret_file, ctx.project.secrets_dir / hub.SECRETS_FILE):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stamp = release_stamp(secret_file, "", driver.values["jupyterhub"])
    argv = commands.upgrade_install(
        Path("helm"), Path("k"), all_ml_releases()[-1], Path("c"), [secret_file], stamp.description
    )
    assert password not in " ".join(argv)
    assert sum(password in line for line in ctx.lines) == 1
    run_ml_phase(ctx, fetch, driver)  # again: the same password, not shown again
    assert yaml.safe_load(secret_file.read_text())["custom"]["affordml"]["adminPassword"] == password
    assert sum(password in line for line in ctx.lines) == 1
    assert "password in secrets/jupyterhub.yml" in ctx.lines[-1]


def test_a_failed_install_shows_the_password_on_the_next_run(ctx):
    class Failing(FakeDriver):
        def ensure(self, release, *args):
            if release.name == "jupyterhub":
                raise RunError("release jupyterhub failed", "look")
            return super().ensure(release, *args)

    with pytest.raises(RunError):
        run_ml_phase(ctx, fetch, Failing(ctx.events))
    assert not any("log in as admin" in line for line in ctx.lines)
    run_ml_phase(ctx, fetch, FakeDriver(ctx.events))
    assert any("log in as admin with password" in line for line in ctx.lines)


def test_status_prints_the_hub_address_on_a_worker_once_installed():
    cloud = {"servers": {"cp-1": {"role": "control-plane", "floating_ip": "192.168.1.50"},
                         "worker-1": {"role": "worker", "floating_ip": "192.168.1.51"}}}  # fmt: skip
    assert hub.hub_url({"cloud": cloud}) is None
    state = {"cloud": cloud, "ml": {"releases": [{"name": "jupyterhub", "action": "unchanged"}]}}
    assert hub.hub_url(state) == f"http://192.168.1.51:{hub.NODE_PORT}/"
    assert hub.hub_status(state) == {
        "jupyterhub": "http://192.168.1.51:30080/ (admin: admin, password in secrets/jupyterhub.yml)"
    }
    assert NODE_PORTS[0] <= hub.NODE_PORT <= NODE_PORTS[1]  # inside what the VMs' security group opens


def test_with_the_real_driver_the_password_is_never_an_argument_and_a_rerun_skips(ctx, tmp_path):
    import json

    from affordml.helm.driver import HelmDriver
    from tests.unit.test_helm_driver import FAKE_HELM  # a stand-in helm that records its calls

    helm = tmp_path / "bin" / "helm"
    helm.parent.mkdir()
    script = FAKE_HELM.replace("json.load(open(args[i + 1]))", "__import__('yaml').safe_load(open(args[i + 1]))")
    only_hub = 'if verb == "history" and args[5] != "jupyterhub":\n    sys.exit("Error: release: not found")\n'
    helm.write_text(script.replace('if verb == "history":', only_hub + 'if verb == "history":'))  # one release
    helm.chmod(0o700)
    chart = tmp_path / "jupyterhub-4.4.0.tgz"
    chart.write_bytes(b"chart")
    driver = HelmDriver(helm, ctx.project.secrets_dir / "kubeconfig", tmp_path / "home", ctx.say)
    ctx.plan.ml = {"jupyterhub": True}
    run_ml_phase(ctx, lambda name: chart, driver)
    run_ml_phase(ctx, lambda name: chart, driver)
    assert [r["action"] for r in ctx.state.data["ml"]["releases"]] == ["unchanged"]
    calls = json.loads((helm.parent / "state.json").read_text())["calls"]
    password = yaml.safe_load((ctx.project.secrets_dir / hub.SECRETS_FILE).read_text())["admin_password"]
    assert [c[4] for c in calls].count("upgrade") == 1
    assert not any(password in arg for call in calls for arg in call)
    upgrade = next(c for c in calls if c[4] == "upgrade")
    assert upgrade[-2:] == ["--values", str(ctx.project.secrets_dir / hub.VALUES_FILE)]
