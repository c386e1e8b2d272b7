"""`affordml init` through the real console script on an installed platform: a passed verify is kept while the
platform stays the same, and runs again when the platform changed (here it then stops in one line: no cluster)."""

from __future__ import annotations

import pytest
import yaml

from affordml.phases.registry import PHASES
from affordml.phases.state import load_state, save_state
from affordml.phases.workflow import PhaseContext, inputs_hash
from affordml.project import Project
from tests.cli.conftest import FIXTURES

FIRST = FIXTURES / "desktop-rtx4090.json"
BEFORE_VERIFY = [p.name for p in PHASES if p.name != "verify"]


@pytest.fixture
def installed(cli):
    """Every phase done with the inputs `init` computes for this project now."""
    from affordml.phases.init import prepare

    cli.project.mkdir(mode=0o700)
    (cli.project / "affordml.yaml").write_text(yaml.safe_dump({"hosts": [{"name": "pc1"}]}))
    project = Project(cli.project)
    config, plan, lock = prepare(project, FIRST)
    state = load_state(project.state_file)
    ctx = PhaseContext(project, config, plan, lock, state, lambda _: None)
    for phase in PHASES:
        record = state.phase(phase.name)
        record.status, record.inputs_hash = "done", inputs_hash(phase, project.env_dir, state.data, ctx)
    save_state(project.state_file, state)
    return project


def init_verify_only(cli):
    """`init` with the phases before verify left out: the state decides whether verify runs."""
    return cli("init", "--facts", FIRST, *[w for name in BEFORE_VERIFY for w in ("--skip-phase", name)])


def test_an_unchanged_platform_keeps_its_passed_verify(cli, installed):
    result = init_verify_only(cli)
    assert result.rc == 0, result.err
    assert "[verify] done earlier, inputs unchanged: nothing to do" in result.out


@pytest.mark.parametrize(
    "changed", [{"gpu": {"sharing": "hami"}}, {"ml": {"jupyterhub": False}}], ids=["gpu-mode", "ml-switch"]
)
def test_a_changed_platform_runs_verify_again(cli, installed, changed):
    (installed.root / "affordml.yaml").write_text(yaml.safe_dump({"hosts": [{"name": "pc1"}], **changed}))
    result = init_verify_only(cli)
    assert "[verify] inputs changed since it ran: running it again" in result.out, result.out + result.err
    assert result.rc != 0 and len(result.err_lines) == 1 and "no cluster kubeconfig" in result.err
    assert load_state(installed.state_file).phases["verify"].status == "failed"
