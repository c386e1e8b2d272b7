"""Backups under the project folder, each in backups/<UTC time>-<reason>/ with a manifest.json:
the project's config, state and secrets (0600 copies); OpenStack's database by kolla-ansible's own
`mariadb-backup` (the openstack phase's action "backup"); the Kubernetes etcd snapshot over SSH.
A part whose phase never ran is recorded as skipped with the reason, never silently left out."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from affordml import __version__, safefile
from affordml.errors import AffordmlError
from affordml.lifecycle.manifest import BACKUPS, PROJECT_FILES, ManifestProblem, check_manifest, project_id
from affordml.project import Project

MANIFEST = "manifest.json"


def new_backup_name(reason: str, now: datetime | None = None) -> str:
    return f"{(now or datetime.now(UTC)).strftime('%Y%m%dT%H%M%SZ')}-{reason}"


def free_name(project: Project, name: str) -> str:
    """The name, or name-2, name-3 ... when a backup of that second exists: a backup never writes into another."""
    taken = set(safefile.list_names(project.root, BACKUPS))
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def read_project_files(project: Project) -> dict[Path, str]:
    """Config, state, facts, known hosts and every file of secrets/, read through safefile (a link, a folder or
    someone else's file there is refused) before anything is written."""
    names = [Path(n) for n in PROJECT_FILES]
    names += [Path("secrets") / n for n in safefile.list_names(project.root, "secrets")]
    texts = {rel: safefile.read_text(project.root, rel) for rel in names}
    return {rel: text for rel, text in texts.items() if text is not None}


def copy_project_files(project: Project, dest_rel: Path, texts: dict[Path, str]) -> list[dict]:
    """The files read by read_project_files, written 0600 under the backup's project/."""
    items = []
    for rel, text in texts.items():
        safefile.write_text(project.root, dest_rel / "project" / rel, text, safefile.PRIVATE_FILE)
        items.append(_item("project", dest_rel / "project" / rel, text.encode()))
    return items


def write_bytes(project: Project, rel: Path, data: bytes) -> Path:
    with safefile.folder(project.root, rel.parent, create=True) as parent:
        safefile.write_in(parent, rel.name, project.root / rel, data, safefile.PRIVATE_FILE)
    return project.root / rel


def _item(what: str, rel: Path, data: bytes) -> dict:
    return {"what": what, "path": str(rel), "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def write_manifest(project: Project, dest_rel: Path, manifest: dict) -> Path:
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    return safefile.write_text(project.root, dest_rel / MANIFEST, text, safefile.PRIVATE_FILE)


def make_backup(
    project: Project,
    reason: str,
    lock_record: dict | None,
    parts: dict[str, Callable[[Path], list[dict] | str]],
    say: Callable[[str], None],
) -> Path:
    """The project's files, then each named part: a callable given the backup's folder (relative to the
    project) that returns its manifest items, or a text saying why it was skipped. The manifest says
    "finished" only once every part is in: a backup stopped half-way (Ctrl-C, a full disk) is never listed
    as complete nor restored."""
    texts = read_project_files(project)
    name = free_name(project, new_backup_name(reason))
    dest_rel = Path(BACKUPS) / name
    safefile.ensure_folder(project.root, dest_rel)
    manifest = {
        "name": name,
        "reason": reason,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "affordml_version": __version__,
        "project": project_id(project.root),
        "finished": False,
        "lock": lock_record,
        "items": copy_project_files(project, dest_rel, texts),
        "skipped": {},
    }
    say(f"[backup] config, state and secrets: {len(manifest['items'])} file(s) in {project.root / dest_rel}")
    write_manifest(project, dest_rel, manifest)
    for part, run in parts.items():
        result = run(dest_rel)
        if isinstance(result, str):
            manifest["skipped"][part] = result
            say(f"[backup] {part}: skipped: {result}")
        else:
            manifest["items"] += result
            say(f"[backup] {part}: {len(result)} file(s)")
        write_manifest(project, dest_rel, manifest)
    manifest["finished"] = True
    write_manifest(project, dest_rel, manifest)
    return project.root / dest_rel


def list_backups(project: Project) -> list[dict]:
    """Every backup, oldest first; one whose manifest is missing, unreadable, unfinished or not of this
    project's shape is listed as incomplete, with the reason."""
    rows = []
    for name in safefile.list_names(project.root, BACKUPS):
        try:
            manifest = check_manifest(read_manifest_json(project, name), name, project_id(project.root))
        except (ManifestProblem, AffordmlError) as exc:
            rows.append({"name": name, "complete": False, "why": _why(exc)})
            continue
        items = manifest["items"]
        rows.append(
            {
                "name": name,
                "complete": True,
                "reason": manifest.get("reason"),
                "lock": (manifest.get("lock") or {}).get("name"),
                "files": len(items),
                "bytes": sum(i["size"] for i in items),
                "parts": sorted({i["what"] for i in items}),
                "skipped": manifest.get("skipped") or {},
            }
        )
    return rows


def read_manifest_json(project: Project, name: str) -> object:
    text = safefile.read_text(project.root, Path(BACKUPS) / name / MANIFEST)
    if text is None:
        raise ManifestProblem("no manifest.json")
    try:
        return json.loads(text)
    except ValueError:
        raise ManifestProblem("manifest.json is not valid JSON") from None


def _why(exc: Exception) -> str:
    return exc.one_line() if isinstance(exc, AffordmlError) else str(exc)


# ------------------------------------------------------------------ the engine parts


def openstack_part(
    make_ctx: Callable[[str, dict], object], project: Project, state
) -> Callable[[Path], list[dict] | str]:
    """kolla-ansible mariadb-backup through the openstack phase's action "backup"; the role copies the newest
    backup file from kolla's mariadb_backup volume into the backup folder (0600)."""

    def run(dest_rel: Path) -> list[dict] | str:
        if state.phase("openstack").status != "done":
            return "the openstack phase has not run: no OpenStack database yet"
        from affordml.phases.registry import get_phase
        from affordml.phases.steps import run_playbook

        safefile.ensure_folder(project.root, dest_rel / "openstack")
        ctx = make_ctx("backup", {"affordml_backup_dir": str(project.root / dest_rel / "openstack")})
        run_playbook(get_phase("openstack"), ctx, "backup")
        return _files_in(project, dest_rel / "openstack", "openstack-mariadb") or (
            "kolla-ansible mariadb-backup did not run (affordml_kolla_deploy is false: see the run's log)"
        )

    return run


def etcd_part(
    access_of: Callable[[], object], project: Project, state, take=None
) -> Callable[[Path], list[dict] | str]:
    """The etcd snapshot from the control-plane VM (Kubespray's etcdctl.sh), written 0600."""

    def run(dest_rel: Path) -> list[dict] | str:
        if state.phase("kubernetes").status != "done":
            return "the kubernetes phase has not run: no etcd yet"
        from affordml.lifecycle.etcd import take_snapshot

        access = access_of()
        name = f"etcd-snapshot-{dest_rel.name}.db"
        data = (take or take_snapshot)(access.control_plane, name)
        rel = dest_rel / "kubernetes" / name
        write_bytes(project, rel, data)
        return [_item("kubernetes-etcd", rel, data)]

    return run


def _files_in(project: Project, rel: Path, what: str) -> list[dict]:
    items = []
    for name in safefile.list_names(project.root, rel):
        path = project.root / rel / name
        safefile.tighten(project.root, rel / name)
        data = path.read_bytes()
        items.append(_item(what, rel / name, data))
    return items
