"""`affordml add-node` through the real console script: refusals, the plan delta, the per-PC record, resume.

The PCs' facts come from files (--base-facts for the first PC as `init --facts`, --facts for the new one); the
phases' steps that need hosts, OpenStack or Kubernetes are skipped here: tests/integration/hosts/test_add_node.py
runs them on real test hosts."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from affordml.phases.registry import get_phase
from affordml.phases.state import load_state, save_state
from affordml.phases.workflow import inputs_hash
from tests.cli.conftest import FIXTURES
from tests.installed import installed_first_pc

FIRST = FIXTURES / "desktop-rtx4090.json"
LATER_STEPS = ("host", "openstack", "cloud", "kubernetes", "gpu")


def node_facts(tmp_path: Path, hostname: str = "pc2-box", address: str = "192.168.1.43", same_os: bool = True) -> Path:
    """The two-GPU workstation (Debian 13) as a PC on the first PC's network, by default with its OS (Ubuntu)."""
    raw = json.loads((FIXTURES / "workstation-2gpu.json").read_text())
    raw["files"]["/etc/hostname"] = hostname
    prefix = address.rsplit(".", 1)[0] + "."  # the fixture's 192.168.50.10/24 moved to address/24
    raw["commands"] = {
        k: v.replace("192.168.50.10", address).replace("192.168.50.", prefix) for k, v in raw["commands"].items()
    }
    if same_os:
        raw["files"]["/etc/os-release"] = json.loads(FIRST.read_text())["files"]["/etc/os-release"]
    path = tmp_path / f"{hostname}-{address}-{same_os}.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.fixture
def platform(cli):
    """A project whose first PC's host and openstack phases are done with the inputs this affordml renders."""
    cli.project.mkdir(mode=0o700)
    config = {"hosts": [{"name": "pc1"}, {"name": "pc2", "address": "192.168.1.43", "user": "ops"}]}
    return installed_first_pc(cli.project, yaml.safe_dump(config), FIRST)


def add_node(cli, tmp_path, *extra, facts: Path | None = None):
    skips = [w for s in LATER_STEPS for w in ("--skip-phase", s)]
    skips += ["--ignore-check", "privileges"]  # the workstation fixture was captured as a user without sudo
    return cli("add-node", "pc2", "--base-facts", FIRST, "--facts", facts or node_facts(tmp_path), *skips, *extra)


def test_refused_before_the_platform_is_installed(cli, tmp_path):
    cli.project.mkdir(mode=0o700)
    (cli.project / "affordml.yaml").write_text(yaml.safe_dump({"hosts": [{"name": "pc1"}, {"name": "pc2"}]}))
    result = add_node(cli, tmp_path, "--plan")
    assert result.rc != 0 and len(result.err_lines) == 1, result.err
    assert "phase host of the first PC is pending" in result.err and "affordml init" in result.err


def test_plan_shows_the_delta_and_changes_nothing(cli, tmp_path, platform):
    before = platform.state_file.read_bytes()
    result = add_node(cli, tmp_path, "--plan")
    assert result.rc == 0, result.err
    assert "+ VM pc2-worker-1" in result.out and "availability zone affordml-pc2" in result.out
    assert "+ GPU" in result.out and "doctor" in result.out
    assert platform.state_file.read_bytes() == before and not (platform.root / "nodes").exists()


def test_add_node_records_the_pc_then_a_rerun_changes_nothing(cli, tmp_path, platform):
    result = add_node(cli, tmp_path)
    assert result.rc == 0, result.err + result.out
    state = load_state(platform.state_file)
    record = state.data["nodes"]["pc2"]
    assert record["status"] == "added" and record["hostname"] == "pc2-box"
    assert record["phases"]["preflight"]["status"] == "done"
    saved = platform.root / "nodes" / "pc2.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert (platform.env_dir / "kolla" / "config" / "nova" / "pc2" / "nova-compute.conf").is_file()
    # the platform's own records take the grown inputs: `init` would keep its done phases
    for name in ("host", "openstack"):
        assert state.phases[name].inputs_hash == inputs_hash(get_phase(name), platform.env_dir, state.data)
    shown = cli("plan", "--facts", FIRST)
    assert shown.rc == 0 and "pc2-worker-1" in shown.out, shown.err
    status = cli("status", "--offline")
    assert status.rc == 0 and "added PCs: pc2 added" in status.out, status.out + status.err
    before = platform.state_file.read_bytes()
    again = add_node(cli, tmp_path)
    assert again.rc != 0 and len(again.err_lines) == 1
    assert "already in the platform" in again.err and "nothing was changed" in again.err
    assert platform.state_file.read_bytes() == before


@pytest.mark.parametrize(
    ("facts_kwargs", "words"),
    [
        ({"address": "10.9.9.9"}, "does not hold the first PC's management address"),
        ({"hostname": "ryzen-4090"}, "the name of the first PC"),
        ({"same_os": False}, "kolla-ansible deploys one release for one OS"),
    ],
)
def test_a_pc_that_cannot_join_is_refused_in_one_line(cli, tmp_path, platform, facts_kwargs, words):
    result = add_node(cli, tmp_path, facts=node_facts(tmp_path, **facts_kwargs))
    assert result.rc != 0 and len(result.err_lines) == 1, result.err
    assert words in result.err
    assert "nodes" not in load_state(platform.state_file).data


def test_unknown_and_first_host_are_refused(cli, tmp_path, platform):
    unknown = cli("add-node", "pc9", "--base-facts", FIRST, "--facts", node_facts(tmp_path))
    assert unknown.rc != 0 and "no host named 'pc9'" in unknown.err and len(unknown.err_lines) == 1
    first = cli("add-node", "pc1", "--base-facts", FIRST, "--facts", node_facts(tmp_path))
    assert first.rc != 0 and "is the first PC" in first.err


def test_a_stale_first_pc_is_refused(cli, tmp_path, platform):
    state = load_state(platform.state_file)
    state.phase("openstack").inputs_hash = "0000000000000000"  # deployed with another release or configuration
    save_state(platform.state_file, state)
    result = add_node(cli, tmp_path, "--plan")
    assert result.rc != 0 and "phase openstack ran with other inputs" in result.err
