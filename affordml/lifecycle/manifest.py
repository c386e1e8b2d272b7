"""A backup's manifest.json is data that someone else may have written or copied in: it is checked whole before
a backup is listed as complete or restored. Only a manifest of the shape `make_backup` writes passes: finished,
of this project folder, of this affordml or an older one, its items inside the backup's own folder, and its
project items only the files a backup takes (config, state, facts, known hosts, secrets/<file>)."""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath

from affordml import __version__

BACKUPS = "backups"
PROJECT_FILES = ("affordml.yaml", "state.json", "facts.json", "extra-vars.yml", "known_hosts")
SHA256 = re.compile(r"[0-9a-f]{64}")


class ManifestProblem(ValueError):
    """What is wrong with a manifest, in words for the user."""


def version_tuple(text: str) -> tuple[int, ...]:
    """An affordml version as (major, minor, patch): a local part (+g…) or a dev/rc suffix does not count."""
    from affordml.lifecycle.rules import version_key

    return version_key(str(text).split("+")[0])[:3]


def check_manifest(manifest: object, name: str, project_root: str) -> dict:
    """The manifest as it is, when it is one a finished backup of this project wrote; ManifestProblem otherwise."""
    if not isinstance(manifest, dict):
        raise ManifestProblem("manifest.json is not a JSON object")
    if manifest.get("name") != name:
        raise ManifestProblem(f"manifest.json names backup {str(manifest.get('name'))[:80]!r}, not {name!r}")
    written_by = manifest.get("affordml_version")
    if not isinstance(written_by, str) or not version_tuple(written_by):
        raise ManifestProblem("manifest.json does not say which affordml wrote it")
    if version_tuple(written_by) > version_tuple(__version__):
        raise ManifestProblem(f"written by affordml {written_by[:40]}, newer than this affordml {__version__}")
    if manifest.get("project") != project_root:
        raise ManifestProblem(f"taken of another project folder ({str(manifest.get('project'))[:200]})")
    if manifest.get("finished") is not True:
        raise ManifestProblem("the backup did not finish (interrupted or failed)")
    if manifest.get("lock") is not None and not isinstance(manifest.get("lock"), dict):
        raise ManifestProblem("manifest.json: 'lock' is not an object")
    if not isinstance(manifest.get("skipped", {}), dict):
        raise ManifestProblem("manifest.json: 'skipped' is not an object")
    check_items(manifest.get("items"), name)
    return manifest


def check_items(items: object, name: str) -> None:
    if not isinstance(items, list):
        raise ManifestProblem("manifest.json: 'items' is not a list")
    prefix = PurePosixPath(BACKUPS) / name
    targets = set()
    for number, item in enumerate(items):
        where = f"manifest.json: items[{number}]"
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("what", "path", "sha256")):
            raise ManifestProblem(f"{where} is not an object with 'what', 'path' and 'sha256' texts")
        size = item.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestProblem(f"{where}: 'size' is not a number of bytes")
        if not SHA256.fullmatch(item["sha256"]):
            raise ManifestProblem(f"{where}: 'sha256' is not a sha256 digest")
        path = PurePosixPath(item["path"])
        if ".." in path.parts or path.is_absolute() or "\\" in item["path"] or not path.is_relative_to(prefix):
            raise ManifestProblem(f"{where} names {item['path'][:200]!r}, outside the backup's folder")
        if item["what"] == "project":
            target = project_target(path.relative_to(prefix), where)
            if target in targets:
                raise ManifestProblem(f"{where} names {target} a second time")
            targets.add(target)


def project_target(inside: PurePosixPath, where: str) -> str:
    """The project file a stored copy goes back to: one a backup takes, nothing else (not env/, not backups/)."""
    parts = inside.parts
    ok = len(parts) == 2 and parts[0] == "project" and parts[1] in PROJECT_FILES
    ok = ok or (len(parts) == 3 and parts[:2] == ("project", "secrets") and not parts[2].startswith("."))
    if not ok:
        raise ManifestProblem(f"{where}: {str(inside)[:200]!r} is not a file a backup takes (config, state, secrets)")
    return str(PurePosixPath(*parts[1:]))


def project_id(root) -> str:
    """The project folder a backup belongs to: its real path (the folder itself is never a link)."""
    return os.path.realpath(root)
