"""The upgrade runner's pure parts and its resume: a hop's lock, the installed view used for backups, init's
lock check, the backup list, and an upgrade stopped in a hop that resumes there without a second backup
(the phase runs are replaced by a recorder here; tests/integration/hosts/test_upgrade_testbed.py runs them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from affordml.errors import AffordmlError, StateError
from affordml.lifecycle import run as lifecycle
from affordml.lifecycle.backup import list_backups
from affordml.lifecycle.etcd import snapshot_commands
from affordml.lifecycle.rules import load_rules, lock_summary
from affordml.lifecycle.upgrade import plan_upgrade
from affordml.phases.state import State, load_state
from affordml.project import Project
from affordml.versions import load_lock

PREVIOUS = Path(__file__).resolve().parents[1] / "fixtures" / "locks" / "2026.05.yaml"
FACTS = Path(__file__).resolve().parents[1] / "fixtures" / "hardware" / "desktop-rtx4090.json"


def previous() -> dict:
    return lock_summary(yaml.safe_load(PREVIOUS.read_text()))


def test_hop_lock_pins_an_intermediate_kubespray_tag_and_its_artifact() -> None:
    old = previous() | {"kubespray": "v2.29.1", "kubernetes": "1.33.7"}
    plan = plan_upgrade(old, lock_summary(load_lock()), load_rules())
    first_kube = next(h for h in plan.hops if h.phase == "kubernetes")
    lock = lifecycle.hop_lock(load_lock(), first_kube)
    artifact = next(a for a in lock["artifacts"] if a["name"] == "kubespray")
    assert lock["kubespray"]["version"] == artifact["version"] == "v2.30.0"
    assert artifact["git_tree"] == "86bb8cb5beaeab11919392126eb8c62fcfe8b86a"
    assert lock["kubespray"]["ansible"] == "10.7.0" and lock["kubernetes"]["version"] == "1.34.3"
    assert load_lock()["kubespray"]["version"] == "v2.31.0"  # the shipped lock is untouched


def test_installed_view_runs_the_installed_kolla_ansible() -> None:
    view = lifecycle.installed_view(load_lock(), previous())
    assert view["kolla_ansible"]["version"] == "21.3.0"
    assert view["kolla_ansible"]["openstack_release"] == "2025.2"
    assert view["kolla_ansible"]["ansible_core"] == ">=2.18,!=2.19.0,<2.20"
    assert view["kubernetes"]["version"] == "1.34.3"


def test_init_records_the_lock_first_and_refuses_another_one_later() -> None:
    state = State()
    lifecycle.check_installed_lock(state, load_lock())
    assert state.data["lock"]["name"] == load_lock()["name"]
    state.data["lock"] = previous()
    state.phase("host").status = "done"
    with pytest.raises(StateError, match="runs version lock 2026.05"):
        lifecycle.check_installed_lock(state, load_lock())


def test_etcd_snapshot_commands_quote_the_name() -> None:
    take, read, remove = snapshot_commands("etcd-snapshot-x.db")
    assert take.startswith("install -d -m 0700 /var/backups/affordml && /usr/local/bin/etcdctl.sh snapshot save ")
    assert read == "cat /var/backups/affordml/etcd-snapshot-x.db"
    assert "'" in snapshot_commands("a b.db")[1]


def project_with_state(root: Path) -> Project:
    root.mkdir(mode=0o700)
    (root / "affordml.yaml").write_text("hosts:\n  - name: pc1\n    address: local\n")
    phases = {name: {"status": "done"} for name in ("preflight", "host", "openstack", "kubernetes", "gpu")}
    state = {"version": 1, "plan_hash": "", "phases": phases, "data": {"lock": previous()}}
    (root / "state.json").write_text(json.dumps(state))
    return Project(root)


def test_a_stopped_upgrade_resumes_at_its_hop_without_a_second_backup(tmp_path, monkeypatch) -> None:
    project = project_with_state(tmp_path / "p")
    ran, backups = [], []

    def fake_backup(project, state, make_ctx, say, reason):
        backups.append(make_ctx("backup", {}).lock["kolla_ansible"]["version"])
        return project.root / "backups" / "b1"

    def fake_hop(project, infra, config, lock, hop, number, total, contexts, state, say):
        if hop.phase == "kubernetes" and not ran.count("kubernetes"):
            ran.append("kubernetes")
            raise AffordmlError("VM cp1 is unreachable", "start it")
        ran.append(hop.phase)

    monkeypatch.setattr(lifecycle, "take_backup", fake_backup)
    monkeypatch.setattr(lifecycle, "_run_hop", fake_hop)
    options = lifecycle.UpgradeOptions(facts_file=FACTS, confirm=True)
    with pytest.raises(AffordmlError):
        lifecycle.run_upgrade(project, options, lambda _line: None)
    record = load_state(project.state_file).data["upgrade"]
    assert (record["done"], record["backup"]) == (1, str(project.root / "backups/b1"))
    assert record["status"] == "stopped in hop 2: VM cp1 is unreachable"
    said = []
    lifecycle.run_upgrade(project, options, said.append)
    assert ran == ["openstack", "kubernetes", "kubernetes", "gpu", "ml"]
    assert backups == ["21.3.0"]  # once, with the installed kolla-ansible
    assert "[upgrade] hop 1/4 (openstack) done earlier" in said
    state = load_state(project.state_file)
    assert state.data["lock"]["name"] == load_lock()["name"] and state.data["upgrade"]["status"] == "done"


def test_backup_list_marks_a_folder_without_manifest_incomplete(tmp_path) -> None:
    project = project_with_state(tmp_path / "p")
    (project.root / "backups" / "20260101T000000Z-manual").mkdir(parents=True, mode=0o700)
    assert list_backups(project) == [{"name": "20260101T000000Z-manual", "complete": False, "why": "no manifest.json"}]


def test_the_kubernetes_upgrade_action_runs_upgrade_cluster_yml(tmp_path) -> None:
    from types import SimpleNamespace

    from affordml.phases.kubernetes import run_kubernetes_phase

    said: list[str] = []
    plan = SimpleNamespace(vms=[SimpleNamespace(name="cp-1", role="control-plane")])
    ctx = SimpleNamespace(
        dry_run=True,
        action="upgrade",
        plan=plan,
        lock=load_lock(),
        project=Project(tmp_path),
        state=SimpleNamespace(data={}),
        say=said.append,
    )
    run_kubernetes_phase(ctx)
    assert said == ["[kubernetes] would run Kubespray v2.31.0 upgrade-cluster.yml on cp-1"]


def test_two_backups_in_the_same_second_get_two_folders(tmp_path, monkeypatch) -> None:
    from affordml.lifecycle import backup
    from affordml.lifecycle.backup import make_backup

    monkeypatch.setattr(backup, "new_backup_name", lambda reason: f"20260101T000000Z-{reason}")
    project = project_with_state(tmp_path / "p")
    first = make_backup(project, "manual", None, {}, lambda _l: None)
    second = make_backup(project, "manual", None, {}, lambda _l: None)
    assert (first.name, second.name) == ("20260101T000000Z-manual", "20260101T000000Z-manual-2")
    assert {r["name"] for r in list_backups(project)} == {first.name, second.name}
