"""`affordml destroy` through the real console script: the listing before the confirmation, the selection errors,
and a resumable run on a project whose phases have nothing left to reach (no engine is started)."""

from __future__ import annotations

import json

from .test_cli import assert_one_line_error


def test_destroy_lists_every_phase_newest_first_and_changes_nothing(cli):
    result = cli("destroy")
    assert result.rc == 8
    listed = [line.split(":")[0].strip() for line in result.out.splitlines()[1:]]
    assert listed == ["ml", "gpu", "kubernetes", "cloud", "openstack", "host", "kept"]
    assert_one_line_error(result, "--yes-i-really-really-mean-it", "backups/ is kept")
    assert not cli.project.exists()


def test_destroy_only_names_a_phase_with_a_destroy_action(cli):
    assert_one_line_error(cli("destroy", "--only", "verify"), "--only verify: nothing to destroy", "host")
    assert_one_line_error(cli("destroy", "--only", "nope", "--yes-i-really-really-mean-it"), "unknown phase")
    assert_one_line_error(cli("destroy", "--only", "host", "--releases"), "both choose")


def test_destroy_refuses_to_delete_the_homes_without_delete_data(cli):
    cli.project.mkdir(mode=0o700)
    state = {"version": 1, "phases": {"ml": {"status": "done"}, "cloud": {"status": "done"}}}
    (cli.project / "state.json").write_text(json.dumps(state))
    result = cli("destroy", "--yes-i-really-really-mean-it")
    assert_one_line_error(result, "users' homes", "--delete-data")
    assert json.loads((cli.project / "state.json").read_text())["phases"] == state["phases"]  # nothing forgotten


def test_destroy_only_kubernetes_forgets_the_cluster(cli):
    cli.project.mkdir(mode=0o700)
    (cli.project / "secrets").mkdir(mode=0o700)
    (cli.project / "secrets" / "kubeconfig").write_text("apiVersion: v1\n")
    state = {"version": 1, "phases": {"kubernetes": {"status": "done"}, "gpu": {"status": "done"}}}
    (cli.project / "state.json").write_text(json.dumps(state))
    result = cli("destroy", "--only", "kubernetes", "--yes-i-really-really-mean-it")
    assert result.rc == 0, result.err
    assert "[kubernetes] forgot the cluster" in result.out
    assert not (cli.project / "secrets" / "kubeconfig").exists()
    phases = json.loads((cli.project / "state.json").read_text())["phases"]
    assert "kubernetes" not in phases and phases["gpu"]["status"] == "pending"
