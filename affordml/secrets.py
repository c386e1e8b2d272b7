"""Secrets: generated once, filled in only where empty, kept in 0600 files under the project's secrets/.
They reach Ansible as vars files (-e @file) and tasks that use them set no_log; never environment or argv."""

from __future__ import annotations

import secrets as random
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from affordml import safefile
from affordml.errors import RunError, StateError
from affordml.project import Project

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

PLATFORM_SECRETS = (
    "affordml_grafana_admin_password",
    "affordml_jupyterhub_cookie_secret",
    "affordml_jupyterhub_proxy_token",
)


def _split(path: Path, root: Path | None) -> tuple[Path, Path]:
    """(root, path relative to it): the project folder the walk starts from, by default the path's parent."""
    root = Path(root) if root is not None else path.parent
    return root, path.relative_to(root)


def secure_dir(path: Path, root: Path | None = None) -> Path:
    """Make a private folder (0700, whatever the umask) under root, never through a link."""
    root, rel = _split(path, root)
    safefile.ensure_folder(root, rel, PRIVATE_DIR)
    return path


def write_private(path: Path, text: str, root: Path | None = None) -> None:
    """Create or replace a file that only its owner can read, without a moment of wider permissions."""
    root, rel = _split(path, root)
    safefile.write_text(root, rel, text, PRIVATE_FILE)


def read_secrets(path: Path, root: Path | None = None) -> dict | None:
    """A secrets file's mapping; None when missing. A broken file is named, its content never shown."""
    root, rel = _split(path, root)
    text = safefile.read_text(root, rel)
    if text is None:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise StateError(
            f"secrets file {path} is not valid YAML{line}",
            f"repair it by hand, or move it aside (`mv {path} {path}.broken`) to generate new secrets",
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise StateError(
            f"secrets file {path} is not a mapping of names to values",
            f"repair it by hand, or move it aside (`mv {path} {path}.broken`) to generate new secrets",
        )
    return data


def fill_secrets(path: Path, keys: tuple[str, ...], root: Path | None = None) -> dict[str, str]:
    """Generate values for missing or empty keys only; existing values are never replaced."""
    existing = read_secrets(path, root)
    current = dict(existing or {})
    for key in keys:
        if not current.get(key):
            current[key] = random.token_hex(24)
    if existing is None or current != existing:
        write_private(
            path,
            "# affordml secrets: generated once, never logged. Keep this file private.\n"
            + yaml.safe_dump(current, sort_keys=True),
            root,
        )
    else:
        root_, rel = _split(path, root)
        safefile.tighten(root_, rel, PRIVATE_FILE)
    return current


def ensure_platform_secrets(project: Project) -> Path:
    path = secure_dir(project.secrets_dir, project.root) / "platform.yml"
    fill_secrets(path, PLATFORM_SECRETS, project.root)
    return path


def ensure_kolla_passwords(project: Project, toolchain_bin: Path) -> Path:
    """kolla's passwords.yml, filled by kolla's own kolla-genpwd (it fills empty keys only). kolla-genpwd
    rewrites the file it is given in place, so it works on a fresh private copy that then replaces ours."""
    target = secure_dir(project.secrets_dir, project.root) / "kolla-passwords.yml"
    read_secrets(target, project.root)  # refuses a link, a foreign or broken file before anything else
    current = safefile.read_text(project.root, "secrets/kolla-passwords.yml")
    if current is None:
        current = (kolla_share(toolchain_bin) / "etc_examples" / "kolla" / "passwords.yml").read_text()
    work = Path(tempfile.mkdtemp(prefix=".kolla-genpwd-", dir=project.secrets_dir))
    try:
        copy = work / "passwords.yml"
        write_private(copy, current, work)
        done = subprocess.run(
            [str(toolchain_bin / "kolla-genpwd"), "-p", str(copy)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RunError(
                f"kolla-genpwd failed: {done.stderr.strip().splitlines()[-1:]}",
                "check the kolla-ansible toolchain (delete it to rebuild)",
            )
        filled = safefile.read_text(work, "passwords.yml")
        write_private(target, filled, project.root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def kolla_share(toolchain_bin: Path) -> Path:
    """share/kolla-ansible inside the toolchain's virtualenv."""
    return toolchain_bin.parent / "share" / "kolla-ansible"
