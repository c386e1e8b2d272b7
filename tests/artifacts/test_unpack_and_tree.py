"""unpack_tarball refuses anything that would land outside its folder; git-tree checks match real git."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from affordml.artifacts import ArtifactError, unpack_tarball
from affordml.artifacts.verify import git_tree_of_tarball


def make_tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info in members:
            body = (data or {}).get(info.name)
            if body is not None:
                info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return path


def entry(name: str, kind=tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o644
    return info


def test_good_archive_with_inside_symlink(tmp_path) -> None:
    archive = make_tar(
        tmp_path / "ok.tgz",
        [entry("top/a.txt"), entry("top/link", tarfile.SYMTYPE, "a.txt")],
        {"top/a.txt": b"hello"},
    )
    dest = unpack_tarball(archive, tmp_path / "out")
    assert (dest / "top" / "link").read_text() == "hello"


@pytest.mark.parametrize(
    "member",
    [
        entry("../escape.txt"),
        entry("/etc/escape.txt"),
        entry("top/link", tarfile.SYMTYPE, "../../outside"),
        entry("top/abs", tarfile.SYMTYPE, "/etc/passwd"),
        entry("top/hard", tarfile.LNKTYPE, "../../outside"),
        entry("top/dev", tarfile.CHRTYPE),
    ],
    ids=["dotdot", "absolute", "symlink-out", "symlink-abs", "hardlink-out", "device"],
)
def test_unsafe_archives_are_refused_and_leave_nothing(tmp_path, member) -> None:
    archive = make_tar(tmp_path / "bad.tgz", [entry("top/fine.txt"), member], {"top/fine.txt": b"x", member.name: b"y"})
    with pytest.raises(ArtifactError) as caught:
        unpack_tarball(archive, tmp_path / "out")
    assert "refused to unpack" in caught.value.one_line()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tgz"], "no partial output, nothing outside"
    assert not (tmp_path.parent / "outside").exists() and not (tmp_path.parent / "escape.txt").exists()


def test_existing_destination_is_not_overwritten(tmp_path) -> None:
    archive = make_tar(tmp_path / "ok.tgz", [entry("a")], {"a": b"1"})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine").write_text("keep")
    with pytest.raises(ArtifactError, match="already exists"):
        unpack_tarball(archive, tmp_path / "out")
    assert (tmp_path / "out" / "mine").read_text() == "keep"


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@e"
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env).stdout.decode()


def test_git_tree_of_git_archive_equals_git(tmp_path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "roles" / "x" / "tasks").mkdir(parents=True)
    (repo / "roles" / "x" / "tasks" / "main.yml").write_text("- debug: msg=hi\n")
    (repo / "run.sh").write_text("#!/bin/sh\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "roles-link").symlink_to("roles")
    (repo / "a-b").write_text("sorts before a/ in git's order\n")
    (repo / "a").mkdir()
    (repo / "a" / "z").write_text("z\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "c")
    archive = tmp_path / "repo.tar.gz"
    subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar.gz", "--prefix=repo-1/", "-o", str(archive), "HEAD"],
        check=True,
    )
    assert git_tree_of_tarball(archive) == git(repo, "rev-parse", "HEAD^{tree}").strip()
    (repo / "run.sh").chmod(0o644)
    git(repo, "commit", "-q", "-am", "mode change only")
    assert git_tree_of_tarball(archive) != git(repo, "rev-parse", "HEAD^{tree}").strip()


KUBESPRAY_GIT = os.environ.get("AFFORDML_KUBESPRAY_GIT")


@pytest.mark.skipif(not KUBESPRAY_GIT, reason="set AFFORDML_KUBESPRAY_GIT to a git clone/mirror of kubespray")
def test_locked_kubespray_tree_matches_the_tag(tmp_path) -> None:
    from affordml.artifacts.lock import lock_artifacts

    kubespray = lock_artifacts()["kubespray"]
    archive = tmp_path / "k.tar.gz"
    subprocess.run(
        [
            "git",
            "-C",
            KUBESPRAY_GIT,
            "archive",
            "--format=tar.gz",
            f"--prefix=kubespray-{kubespray.version}/",
            "-o",
            str(archive),
            kubespray.version,
        ],
        check=True,
    )
    assert git_tree_of_tarball(archive) == kubespray.git_tree
