"""The safe-file module: nothing affordml writes in the project folder goes through a symbolic link or a hard
link to a file elsewhere, is replaced when it is not affordml's, or gets wider modes under any umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from affordml import safefile
from affordml.errors import StateError, UnsafeFile
from affordml.phases.lock import RunLock
from affordml.phases.state import State, load_state, save_state
from affordml.project import Project
from affordml.render.engine import STAMP, write_env
from affordml.secrets import ensure_platform_secrets, fill_secrets

SECRET = "do-not-touch: outside the project\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside.txt"
    path.write_text(SECRET)
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize("name", ["state.json", "facts.json", "known_hosts"])
def test_write_refuses_a_symlink_and_leaves_its_target_alone(root, outside, name):
    (root / name).symlink_to(outside)
    with pytest.raises(UnsafeFile, match="symbolic link"):
        safefile.write_text(root, name, "new\n")
    assert outside.read_text() == SECRET and (root / name).is_symlink()


def test_write_refuses_a_hard_link_to_a_file_elsewhere(root, outside):
    os.link(outside, root / "state.json")
    with pytest.raises(UnsafeFile, match="2 hard links"):
        safefile.write_text(root, "state.json", "new\n")
    assert outside.read_text() == SECRET


def test_a_dangling_link_is_refused_and_nothing_is_created_at_its_target(root, tmp_path):
    target = tmp_path / "would-be-created"
    (root / "state.json").symlink_to(target)
    with pytest.raises(UnsafeFile, match="symbolic link"):
        save_state(root / "state.json", State())
    with pytest.raises(UnsafeFile, match="symbolic link"):
        safefile.append_text(root, "state.json", "x\n")
    assert not target.exists()


def test_a_link_swapped_in_after_the_check_is_replaced_never_written_through(root, outside, monkeypatch):
    (root / "state.json").write_text("{}")
    original = safefile._check_target

    def check_then_swap(parent, name, path):
        original(parent, name, path)
        os.unlink(path)
        os.symlink(outside, path)  # an attacker wins the race between the check and the rename

    monkeypatch.setattr(safefile, "_check_target", check_then_swap)
    safefile.write_text(root, "state.json", "new\n")
    assert outside.read_text() == SECRET
    assert not (root / "state.json").is_symlink() and (root / "state.json").read_text() == "new\n"


def test_a_planted_temporary_name_is_never_opened(root, outside, monkeypatch):
    names = iter(["aaaaaaaaaaaa", "bbbbbbbbbbbb"])
    monkeypatch.setattr(safefile.secrets, "token_hex", lambda _n: next(names))
    (root / ".state.json.aaaaaaaaaaaa.tmp").symlink_to(outside)
    safefile.write_text(root, "state.json", "new\n")
    assert outside.read_text() == SECRET and (root / "state.json").read_text() == "new\n"


def test_reads_refuse_links_and_foreign_files(root, outside):
    (root / "state.json").symlink_to(outside)
    with pytest.raises(UnsafeFile, match="symbolic link"):
        load_state(root / "state.json")
    os.unlink(root / "state.json")
    os.link(outside, root / "state.json")
    with pytest.raises(UnsafeFile, match="hard links"):
        load_state(root / "state.json")


def test_a_symlinked_secrets_folder_is_refused(root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "secrets").symlink_to(elsewhere)
    with pytest.raises(UnsafeFile, match="secrets is a symbolic link"):
        ensure_platform_secrets(Project(root))
    assert list(elsewhere.iterdir()) == []


def test_a_symlinked_secret_file_is_refused(root, outside):
    (root / "secrets").mkdir(mode=0o700)
    (root / "secrets" / "platform.yml").symlink_to(outside)
    with pytest.raises(UnsafeFile, match="symbolic link"):
        ensure_platform_secrets(Project(root))
    assert outside.read_text() == SECRET


def test_a_broken_secrets_file_is_named_and_its_content_never_shown(root):
    path = root / "secrets.yml"
    path.write_text("hunter2-password: [unclosed\n")
    with pytest.raises(StateError) as caught:
        fill_secrets(path, ("a",), root)
    assert str(path) in caught.value.one_line() and "hunter2" not in caught.value.one_line()
    path.write_text("- hunter2-password\n")
    with pytest.raises(StateError, match="not a mapping") as caught:
        fill_secrets(path, ("a",), root)
    assert "hunter2" not in caught.value.one_line()
    assert path.read_text() == "- hunter2-password\n"  # left as it was


def test_existing_secret_values_are_kept(root):
    path = root / "secrets.yml"
    first = fill_secrets(path, ("a",), root)
    assert fill_secrets(path, ("a", "b"), root)["a"] == first["a"]
    assert mode(path) == 0o600


@pytest.mark.parametrize("umask", [0o077, 0o000, 0o022])
def test_modes_are_safe_whatever_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        root = tmp_path / "fresh" / "project"
        project = Project(root)
        ensure_platform_secrets(project)
        save_state(project.state_file, State())
        write_env(project.env_dir, {"a/b.yml": "x: 1\n", STAMP: "affordml_version: '1'\nplan_hash: h\n"})
        safefile.append_text(root, "known_hosts", "h ssh-ed25519 AAAA\n")
    finally:
        os.umask(old)
    assert mode(root.parent) == 0o755, "a folder made above the project is never open to others' writes"
    assert mode(root) == 0o700 and mode(root / "secrets") == 0o700
    assert mode(root / "secrets" / "platform.yml") == 0o600
    assert mode(root / "state.json") == 0o600 and mode(root / "known_hosts") == 0o600
    assert mode(root / "env") == 0o700 and mode(root / "env" / "a") == 0o700
    assert mode(root / "env" / "a" / "b.yml") == 0o644


def test_the_project_folder_must_be_a_real_private_folder_of_ours(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(UnsafeFile, match="is a symbolic link"):
        safefile.check_root(tmp_path / "link", create=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UnsafeFile, match="is a file"):
        safefile.check_root(tmp_path / "file", create=True)
    real.chmod(0o770)
    with pytest.raises(UnsafeFile, match="writable by group or others") as caught:
        save_state(real / "state.json", State())
    assert f"fix: `chmod 700 {real}`" in caught.value.one_line()
    assert not (real / "state.json").exists()


def test_a_foreign_env_folder_is_never_replaced(root):
    venv = root / "env"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\n")
    with pytest.raises(UnsafeFile, match="not rendered by affordml"):
        write_env(venv, {"a.yml": "x\n", STAMP: "affordml_version: '1'\nplan_hash: h\n"})
    assert (venv / "bin" / "python").read_text() == "#!/bin/sh\n"
    assert sorted(p.name for p in root.iterdir()) == ["env"]  # no staging folder left behind


def test_a_symlinked_env_is_refused(root, tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / STAMP).write_text("affordml_version: '1'\nplan_hash: h\n")
    (root / "env").symlink_to(target)
    with pytest.raises(UnsafeFile, match="symbolic link"):
        write_env(root / "env", {"a.yml": "x\n", STAMP: "affordml_version: '1'\nplan_hash: h\n"})
    assert sorted(p.name for p in target.iterdir()) == [STAMP]


def test_run_lock_refuses_a_link_a_folder_and_a_foreign_file(root, outside):
    lock = root / "run.lock"
    lock.symlink_to(outside)
    with pytest.raises(UnsafeFile, match="symbolic link"), RunLock(lock):
        pass
    lock.unlink()
    lock.mkdir()
    with pytest.raises(UnsafeFile, match="is a folder"), RunLock(lock):
        pass
    lock.rmdir()
    lock.write_text("my notes, not a lock\n")
    with pytest.raises(UnsafeFile, match="not affordml's run lock"), RunLock(lock):
        pass
    assert lock.read_text() == "my notes, not a lock\n" and outside.read_text() == SECRET


def test_backups_are_numbered_and_never_overwritten(root):
    (root / "affordml.yaml").write_text("original\n")
    assert safefile.backup_name(root, "affordml.yaml") == root / "affordml.yaml.bak.1"
    safefile.write_text(root, "affordml.yaml", "second\n", replace_links=True)
    assert safefile.backup_name(root, "affordml.yaml") == root / "affordml.yaml.bak.2"
    assert (root / "affordml.yaml.bak.1").read_text() == "original\n"
    assert (root / "affordml.yaml.bak.2").read_text() == "second\n"


def test_save_beside_refuses_a_missing_folder_links_and_other_files(tmp_path, outside):
    with pytest.raises(UnsafeFile, match="does not exist"):
        safefile.write_beside(tmp_path / "nowhere" / "f.json", "{}")
    (tmp_path / "link.json").symlink_to(outside)
    with pytest.raises(UnsafeFile, match="symbolic link"):
        safefile.write_beside(tmp_path / "link.json", "{}")
    with pytest.raises(UnsafeFile, match="not a file affordml wrote"):
        safefile.write_beside(outside, "{}", may_replace=lambda text: text.startswith("{"))
    assert outside.read_text() == SECRET
