"""`affordml restore NAME`: the project's config, state and secrets back from a backup, each file checked against
its sha256 in the manifest first; what is there now is kept as a "pre-restore" backup, so nothing is lost.
The OpenStack database and the etcd snapshot are restored by hand with the upstream tools (docs/upgrade.md):
this names their files."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from affordml import safefile
from affordml.errors import ConfirmationRequired, StateError
from affordml.lifecycle.backup import MANIFEST, list_backups, make_backup, read_manifest_json, read_project_files
from affordml.lifecycle.manifest import BACKUPS, ManifestProblem, check_manifest, project_id
from affordml.phases.state import load_state
from affordml.project import Project

HAND_RESTORE = "docs/upgrade.md, section Restoring"


def read_manifest(project: Project, name: str) -> dict:
    """The manifest of a finished backup of this project (checked whole); one line naming the problem otherwise."""
    rows = list_backups(project)
    known = [r["name"] for r in rows if r.get("complete")]
    fix = f"use one of: {', '.join(known)}" if known else "take a backup with `affordml backup` first"
    if name not in known:
        why = next((r.get("why") for r in rows if r["name"] == name), None)
        if why and "another project folder" in why:  # a project folder moved since: the files are still there
            stored = project.root / BACKUPS / name / "project"
            fix = f"if this folder was moved from there, copy the files of {stored} back by hand"
        if why:
            raise StateError(f"backup {name!r} cannot be restored: {why}; nothing restored", fix)
        raise StateError(f"no complete backup named {name!r} in {project.root / BACKUPS}", fix)
    try:
        return check_manifest(read_manifest_json(project, name), name, project_id(project.root))
    except ManifestProblem as exc:  # changed since it was listed
        raise StateError(f"backup {name!r} cannot be restored: {exc}; nothing restored", fix) from None


def project_items(manifest: dict, name: str) -> list[tuple[str, PurePosixPath, str]]:
    """(path in the backup, path in the project, sha256) of each project file of a checked manifest."""
    prefix = PurePosixPath(BACKUPS) / name / "project"
    items = []
    for item in manifest["items"]:
        if item["what"] == "project":
            path = PurePosixPath(item["path"])
            items.append((str(path), path.relative_to(prefix), item["sha256"]))
    return items


def check_items(project: Project, name: str, items) -> dict[str, str]:
    """Each stored file's text, read without following a link, private and matching its sha256."""
    texts = {}
    for stored, _target, digest in [(f"{BACKUPS}/{name}/{MANIFEST}", None, None), *items]:
        text = safefile.read_text(project.root, stored)
        if digest is not None and (text is None or hashlib.sha256(text.encode()).hexdigest() != digest):
            raise StateError(
                f"backup {name}: {stored} is missing or does not match its sha256 in the manifest; nothing restored",
                "use another backup (`affordml backup --list`)",
            )
        check_private(project, name, stored)
        texts[stored] = text
    for stored, target, _digest in items:
        if str(target) == "state.json":
            load_state(project.root / stored)  # a state this affordml cannot read is not put back
    return texts


def check_private(project: Project, name: str, stored: str) -> None:
    """Backups are written 0600: a copy others may read or write is not as affordml left it."""
    rel = Path(stored)
    with safefile.folder(project.root, rel.parent) as parent:
        mode = stat.S_IMODE(os.stat(rel.name, dir_fd=parent, follow_symlinks=False).st_mode)
    if mode & 0o077:
        raise StateError(
            f"backup {name}: {project.root / rel} is mode {mode:04o}, not 0600 as affordml writes backups: "
            "someone else may have read or changed it; nothing restored",
            f"check it; if it is as you left it, `chmod 600 {project.root / rel}` and run again",
        )


def run_restore(project: Project, name: str, confirm: bool, say: Callable[[str], None]) -> Path:
    from affordml.phases.lock import RunLock

    project.check()
    manifest = read_manifest(project, name)
    items = project_items(manifest, name)
    texts = check_items(project, name, items)
    if not confirm:
        raise ConfirmationRequired(
            f"restore replaces {len(items)} project file(s) (config, state, secrets) with backup {name}; "
            "the current ones are kept as a new backup first",
            "run again with --yes-i-really-really-mean-it",
        )
    read_project_files(project)  # what cannot be kept first (a link, a folder) is refused before any change
    with RunLock(project.lock_file, say):
        kept = make_backup(project, "pre-restore", manifest.get("lock"), {}, say)
        for stored, target, _digest in items:
            safefile.write_text(project.root, Path(target), texts[stored], safefile.PRIVATE_FILE)
        say(f"[restore] {len(items)} project file(s) restored from {name}; what was there is in {kept}")
    for item in manifest["items"]:
        if item["what"] != "project":
            say(f"[restore] {item['what']}: {project.root / item['path']} is restored by hand ({HAND_RESTORE})")
    return kept
