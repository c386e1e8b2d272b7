"""Hostile or broken files in the project folder, through the real CLI: a non-zero exit, ONE line on stderr that
names the file or field with its fix, no traceback, and nothing outside the project written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import FIXTURES
from .test_bad_input import assert_one_line

DESKTOP = FIXTURES / "desktop-rtx4090.json"
SENTINEL = "sentinel: outside the project\n"
DRY_INIT = ("init", "--dry-run", "--facts", str(DESKTOP), "phase", "preflight")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside.txt"
    path.write_text(SENTINEL)
    return path


def project(cli) -> Path:
    cli.project.mkdir(mode=0o700, exist_ok=True)
    return cli.project


# id -> (what to put into the project folder, words of the error line)
def _state(text):
    return lambda p: (p / "state.json").write_text(text)


BAD_STATE = {
    "list": ("[]", ["state.json", "JSON object"]),
    "null": ("null", ["state.json", "JSON object"]),
    "unknown-top-field": ('{"version": 1, "phases": {}, "extra": 1}', ["state.json", "'extra'"]),
    "unknown-phase-field": ('{"version": 1, "phases": {"host": {"colour": "red"}}}', ["phases.host", "'colour'"]),
    "phases-a-list": ('{"version": 1, "phases": []}', ["state.json", "'phases'"]),
    "phase-a-string": ('{"version": 1, "phases": {"host": "done"}}', ["phases.host"]),
    "status-a-number": ('{"version": 1, "phases": {"host": {"status": 3}}}', ["phases.host.status"]),
    "data-a-list": ('{"version": 1, "data": []}', ["state.json", "'data'"]),
    "not-json": ("{oops", ["state.json", "unreadable"]),
    "wrong-version": ('{"version": 99}', ["state.json", "version 99"]),
}


@pytest.mark.parametrize("case", sorted(BAD_STATE))
def test_bad_state_file(cli, case):
    text, words = BAD_STATE[case]
    (project(cli) / "state.json").write_text(text)
    assert_one_line(cli(*DRY_INIT), words, 7)
    assert (cli.project / "state.json").read_text() == text


@pytest.mark.parametrize(
    "content",
    ["hunter2-secret: [unclosed\n", "- hunter2-secret\n", "hunter2-secret\n", "{1: hunter2-secret}\n"],
    ids=["yaml-error", "a-list", "a-string", "non-text-key"],
)
def test_broken_secrets_file_is_named_and_never_echoed(cli, content):
    secrets = project(cli) / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "platform.yml").write_text(content)
    result = cli(*DRY_INIT)
    assert_one_line(result, ["secrets/platform.yml"], 7)
    assert "hunter2" not in result.err + result.out
    assert (secrets / "platform.yml").read_text() == content


@pytest.mark.parametrize(
    "name", ["state.json", "run.lock", "facts.json", "secrets/platform.yml", "secrets", "env", "affordml.yaml.bak.1"]
)
def test_links_to_outside_are_refused_and_the_target_untouched(cli, outside, name):
    root = project(cli)
    (root / name).parent.mkdir(mode=0o700, exist_ok=True)
    (root / name).symlink_to(outside)
    result = cli(*DRY_INIT) if name != "affordml.yaml.bak.1" else None
    if result is not None:
        assert_one_line(result, [name.split("/")[0], "symbolic link"])
    else:  # config init --force must not follow a planted backup name either
        (root / "affordml.yaml").write_text("vms: {}\n")
        assert cli("config", "init", "--force").rc == 0
        assert (root / "affordml.yaml.bak.2").read_text() == "vms: {}\n"
    assert outside.read_text() == SENTINEL


@pytest.mark.parametrize("name", ["state.json", "run.lock", "secrets/platform.yml"])
def test_hard_links_to_outside_are_refused(cli, outside, name):
    root = project(cli)
    (root / name).parent.mkdir(mode=0o700, exist_ok=True)
    os.link(outside, root / name)
    assert_one_line(cli(*DRY_INIT), [name, "hard links"], 11)
    assert outside.read_text() == SENTINEL


def test_run_lock_that_is_a_folder(cli):
    (project(cli) / "run.lock").mkdir()
    assert_one_line(cli(*DRY_INIT), ["run.lock", "is a folder"], 11)


def test_a_foreign_run_lock_is_never_truncated(cli):
    (project(cli) / "run.lock").write_text("my notes\n")
    assert_one_line(cli(*DRY_INIT), ["run.lock", "not affordml's run lock"], 11)
    assert (cli.project / "run.lock").read_text() == "my notes\n"


def test_a_virtualenv_named_env_is_never_replaced(cli):
    root = project(cli)
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(root / "env")], check=True)
    before = sorted(str(p.relative_to(root)) for p in (root / "env").rglob("*"))
    assert_one_line(cli(*DRY_INIT), ["env", "not rendered by affordml", "mv"], 11)
    assert sorted(str(p.relative_to(root)) for p in (root / "env").rglob("*")) == before


def test_a_facts_json_of_someone_else_is_never_replaced(cli):
    (project(cli) / "facts.json").write_text('{"my": "data"}\n')
    assert_one_line(cli(*DRY_INIT), ["facts.json", "not a facts file"], 11)
    assert (cli.project / "facts.json").read_text() == '{"my": "data"}\n'


def test_project_folder_that_is_a_file(cli, tmp_path):
    path = tmp_path / "a-file"
    path.write_text("x\n")
    for args in (DRY_INIT, ("plan", "--facts", str(DESKTOP)), ("status", "--offline"), ("config", "init")):
        assert_one_line(cli(*args, project_dir=path), ["a-file", "is a file"], 11)
    assert path.read_text() == "x\n"


def test_project_folder_that_is_a_symlink(cli, tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    assert_one_line(cli(*DRY_INIT, project_dir=tmp_path / "link"), ["symbolic link", str(real)], 11)
    assert list(real.iterdir()) == []


@pytest.mark.parametrize("sub", ["", "secrets"])
def test_folder_writable_by_others_is_refused_with_chmod(cli, sub):
    folder = project(cli) / sub if sub else project(cli)
    folder.mkdir(exist_ok=True)
    folder.chmod(0o777)
    assert_one_line(cli(*DRY_INIT), ["writable by group or others", f"chmod 700 {folder}"], 11)


def test_read_only_project_folder(cli):
    root = project(cli)
    if os.geteuid() == 0:
        if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(root)], capture_output=True).returncode:
            pytest.skip("root ignores modes and this file system has no immutable flag")
    else:
        root.chmod(0o500)
    try:
        assert_one_line(cli(*DRY_INIT), ["run.lock", "cannot be written"], 11)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(root)], check=True)
        root.chmod(0o700)


def test_status_with_a_malformed_env_stamp_says_so(cli):
    env = project(cli) / "env"
    env.mkdir()
    (env / ".affordml-env.yaml").write_text("- not a mapping\n")
    result = cli("status", "--offline")
    assert result.rc == 0 and "Traceback" not in result.err
    assert "no valid affordml stamp" in result.out


def test_facts_save_into_a_missing_folder(cli, tmp_path):
    result = cli("facts", "--facts", DESKTOP, "--save", tmp_path / "nowhere" / "f.json")
    assert_one_line(result, ["--save", "nowhere", "mkdir -p"], 11)


def test_facts_save_over_a_symlink(cli, tmp_path, outside):
    (tmp_path / "f.json").symlink_to(outside)
    assert_one_line(cli("facts", "--facts", DESKTOP, "--save", tmp_path / "f.json"), ["--save", "symbolic link"], 11)
    assert outside.read_text() == SENTINEL


@pytest.mark.parametrize(
    "line",
    [
        "@revoked 127.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
        "@cert-authority *.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
    ],
    ids=["revoked", "cert-authority"],
)
def test_known_hosts_markers_are_no_crash(cli, line):
    root = project(cli)
    (root / "known_hosts").write_text(line)
    (root / "affordml.yaml").write_text("hosts:\n  - name: pc\n    address: 127.0.0.1\n    port: 9\n")
    result = cli("facts")
    assert_one_line(result, ["127.0.0.1"], 3)  # no sshd on port 9: the connection error, not a parse crash
    assert (root / "known_hosts").read_text() == line


def test_known_hosts_garbage_line_is_named(cli):
    root = project(cli)
    (root / "known_hosts").write_text("# comment\nthis is not a host key\n")
    (root / "affordml.yaml").write_text("hosts:\n  - name: pc\n    address: 127.0.0.1\n    port: 9\n")
    assert_one_line(cli("facts"), ["known_hosts line 2"], 3)


def test_destroy_refuses_a_folder_that_is_not_a_project(cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o700)
    result = cli("destroy", "--yes-i-really-really-mean-it", project_dir=empty)
    assert_one_line(result, ["not an initialised affordml project"], 7)
    assert list(empty.iterdir()) == []
    missing = tmp_path / "missing"
    assert_one_line(cli("destroy", "--yes-i-really-really-mean-it", project_dir=missing), ["does not exist"], 7)
    assert not missing.exists()


def test_destroy_never_uses_kolla_credentials_the_project_did_not_deploy(cli):
    root = project(cli)
    (root / "state.json").write_text(json.dumps({"version": 1, "phases": {"host": {"status": "done"}}}))
    result = cli("destroy", "--yes-i-really-really-mean-it")
    assert_one_line(result, ["/etc/kolla/clouds.yaml is not used", "state"])


MALFORMED_SERVERS = {
    "servers-a-list": [],
    "server-a-string": {"worker-1": "ACTIVE"},
    "gpus-a-number": {"worker-1": {"name": "affordml-worker-1", "gpus": 2, "status": "ACTIVE"}},
    "fields-of-other-kinds": {"worker-1": {"name": ["x"], "status": {"a": 1}, "address": 7, "flavor": 3.5}},
}


@pytest.mark.parametrize("case", sorted(MALFORMED_SERVERS))
def test_status_offline_shows_malformed_server_records_as_unknown(cli, case):
    state = {"version": 1, "phases": {}, "data": {"cloud": {"servers": MALFORMED_SERVERS[case]}}}
    text = json.dumps(state)
    (project(cli) / "state.json").write_text(text)
    result = cli("status", "--offline")
    assert result.rc == 0 and "Traceback" not in result.err, result.err
    assert (cli.project / "state.json").read_text() == text
