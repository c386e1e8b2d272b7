"""Kubespray's source tree: unpacked once from the verified release tarball into the cache, and its toolchain
(a virtualenv from the tree's own requirements.txt)."""

from __future__ import annotations

import re
from pathlib import Path

from affordml.artifacts.verify import sha256_file
from affordml.errors import RunError
from affordml.run.toolchains import Toolchain

REQUIREMENT = re.compile(r"^[A-Za-z0-9_.\-\[\]]+\s*(==|>=|<=|~=|!=|<|>)\s*[A-Za-z0-9_.*+\-]+$")


def unpacked_tree(tarball: Path, cache_dir: Path, tag: str) -> Path:
    """The Kubespray tree of `tarball`, unpacked once under cache_dir/kubespray-<tag>-<sha12>/ (safe unpack:
    no absolute names, no `..`, no links out). A release tarball holds one top folder; that folder is the tree."""
    from affordml.artifacts import unpack_tarball

    dest = cache_dir / f"kubespray-{tag}-{sha256_file(tarball)[:12]}"
    if not dest.is_dir():
        cache_dir.mkdir(parents=True, exist_ok=True)
        unpack_tarball(tarball, dest)
    return tree_root(dest)


def tree_root(folder: Path) -> Path:
    if (folder / "cluster.yml").is_file():
        return folder
    children = [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()]
    if len(children) == 1 and (children[0] / "cluster.yml").is_file():
        return children[0]
    raise RunError(
        f"{folder} does not hold a Kubespray tree (no cluster.yml)",
        "delete that folder so that affordml unpacks the Kubespray tarball again",
    )


def read_requirements(tree: Path) -> tuple[str, ...]:
    """Kubespray's requirements.txt as pip requirement lines (comments dropped); anything else is refused."""
    path = tree / "requirements.txt"
    try:
        text = path.read_text()
    except OSError as exc:
        raise RunError(
            f"cannot read {path}: {exc.strerror}", "delete the unpacked Kubespray tree and run again"
        ) from None
    lines = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not REQUIREMENT.fullmatch(line):
            raise RunError(
                f"{path}: unexpected line {line!r} (only 'name==version' pins are taken)",
                "use the Kubespray release tarball named in the version lock",
            )
        lines.append(line)
    return tuple(lines)


def kubespray_toolchain(tree: Path, lock: dict) -> Toolchain:
    """One virtualenv for Kubespray: its own requirements.txt, which must pin the ansible the lock names."""
    requirements = read_requirements(tree)
    wanted = f"ansible=={lock['kubespray']['ansible']}"
    if wanted not in {r.replace(" ", "") for r in requirements}:
        raise RunError(
            f"{tree / 'requirements.txt'} does not pin {wanted} (the version lock's Kubespray "
            f"{lock['kubespray']['version']})",
            "use the Kubespray release tarball named in the version lock",
        )
    return Toolchain("kubespray", requirements)
