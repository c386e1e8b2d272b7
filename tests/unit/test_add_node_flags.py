"""add-node's flags against affordml.yaml: checked as the config model checks the fields, compared with a listed
PC, recorded (temp file then rename, the file's mode kept, never through a link), refused with the lines to paste."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from affordml.config.load import load_config
from affordml.errors import AffordmlError, ConfigError
from affordml.lifecycle.node_flags import NodeFlags, reconcile, write
from affordml.project import Project

LISTED = "# lab PCs\nhosts:\n  - name: pc1\n  - name: pc2   # the old one\n    address: 10.0.0.2\n    user: ops\n"


@pytest.fixture
def project(tmp_path) -> Project:
    root = tmp_path / "project"
    root.mkdir(mode=0o700)
    return Project(root)


@pytest.fixture
def key(tmp_path) -> Path:
    path = tmp_path / "id_ed25519"
    path.write_text("not read by affordml\n")
    path.chmod(0o600)
    return path


def flags(key: Path | None = None, **fields) -> NodeFlags:
    return NodeFlags(**({"address": "192.168.1.44", "user": "ops", "key": key} | fields))


def recorded(project: Project, name: str, given: NodeFlags) -> tuple[list[str], Project]:
    said: list[str] = []
    addition = reconcile(project, name, given, said.append)
    assert addition is not None
    write(project, addition, said.append)
    return said, project


def test_a_new_pc_is_recorded_and_the_loader_sees_it(project, key, monkeypatch):
    project.config_file.write_text(LISTED)
    project.config_file.chmod(0o640)
    said, _ = recorded(project, "pc3", flags(key, port=2222))
    text = project.config_file.read_text()
    assert text.startswith(LISTED) and text.endswith(
        f"  - name: pc3\n    address: 192.168.1.44\n    user: ops\n    ssh_key: {key}\n    port: 2222\n"
    )
    assert stat.S_IMODE(project.config_file.stat().st_mode) == 0o640
    host = load_config(project.config_file).hosts[2]
    assert (host.name, host.address, host.user, host.ssh_key, host.port) == (
        "pc3",
        "192.168.1.44",
        "ops",
        str(key),
        2222,
    )
    assert any("pc3 recorded in hosts" in line for line in said)
    assert not [n for n in os.listdir(project.root) if n.endswith(".tmp")]


def test_no_file_yet_gives_a_private_file_with_the_first_pc_spelled_out(project, key):
    recorded(project, "pc2", flags(key))
    assert project.config_file.read_text().startswith("hosts:\n  - name: main\n  - name: pc2\n")
    assert stat.S_IMODE(project.config_file.stat().st_mode) == 0o600
    assert [h.name for h in load_config(project.config_file).hosts] == ["main", "pc2"]


def test_a_relative_key_is_recorded_as_an_absolute_path(project, key, monkeypatch):
    monkeypatch.chdir(key.parent)
    recorded(project, "pc2", flags(Path(key.name)))
    assert load_config(project.config_file).hosts[1].ssh_key == str(key)


def test_a_listed_pc_with_equal_flags_is_a_rerun(project, key):
    project.config_file.write_text(LISTED)
    assert reconcile(project, "pc2", NodeFlags(address="10.0.0.2", user="ops"), print) is None
    assert reconcile(project, "pc2", NodeFlags(), print) is None
    assert project.config_file.read_text() == LISTED


@pytest.mark.parametrize(
    ("given", "words"),
    [
        (NodeFlags(address="10.0.0.9"), "add-node --address: hosts.pc2.address is '10.0.0.2' in affordml.yaml but"),
        (NodeFlags(user="root"), "hosts.pc2.user is 'ops' in affordml.yaml but --user says 'root'"),
        (NodeFlags(port=2200), "hosts.pc2.port is 22 in affordml.yaml but --port says 2200"),
    ],
)
def test_flags_that_disagree_with_a_listed_pc_are_refused(project, given, words):
    project.config_file.write_text(LISTED)
    with pytest.raises(ConfigError, match="nothing was changed") as caught:
        reconcile(project, "pc2", given, print)
    assert words in caught.value.problem
    assert project.config_file.read_text() == LISTED


def test_a_different_key_is_refused_and_the_same_key_spelled_otherwise_is_not(project, key, monkeypatch):
    project.config_file.write_text(LISTED + f"    ssh_key: {key}\n")
    other = key.parent / "other"
    other.write_text("k")
    with pytest.raises(ConfigError, match="hosts.pc2.ssh_key is"):
        reconcile(project, "pc2", NodeFlags(key=other), print)
    monkeypatch.chdir(key.parent)
    assert reconcile(project, "pc2", NodeFlags(key=Path(key.name)), print) is None


@pytest.mark.parametrize(
    ("name", "given", "words"),
    [
        ("PC_3", flags(), "add-node HOST: must be lowercase letters, digits and dashes"),
        ("pc3", flags(address="bad address!"), "add-node --address: 'bad address!' is not an IP address or a DNS name"),
        ("pc3", flags(user="-x"), "add-node --user: '-x' is not a user name"),
        ("pc3", flags(port=0), "add-node --port: Input should be greater than or equal to 1"),
        ("pc3", flags(port=70000), "add-node --port: Input should be less than or equal to 65535"),
        ("pc3", flags(address="local"), 'add-node --address: "local" is the first PC'),
        ("pc3", NodeFlags(user="ops"), "--address is missing"),
    ],
)
def test_each_flag_is_checked_as_the_config_model_checks_its_field(project, name, given, words):
    project.config_file.write_text(LISTED)
    with pytest.raises(ConfigError) as caught:
        reconcile(project, name, given, print)
    assert words in caught.value.problem
    assert project.config_file.read_text() == LISTED


def test_the_key_must_be_a_readable_regular_file(project, tmp_path):
    os.mkfifo(tmp_path / "fifo")
    unreadable = tmp_path / "unreadable"
    unreadable.write_text("k")
    unreadable.chmod(0)
    cases = [(tmp_path / "missing", "does not exist"), (tmp_path, "is a folder"), (tmp_path / "fifo", "not a regular")]
    if os.geteuid() != 0:  # root reads any file
        cases.append((unreadable, "cannot be read by you"))
    for path, words in cases:
        with pytest.raises(ConfigError, match="add-node --key: ") as caught:
            reconcile(project, "pc3", flags(path), print)
        assert words in caught.value.problem


def refused(project: Project, given: NodeFlags) -> tuple[AffordmlError, list[str]]:
    said: list[str] = []
    with pytest.raises(AffordmlError) as caught:
        reconcile(project, "pc3", given, said.append)
    return caught.value, said


def test_a_symlinked_affordml_yaml_is_refused_with_the_lines_to_paste(project, key, tmp_path):
    elsewhere = tmp_path / "real.yaml"
    elsewhere.write_text(LISTED)
    project.config_file.symlink_to(elsewhere)
    error, said = refused(project, flags(key))
    assert "cannot be edited safely" in error.problem and "symbolic link" in error.problem
    assert "  - name: pc3" in said and f"    ssh_key: {key}" in said
    assert elsewhere.read_text() == LISTED and project.config_file.is_symlink()


def test_flow_style_hosts_are_refused_with_the_lines_to_paste(project, key):
    project.config_file.write_text("hosts: [{name: pc1}]\n")
    error, said = refused(project, flags(key))
    assert "hosts is not a block list" in error.problem and "  - name: pc3" in said
    assert project.config_file.read_text() == "hosts: [{name: pc1}]\n"


def test_hosts_from_environment_overrides_are_refused(project, key, monkeypatch):
    project.config_file.write_text(LISTED)
    monkeypatch.setenv("AFFORDML_HOSTS__X", "1")
    monkeypatch.setattr("affordml.config.load.load_config", lambda path: load_config(path, {}))
    error, _ = refused(project, flags(key))
    assert "AFFORDML_HOSTS__" in error.problem


def test_a_file_changed_after_it_was_read_is_not_overwritten(project, key):
    project.config_file.write_text(LISTED)
    addition = reconcile(project, "pc3", flags(key), print)
    project.config_file.write_text(LISTED + "gpu:\n  sharing: mps\n")
    with pytest.raises(ConfigError, match="changed while add-node ran"):
        write(project, addition, print)
    assert "pc3" not in project.config_file.read_text()
