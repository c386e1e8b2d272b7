"""The lifecycle layer's destroy: phase selection and order, the action dispatch over the registry, the run state
forgotten phase by phase (an interrupted destroy resumes), the data guard and --delete-data."""

from __future__ import annotations

import pytest

from affordml.errors import ConfigError, ConfirmationRequired
from affordml.kube.kubeconfig import kubeconfig_path
from affordml.lifecycle import actions
from affordml.lifecycle.destroy import listing, run_destroy, select_phases
from affordml.phases.registry import get_phase
from affordml.phases.state import State, load_state, save_state
from affordml.project import Project


def names(selection) -> list[str]:
    return selection.names


def test_full_destroy_runs_newest_phase_first():
    assert names(select_phases()) == ["ml", "gpu", "kubernetes", "cloud", "openstack", "host"]


def test_releases_and_only_choose_phases():
    assert names(select_phases(releases=True)) == ["ml", "gpu"]
    assert names(select_phases(["host", "cloud"])) == ["cloud", "host"]
    with pytest.raises(ConfigError, match="unknown phase"):
        select_phases(["hots"])
    with pytest.raises(ConfigError, match="nothing to destroy"):
        select_phases(["verify"])
    with pytest.raises(ConfigError, match="both choose"):
        select_phases(["host"], releases=True)


def test_listing_says_what_goes_and_what_stays():
    lines = listing(select_phases())
    assert lines[0].startswith("ml: ") and lines[-2].startswith("host: ")
    assert "kept: the project's backups/" in lines[-1]
    assert "backups/" in listing(select_phases(delete_data=True))[-1]


def project_with(tmp_path, phases: dict[str, str], data: dict | None = None) -> Project:
    project = Project(tmp_path / "project")
    project.check(create=True)
    state = State()
    for name, status in phases.items():
        state.phase(name).status = status
    state.data.update(data or {})
    save_state(project.state_file, state)
    return project


DEPLOYED = {n: "done" for n in ("preflight", "host", "openstack", "cloud", "kubernetes", "gpu", "verify")}


def test_each_phase_is_forgotten_as_its_destroy_ends_and_an_interrupted_destroy_resumes(tmp_path):
    project = project_with(tmp_path, DEPLOYED, {"cloud": {"servers": {}}, "kubernetes": {"nodes": []}, "gpu": {}})
    calls = []

    def stop_at_openstack(phase, action, ctx):
        calls.append((phase.name, action, ctx.state.phases.get(phase.name) is not None))
        if phase.name == "openstack":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_destroy(project, lambda _: None, select_phases(), stop_at_openstack)
    # ml never ran: not called; the others newest first, each with its record still there when it ran
    assert calls == [(n, "destroy", True) for n in ("gpu", "kubernetes", "cloud", "openstack")]
    state = load_state(project.state_file)
    assert sorted(state.phases) == ["host", "openstack", "preflight", "verify"]
    assert "cloud" not in state.data and "kubernetes" not in state.data and "gpu" not in state.data
    assert state.phases["verify"].status == "pending"

    calls.clear()
    run_destroy(project, lambda _: None, select_phases(), lambda p, a, c: calls.append(p.name))
    assert calls == ["cloud", "openstack", "host"]  # cloud is always tried: it finds only what carries marks
    assert sorted(load_state(project.state_file).phases) == ["preflight", "verify"]


def test_only_runs_the_named_phase_even_without_a_record(tmp_path):
    project = project_with(tmp_path, {"preflight": "done"})
    calls = []
    run_destroy(project, lambda _: None, select_phases(["host"]), lambda p, a, c: calls.append(p.name))
    assert calls == ["host"]


def test_deleting_the_vms_keeps_the_homes_unless_delete_data(tmp_path):
    project = project_with(tmp_path, DEPLOYED | {"ml": "done"})
    calls = []
    with pytest.raises(ConfirmationRequired, match="users' homes"):
        run_destroy(project, lambda _: None, select_phases(), lambda p, a, c: calls.append(p.name))
    assert calls == []
    kubeconfig = kubeconfig_path(project.secrets_dir)
    kubeconfig.parent.mkdir(mode=0o700)
    kubeconfig.write_text("apiVersion: v1\n")
    run_destroy(project, lambda _: None, select_phases(releases=True), lambda p, a, c: calls.append(p.name))
    assert calls == ["ml", "gpu"]  # the releases go; the VMs and the homes on them stay


def test_delete_data_deletes_backups_and_only_with_the_flag(tmp_path):
    project = project_with(tmp_path, {"host": "done"})
    (project.root / "backups" / "20261129T000000Z-upgrade").mkdir(parents=True)
    (project.root / "backups" / "20261129T000000Z-upgrade" / "manifest.json").write_text("{}")
    run_destroy(project, lambda _: None, select_phases(["host"]), lambda p, a, c: None)
    assert (project.root / "backups").is_dir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    (project.root / "backups" / "link").symlink_to(outside)
    run_destroy(project, lambda _: None, select_phases(["host"], delete_data=True), lambda p, a, c: None)
    assert not (project.root / "backups").exists()
    assert (outside / "keep").read_text() == "x"  # a link inside backups/ is removed, never followed


def fake_step(ctx) -> list[str]:
    return [f"verify {ctx.action}"]


def test_run_action_dispatches_playbooks_on_affordml_action_and_python_phases_by_table(monkeypatch):
    seen = []
    fake_playbook = lambda phase, ctx, action: seen.append((phase.name, action))  # noqa: E731
    monkeypatch.setattr("affordml.phases.steps.run_playbook", fake_playbook)

    class Ctx:
        action = "deploy"

    ctx = Ctx()
    actions.run_action(get_phase("host"), "destroy", ctx)
    assert seen == [("host", "destroy")] and ctx.action == "destroy"
    assert actions.run_action(get_phase("preflight"), "destroy", ctx) is None  # nothing to destroy
    monkeypatch.setitem(actions.PYTHON_ACTIONS, ("verify", "destroy"), f"{__name__}:fake_step")
    assert actions.run_action(get_phase("verify"), "destroy", ctx) == ["verify destroy"]
    with pytest.raises(ConfigError, match="unknown lifecycle action"):
        actions.run_action(get_phase("host"), "explode", ctx)


def test_every_destroy_step_in_the_table_exists():
    from importlib import import_module

    for (phase, action), target in actions.PYTHON_ACTIONS.items():
        module, name = target.split(":")
        assert callable(getattr(import_module(module), name)), (phase, action)
        assert get_phase(phase).kind == "python"
