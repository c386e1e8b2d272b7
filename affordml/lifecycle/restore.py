"""`affordml restore NAME`: the project's config, state and secrets back from a backup, each file checked against
its sha256 in the manifest first; what is there now is kept as a "pre-restore" backup, so nothing is lost.
The OpenStack database and the etcd snapshot are restored by hand with the upstream tools (docs/upgrade.md):
this names their files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from affordml import safefile
from affordml.errors import ConfirmationRequired, StateError
from affordml.lifecycle.backup import BACKUPS, MANIFEST, list_backups, make_backup
from affordml.project import Project

HAND_RESTORE = "docs/upgrade.md, section Restoring"


def read_manifest(project: Project, name: str) -> dict:
    known = [r["name"] for r in list_backups(project) if r.get("complete")]
    text = safefile.read_text(project.root, Path(BACKUPS) / name / MANIFEST) if name in known else None
    if text is None:
        raise StateError(
            f"no complete backup named {name!r} in {project.root / BACKUPS}",
            f"use one of: {', '.join(known)}" if known else "take one with `affordml backup`",
        )
    return json.loads(text)


def project_items(manifest: dict, name: str) -> list[tuple[str, PurePosixPath, str]]:
    """(path in the backup, path in the project, sha256) of each project file; a path that would leave the
    project or the backup folder is refused (a manifest is data)."""
    prefix = PurePosixPath(BACKUPS) / name / "project"
    items = []
    for item in manifest.get("items") or []:
        if item.get("what") != "project":
            continue
        path = PurePosixPath(str(item.get("path", "")))
        if ".." in path.parts or path.is_absolute() or not path.is_relative_to(prefix):
            raise StateError(f"backup {name}: manifest names {str(path)!r} outside its folder", "use another backup")
        items.append((str(path), path.relative_to(prefix), str(item.get("sha256", ""))))
    return items


def check_items(project: Project, name: str, items) -> dict[str, str]:
    texts = {}
    for stored, _target, digest in items:
        text = safefile.read_text(project.root, stored)
        if text is None or hashlib.sha256(text.encode()).hexdigest() != digest:
            raise StateError(
                f"backup {name}: {stored} is missing or does not match its sha256 in the manifest; nothing restored",
                "use another backup (`affordml backup --list`)",
            )
        texts[stored] = text
    return texts


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
    with RunLock(project.lock_file, say):
        kept = make_backup(project, "pre-restore", manifest.get("lock"), {}, say)
        for stored, target, _digest in items:
            safefile.write_text(project.root, Path(target), texts[stored], safefile.PRIVATE_FILE)
        say(f"[restore] {len(items)} project file(s) restored from {name}; what was there is in {kept}")
    for item in manifest.get("items") or []:
        if item.get("what") != "project":
            say(f"[restore] {item['what']}: {project.root / item['path']} is restored by hand ({HAND_RESTORE})")
    return kept
