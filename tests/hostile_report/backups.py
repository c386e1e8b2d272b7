"""Hostile backups and project files for `affordml restore` and `affordml backup`: backups written by someone
else (manifests of another shape, project, version; items leaving the backup; links, hard links, huge files,
wrong modes), links in the project, a full disk, a backup stopped half-way. Restore cases note whether anything
in the project folder changed (compared entry by entry before and after)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from tests.hostile_report.runner import (
    BAD_INPUT,
    DESKTOP,
    FILES,
    SENTINEL,
    TERMINAL,
    VALUES,
    Sandbox,
    snapshot_entry,
)

NAME = "20260101T000000Z-manual"
RESTORE = ("restore", NAME, "--yes-i-really-really-mean-it")
BACKUP = ("backup", "--facts", str(DESKTOP))
LIST = ("backup", "--list")
JINJA = "{{ lookup('pipe', 'touch {tmp}/MARKER-lifecycle') }}"
# the first PC on loopback where nothing listens (no case may run a playbook on this machine); pc2 is never contacted
CONFIG = (
    "hosts:\n  - name: pc1\n    address: 127.0.0.1\n    port: 9\n"
    "  - name: pc2\n    address: 192.0.2.20\n    user: ops\n"
)
STATE = '{"version": 1, "phases": {"preflight": {"status": "done"}}}'
PLATFORM_SECRET = "affordml_jupyterhub_cookie_secret: abc\n"
LOCK_2026_05 = DESKTOP.parents[1] / "locks" / "2026.05.yaml"
STATUS = ("status", "--offline")
SHOWN = {"accepted": "accepted: the part of another shape is shown as not recorded"}


# ------------------------------------------------------------------ the project and its backup


def project_files(sandbox: Sandbox) -> None:
    root = sandbox.project
    (root / "affordml.yaml").write_text(CONFIG)
    (root / "state.json").write_text(STATE)
    (root / "secrets").mkdir(mode=0o700, exist_ok=True)
    (root / "secrets" / "platform.yml").write_text(PLATFORM_SECRET)
    (root / "secrets" / "platform.yml").chmod(0o600)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def item(path: str, data: bytes) -> dict:
    return {"what": "project", "path": path, "size": len(data), "sha256": sha(data)}


def backup_of(mutate=None, then=None):
    """A real backup of the project (make_backup) named NAME; mutate(sandbox, folder, manifest) plants the
    hostile part; then(sandbox) changes the project after. The project's entries are recorded last."""

    def setup(sandbox: Sandbox) -> None:
        from affordml.lifecycle.backup import make_backup
        from affordml.project import Project

        project_files(sandbox)
        taken = make_backup(Project(sandbox.project), "manual", None, {}, lambda _line: None)
        folder = taken.parent / NAME
        taken.rename(folder)
        path = folder / "manifest.json"
        manifest = json.loads(path.read_text().replace(taken.name, NAME))
        if mutate:
            manifest = mutate(sandbox, folder, manifest) or manifest
        if manifest is not None and not path.is_symlink() and not path.read_text().startswith("{oops"):
            mode = os.stat(path).st_mode & 0o777
            path.write_text(json.dumps(manifest) if isinstance(manifest, dict | list) else manifest)
            path.chmod(mode)
        if then:
            then(sandbox)
        sandbox.seen["project"] = tree(sandbox.project)

    return setup


def tree(root: Path) -> dict:
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            seen[str(path.relative_to(root))] = snapshot_entry(path)
    return seen


def unchanged(sandbox: Sandbox) -> str:
    before, after = sandbox.seen["project"], tree(sandbox.project)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return "project unchanged" if not changed else f"project changed: {', '.join(changed[:4])}"


def restored(sandbox: Sandbox) -> str:
    secret = sandbox.project / "secrets" / "platform.yml"
    kept = [p.name for p in (sandbox.project / "backups").iterdir() if p.name.endswith("-pre-restore")]
    mode = oct(secret.stat().st_mode & 0o777)
    return f"secret back: {secret.read_text() == PLATFORM_SECRET}, mode {mode}; pre-restore backups kept: {len(kept)}"


def add(path: str, data: bytes = SENTINEL.encode()):
    def mutate(sandbox, folder, manifest):
        manifest["items"].append(item(path.replace("{outside}", str(sandbox.outside)), data))

    return mutate


def plant(rel: str, data: bytes = b"x: 1\n"):
    """A file inside the backup folder and the manifest naming it (with its right sha256)."""

    def mutate(sandbox, folder, manifest):
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o600)
        manifest["items"].append(item(f"backups/{NAME}/{rel}", data))

    return mutate


def stored(rel: str, how):
    """Change the stored copy `rel` (under the backup's project/) with how(sandbox, path) -> its new bytes, and
    its sha256 in the manifest with it (a tamperer who rewrites the manifest too)."""

    def mutate(sandbox, folder, manifest):
        path = folder / "project" / rel
        data = how(sandbox, path)
        for entry in manifest["items"]:
            if entry["path"] == f"backups/{NAME}/project/{rel}" and data is not None:
                entry.update(size=len(data), sha256=sha(data))

    return mutate


def to_link(sandbox, path):
    path.unlink()
    path.symlink_to(sandbox.outside / "file")
    return SENTINEL.encode()


def to_hard_link(sandbox, path):
    path.unlink()
    os.link(sandbox.outside / "file", path)
    return SENTINEL.encode()


def to_huge(sandbox, path):
    data = b'{"version": 1, "pad": "' + b"x" * (17 * 2**20) + b'"}'
    path.write_bytes(data)
    return data


def to_text(text: str):
    def how(sandbox, path):
        path.write_text(text)
        return text.encode()

    return how


def tampered(sandbox, path):
    path.write_text("tampered: true\n")
    return None  # the manifest keeps the old sha256


def chmod_stored(rel: str, mode: int):
    def mutate(sandbox, folder, manifest):
        (folder / rel).chmod(mode)

    return mutate


def with_key(key: str, value):
    def mutate(sandbox, folder, manifest):
        manifest[key] = value

    return mutate


def item_key(key: str, value):
    def mutate(sandbox, folder, manifest):
        manifest["items"][0][key] = value

    return mutate


def twice(sandbox, folder, manifest):
    manifest["items"].append(dict(manifest["items"][0]))


def not_json(sandbox, folder, manifest):
    (folder / "manifest.json").write_text("{oops")


def manifest_mode(mode: int):
    def mutate(sandbox, folder, manifest):
        (folder / "manifest.json").chmod(mode)

    return mutate


def folder_is_link(sandbox, folder, manifest):
    """backups/NAME is a link to a copy of the backup outside the project."""
    (folder / "manifest.json").write_text(json.dumps(manifest))
    target = sandbox.outside / "backup-copy"
    folder.rename(target)
    folder.symlink_to(target)


def secret_is_link(sandbox: Sandbox) -> None:
    path = sandbox.project / "secrets" / "platform.yml"
    path.unlink()
    path.symlink_to(sandbox.outside / "file")


# ------------------------------------------------------------------ backup setups


def project_then(*steps):
    def setup(sandbox: Sandbox) -> None:
        project_files(sandbox)
        for step in steps:
            step(sandbox)

    return setup


def link_at(rel: str, target: str = "file"):
    def step(sandbox: Sandbox) -> None:
        path = sandbox.project / rel
        if path.is_dir() and not path.is_symlink():
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
        elif path.exists():
            path.unlink()
        path.symlink_to(sandbox.outside / target)

    return step


def subfolder(sandbox: Sandbox) -> None:
    (sandbox.project / "secrets" / "old").mkdir(mode=0o700)


def full_disk(sandbox: Sandbox) -> None:
    """The project on a 4 MiB tmpfs, rendered once, then filled to its last 256 KiB (room to render again); the
    secret the backup copies is 320 KiB."""
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(sandbox.project)], check=True)
    sandbox.cleanups.append(lambda: subprocess.run(["umount", "-l", str(sandbox.project)], check=False))
    project_files(sandbox)
    (sandbox.project / "secrets" / "big.yml").write_text("k: " + "v" * 320 * 1024 + "\n")
    (sandbox.project / "secrets" / "big.yml").chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFORDML_")}
    from tests.cli.conftest import console_script

    subprocess.run([*console_script(), "-p", str(sandbox.project), *BACKUP], env=env, capture_output=True, check=False)
    for taken in (sandbox.project / "backups").iterdir():
        subprocess.run(["rm", "-rf", str(taken)], check=True)
    free = os.statvfs(sandbox.project)
    filler = free.f_bavail * free.f_frsize - 256 * 1024
    with open(sandbox.project / "filler", "wb") as handle:
        handle.write(b"\0" * max(filler, 0))


def listing(sandbox: Sandbox) -> str:
    from tests.cli.conftest import console_script

    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFORDML_")}
    done = subprocess.run(
        [*console_script(), "-p", str(sandbox.project), *LIST], env=env, capture_output=True, text=True
    )
    rows = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ")]
    complete = [line for line in done.stdout.splitlines() if line.startswith("  ") and "incomplete" not in line]
    return f"`backup --list`: {len(rows)} listed, {len(complete)} complete"


def interrupted(sandbox, folder, manifest):
    manifest["finished"] = False  # what a backup stopped half-way (Ctrl-C, a failed part) leaves


def escapes(sandbox, folder, manifest):
    manifest["project"] = "\x1b[2J\x1b[31mother"


# ------------------------------------------------------------------ recorded state


def state_lock(lock) -> object:
    """A state whose recorded lock (data.lock, written by init, read by upgrade and backup) is `lock`."""

    def setup(sandbox: Sandbox) -> None:
        project_files(sandbox)
        state = {"version": 1, "phases": {"preflight": {"status": "done"}}, "data": {"lock": lock}}
        (sandbox.project / "state.json").write_text(json.dumps(state).replace("{tmp}", str(sandbox.tmp)))

    return setup


def state_data(key: str, value):
    """A state whose data[key] (written by the lifecycle commands, shown by `affordml status`) is `value`."""

    def setup(sandbox: Sandbox) -> None:
        project_files(sandbox)
        state = {"version": 1, "phases": {"preflight": {"status": "done"}}, "data": {key: value}}
        (sandbox.project / "state.json").write_text(json.dumps(state))

    return setup


def recorded(**change) -> dict:
    import yaml

    from affordml.lifecycle.rules import lock_summary

    summary = lock_summary(yaml.safe_load(LOCK_2026_05.read_text()))
    summary.update(change)
    return {k: v for k, v in summary.items() if v is not None}


def marker(name: str):
    return lambda sandbox: f"{name} created: {(sandbox.tmp / name).exists()}"


R, KEEP = BAD_INPUT, {"note": unchanged}
REFUSED_RESTORE = "restore: backup written by someone else"
T = TERMINAL

# (issue class, kind, field, input, setup, args, keyword arguments for Case)
# (issue class, kind, field, input, setup, args, keyword arguments for Case)
BACKUP_TABLE = [
    # restore: a backup folder or manifest written by someone else; the project must not change
    (
        FILES,
        REFUSED_RESTORE,
        "manifest items[].path",
        "`..` out of the backup",
        backup_of(add(f"backups/{NAME}/project/../../../outside/file")),
        RESTORE,
        KEEP,
    ),
    (
        FILES,
        REFUSED_RESTORE,
        "manifest items[].path",
        "absolute path outside",
        backup_of(add("{outside}/file")),
        RESTORE,
        KEEP,
    ),
    (
        FILES,
        REFUSED_RESTORE,
        "manifest items[].path",
        "a file of another backup folder",
        backup_of(add("backups/other/project/state.json")),
        RESTORE,
        KEEP,
    ),
    (
        FILES,
        REFUSED_RESTORE,
        "manifest items[].path",
        "restores into env/ (not a file a backup takes)",
        backup_of(plant("project/env/.affordml-env.yaml")),
        RESTORE,
        KEEP,
    ),
    (
        FILES,
        REFUSED_RESTORE,
        "manifest items[].path",
        "restores run.lock",
        backup_of(plant("project/run.lock")),
        RESTORE,
        KEEP,
    ),
    (
        FILES,
        REFUSED_RESTORE,
        "manifest items[].path",
        "restores into backups/",
        backup_of(plant("project/backups/x/manifest.json")),
        RESTORE,
        KEEP,
    ),
    (
        FILES,
        REFUSED_RESTORE,
        "backup's secrets/platform.yml",
        "a symlink to a file outside (sha256 of it in the manifest)",
        backup_of(stored("secrets/platform.yml", to_link)),
        RESTORE,
        KEEP,
    ),
    (
        FILES,
        REFUSED_RESTORE,
        "backup's state.json",
        "a hard link to a file outside",
        backup_of(stored("state.json", to_hard_link)),
        RESTORE,
        KEEP,
    ),
    (
        FILES,
        REFUSED_RESTORE,
        f"backups/{NAME}",
        "the backup folder is a link to a folder outside",
        backup_of(folder_is_link),
        RESTORE,
        KEEP,
    ),
    (
        R,
        REFUSED_RESTORE,
        "backup's state.json",
        "17 MiB (sha256 right)",
        backup_of(stored("state.json", to_huge)),
        RESTORE,
        KEEP,
    ),
    (
        R,
        REFUSED_RESTORE,
        "backup's secrets/platform.yml",
        "mode 0644",
        backup_of(chmod_stored("project/secrets/platform.yml", 0o644)),
        RESTORE,
        KEEP,
    ),
    (
        R,
        REFUSED_RESTORE,
        "manifest.json",
        "mode 0666 (writable by others)",
        backup_of(manifest_mode(0o666)),
        RESTORE,
        KEEP,
    ),
    (
        R,
        REFUSED_RESTORE,
        "manifest project",
        "taken of another project folder",
        backup_of(with_key("project", "/srv/other/project")),
        RESTORE,
        KEEP,
    ),
    (
        R,
        REFUSED_RESTORE,
        "manifest affordml_version",
        "a newer affordml (99.0.0)",
        backup_of(with_key("affordml_version", "99.0.0")),
        RESTORE,
        KEEP,
    ),
    (
        R,
        REFUSED_RESTORE,
        "manifest finished",
        "false (a backup stopped half-way by Ctrl-C)",
        backup_of(interrupted),
        RESTORE,
        KEEP,
    ),
    (
        R,
        REFUSED_RESTORE,
        "manifest name",
        "names another backup",
        backup_of(with_key("name", "20250101T000000Z-manual")),
        RESTORE,
        KEEP,
    ),
    (R, REFUSED_RESTORE, "manifest items", "a text, not a list", backup_of(with_key("items", "all")), RESTORE, KEEP),
    (
        R,
        REFUSED_RESTORE,
        "manifest items[].size",
        "a text, not a number of bytes",
        backup_of(item_key("size", "big")),
        RESTORE,
        KEEP,
    ),
    (
        R,
        REFUSED_RESTORE,
        "manifest items[].sha256",
        "not a digest",
        backup_of(item_key("sha256", "$(id)")),
        RESTORE,
        KEEP,
    ),
    (R, REFUSED_RESTORE, "manifest items", "the same file twice", backup_of(twice), RESTORE, KEEP),
    (R, REFUSED_RESTORE, "manifest.json", "not JSON", backup_of(not_json), RESTORE, KEEP),
    (
        R,
        REFUSED_RESTORE,
        "backup's state.json",
        "another state version (sha256 right)",
        backup_of(stored("state.json", to_text('{"version": 99}'))),
        RESTORE,
        KEEP,
    ),
    (
        R,
        REFUSED_RESTORE,
        "backup's secrets/platform.yml",
        "changed after the backup (sha256 wrong)",
        backup_of(stored("secrets/platform.yml", tampered)),
        RESTORE,
        KEEP,
    ),
    (T, REFUSED_RESTORE, "manifest project", "escape sequences, shown escaped", backup_of(escapes), RESTORE, KEEP),
    (
        R,
        "restore",
        "NAME",
        "`../outside`",
        backup_of(),
        ("restore", "../outside", "--yes-i-really-really-mean-it"),
        KEEP,
    ),
    (
        VALUES,
        "restore",
        "NAME",
        JINJA,
        backup_of(),
        ("restore", JINJA, "--yes-i-really-really-mean-it"),
        {"note": marker("MARKER-lifecycle")},
    ),
    (R, "restore", "--yes-i-really-really-mean-it", "left out", backup_of(), ("restore", NAME), KEEP),
    (
        FILES,
        "restore",
        "secrets/platform.yml",
        "the project's secret is now a link to a file outside",
        backup_of(then=secret_is_link),
        RESTORE,
        KEEP,
    ),
    (
        FILES,
        "restore",
        "backup",
        "a good backup, secret changed since",
        backup_of(then=lambda s: (s.project / "secrets/platform.yml").write_text("changed\n")),
        RESTORE,
        {"note": restored},
    ),
    # backup: links out of the project, a full disk, a backup stopped half-way
    (
        FILES,
        "backup",
        "secrets/platform.yml",
        "link to a file outside",
        project_then(link_at("secrets/platform.yml")),
        BACKUP,
        {"note": listing},
    ),
    (
        FILES,
        "backup",
        "secrets/",
        "link to a folder outside",
        project_then(link_at("secrets", "dir")),
        BACKUP,
        {"note": listing},
    ),
    (
        FILES,
        "backup",
        "state.json",
        "link to a file outside",
        project_then(link_at("state.json")),
        BACKUP,
        {"note": listing},
    ),
    (FILES, "backup", "backups/", "link to a folder outside", project_then(link_at("backups", "dir")), BACKUP),
    (R, "backup", "secrets/old/", "a folder inside secrets/", project_then(subfolder), BACKUP, {"note": listing}),
    (
        R,
        "backup",
        "project folder",
        "full disk (tmpfs, 256 KiB left, a 320 KiB secret)",
        full_disk,
        BACKUP,
        {"note": listing},
    ),
    (
        R,
        "backup --list",
        "manifest finished",
        "false (stopped half-way)",
        backup_of(interrupted),
        LIST,
        {"accepted": "listed as incomplete: the backup did not finish"},
    ),
    (T, "backup --list", "manifest project", "escape sequences", backup_of(escapes), LIST, {"echo": "\\x1b[2J"}),
]
