"""`affordml add-node HOST --address A --user U --key PATH` through the real console script, on a platform
installed on one PC whose affordml.yaml lists only that PC (the PCs' facts from files, as in test_add_node.py)."""

from __future__ import annotations

import json

import pytest

from affordml.phases.state import load_state
from tests.cli.test_add_node import FIRST, add_node, node_facts
from tests.installed import installed_first_pc

ONE_PC = "# the lab's PCs  (keep this note)\nhosts:\n  - name: pc1   # the controller\n\ngpu:\n  sharing: mps\n"
NEW_ITEM = "  - name: pc2\n    address: 192.168.1.43\n    user: ops\n"


@pytest.fixture
def one_pc(cli):
    """A project installed on pc1 only: host and openstack done with the inputs this affordml renders."""
    cli.project.mkdir(mode=0o700)
    project = installed_first_pc(cli.project, ONE_PC, FIRST)
    (cli.project / "affordml.yaml").chmod(0o644)
    return project


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "id_ed25519"
    path.write_text("a key file: affordml only checks that it is there\n")
    return path


def flags(key, **changed) -> list[str]:
    given = {"--address": "192.168.1.43", "--user": "ops", "--key": str(key)} | changed
    return [w for pair in given.items() for w in pair]


def test_plan_shows_the_lines_then_add_node_records_the_pc_keeping_the_file(cli, tmp_path, one_pc, key):
    config = one_pc.config_file
    state_before = one_pc.state_file.read_bytes()
    planned = add_node(cli, tmp_path, *flags(key), "--plan")
    assert planned.rc == 0, planned.err
    assert "+ VM pc2-worker-1" in planned.out and "would gain (nothing written)" in planned.out
    assert NEW_ITEM + f"    ssh_key: {key}\n" in planned.out
    assert config.read_text() == ONE_PC and one_pc.state_file.read_bytes() == state_before

    added = add_node(cli, tmp_path, *flags(key))
    assert added.rc == 0, added.err + added.out
    assert "pc2 recorded in hosts" in added.out and "pc2 is in the platform" in added.out
    text = config.read_text()
    assert text == ONE_PC.replace("\n\ngpu:", "\n" + NEW_ITEM + f"    ssh_key: {key}\n\ngpu:")
    assert oct(config.stat().st_mode & 0o777) == "0o644"
    assert load_state(one_pc.state_file).data["nodes"]["pc2"]["status"] == "added"
    shown = cli("plan", "--facts", FIRST)
    assert shown.rc == 0 and "pc2-worker-1" in shown.out, shown.err
    status = cli("status", "--offline")
    assert status.rc == 0 and "added PCs: pc2 added" in status.out, status.out + status.err

    again = add_node(cli, tmp_path, *flags(key))
    assert again.rc != 0 and len(again.err_lines) == 1 and "already in the platform" in again.err
    assert config.read_text() == text


def test_an_interrupted_add_node_resumes_with_the_same_flags(cli, tmp_path, one_pc, key):
    """An add-node stopped after it recorded the PC: affordml.yaml lists pc2, its state says adding; the first
    PC's phases ran before pc2 was listed (their inputs then had no pc2), which must not count as stale."""
    before = json.loads(one_pc.state_file.read_text())
    assert add_node(cli, tmp_path, *flags(key)).rc == 0
    recorded = one_pc.config_file.read_text()
    before["data"]["nodes"] = {"pc2": {"status": "adding", "hostname": "pc2-box", "phases": {}}}
    one_pc.state_file.write_text(json.dumps(before))
    resumed = add_node(cli, tmp_path, *flags(key))
    assert resumed.rc == 0, resumed.err + resumed.out
    assert "recorded in hosts" not in resumed.out and "pc2 is in the platform" in resumed.out
    assert one_pc.config_file.read_text() == recorded
    assert load_state(one_pc.state_file).data["nodes"]["pc2"]["status"] == "added"


def test_a_pc_listed_by_hand_after_the_platform_was_installed_joins(cli, tmp_path, one_pc):
    one_pc.config_file.write_text(ONE_PC.replace("\n\ngpu:", "\n" + NEW_ITEM + "\ngpu:"))
    result = add_node(cli, tmp_path)
    assert result.rc == 0, result.err + result.out
    assert "pc2 is in the platform" in result.out


@pytest.mark.parametrize(
    ("changed", "words"),
    [
        ({"--user": "root"}, "add-node --user: hosts.pc2.user is 'ops' in affordml.yaml but --user says 'root'"),
        ({"--address": "192.168.1.99"}, "hosts.pc2.address is '192.168.1.43' in affordml.yaml"),
    ],
)
def test_flags_that_disagree_with_the_file_are_refused(cli, tmp_path, one_pc, key, changed, words):
    listed = ONE_PC.replace("\n\ngpu:", "\n" + NEW_ITEM + "\ngpu:")
    one_pc.config_file.write_text(listed)
    result = add_node(cli, tmp_path, *flags(key, **changed))
    assert result.rc == 2 and len(result.err_lines) == 1, result.err
    assert words in result.err and "nothing was changed" in result.err
    assert one_pc.config_file.read_text() == listed and "nodes" not in load_state(one_pc.state_file).data


@pytest.mark.parametrize(
    ("changed", "words"),
    [
        ({"--address": "no such host!"}, "add-node --address: 'no such host!' is not an IP address or a DNS name"),
        ({"--port": "0"}, "add-node --port: Input should be greater than or equal to 1"),
        ({"--key": "/nonexistent/key"}, "add-node --key: /nonexistent/key does not exist"),
    ],
)
def test_bad_flags_are_refused_in_one_line(cli, tmp_path, one_pc, key, changed, words):
    result = add_node(cli, tmp_path, *flags(key, **changed))
    assert result.rc == 2 and len(result.err_lines) == 1, result.err
    assert words in result.err and "Traceback" not in result.err
    assert one_pc.config_file.read_text() == ONE_PC


def test_a_pc_that_fails_its_checks_is_not_recorded(cli, tmp_path, one_pc, key):
    result = add_node(cli, tmp_path, *flags(key), facts=node_facts(tmp_path, same_os=False))
    assert result.rc != 0 and "kolla-ansible deploys one release for one OS" in result.err
    assert one_pc.config_file.read_text() == ONE_PC


def test_a_symlinked_affordml_yaml_is_refused_with_the_lines_to_paste(cli, tmp_path, one_pc, key):
    real = tmp_path / "elsewhere.yaml"
    real.write_text(ONE_PC)
    one_pc.config_file.unlink()
    one_pc.config_file.symlink_to(real)
    result = add_node(cli, tmp_path, *flags(key))
    assert result.rc == 2 and len(result.err_lines) == 1, result.err
    assert "cannot be edited safely" in result.err and "symbolic link" in result.err
    assert NEW_ITEM + f"    ssh_key: {key}\n" in result.out
    assert real.read_text() == ONE_PC and one_pc.config_file.is_symlink()
    assert "nodes" not in load_state(one_pc.state_file).data
