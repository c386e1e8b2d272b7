"""add-node's steps over the phase registry: order, resume after a failure, re-run, dry run (the steps' engines
replaced by recorders here; tests/integration/hosts/test_add_node.py runs the real ones)."""

from __future__ import annotations

import pytest
import yaml

from affordml.errors import RunError, StateError
from affordml.lifecycle import add_node
from affordml.lifecycle.add_node import AddNodeOptions, run_add_node
from affordml.phases.init import prepare
from affordml.phases.registry import get_phase
from affordml.phases.state import load_state, save_state
from affordml.phases.workflow import inputs_hash
from affordml.project import Project
from tests.cli.test_add_node import FIRST, node_facts


@pytest.fixture
def project(tmp_path) -> Project:
    root = tmp_path / "project"
    root.mkdir(mode=0o700)
    config = {"hosts": [{"name": "pc1"}, {"name": "pc2", "address": "192.168.1.43"}]}
    (root / "affordml.yaml").write_text(yaml.safe_dump(config))
    proj = Project(root)
    prepare(proj, FIRST)
    state = load_state(proj.state_file)
    for name in ("host", "openstack"):
        record = state.phase(name)
        record.status, record.inputs_hash = "done", inputs_hash(get_phase(name), proj.env_dir, state.data)
    save_state(proj.state_file, state)
    return proj


@pytest.fixture
def calls(monkeypatch) -> list[str]:
    seen: list[str] = []

    def recorder(name):
        def step(ctx, node, phase):
            seen.append(name)
            if name in FAIL_ONCE:
                FAIL_ONCE.discard(name)
                raise RunError(f"{name} broke", "fix it")
            return f"ident-{name}"

        return step

    for name in list(add_node.NODE_STEPS):
        monkeypatch.setitem(add_node.NODE_STEPS, name, recorder(name))
    return seen


FAIL_ONCE: set[str] = set()


def options(tmp_path, **kwargs) -> AddNodeOptions:
    return AddNodeOptions(
        host="pc2",
        facts_file=node_facts(tmp_path),
        base_facts_file=FIRST,
        ignore_checks=frozenset({"privileges"}),
        **kwargs,
    )


def test_steps_run_in_registry_order_and_resume_after_a_failure(project, calls, tmp_path):
    FAIL_ONCE.add("kubernetes")
    with pytest.raises(RunError, match="kubernetes broke"):
        run_add_node(project, options(tmp_path), lambda _: None)
    record = load_state(project.state_file).data["nodes"]["pc2"]
    assert record["status"] == "adding"
    assert {k: v["status"] for k, v in record["phases"].items()} == {
        "preflight": "done",
        "host": "done",
        "openstack": "done",
        "cloud": "done",
        "kubernetes": "failed",
    }
    assert calls == ["preflight", "host", "openstack", "cloud", "kubernetes"]
    calls.clear()
    lines: list[str] = []
    run_add_node(project, options(tmp_path), lines.append)
    assert calls == ["kubernetes", "gpu"]  # resumed where it stopped
    assert sum("done earlier, inputs unchanged" in line for line in lines) == 4
    state = load_state(project.state_file)
    assert state.data["nodes"]["pc2"]["status"] == "added"
    assert state.data["nodes"]["pc2"]["phases"]["gpu"]["ident"] == "ident-gpu"


def test_a_dry_run_records_nothing(project, calls, tmp_path):
    before = project.state_file.read_bytes()
    run_add_node(project, options(tmp_path, dry_run=True), lambda _: None)
    assert calls == ["preflight", "host", "openstack", "cloud", "kubernetes", "gpu"]
    assert project.state_file.read_bytes() == before and not (project.root / "nodes").exists()


def test_a_platform_phase_not_done_refuses_before_contact(project, calls, tmp_path):
    state = load_state(project.state_file)
    state.phase("openstack").status = "failed"
    save_state(project.state_file, state)
    with pytest.raises(StateError, match="phase openstack of the first PC is failed"):
        run_add_node(project, options(tmp_path), lambda _: None)
    assert calls == []
