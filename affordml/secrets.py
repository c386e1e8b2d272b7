"""Secrets: generated once, filled in only where empty, kept in 0600 files under the project's secrets/.
They reach Ansible as vars files (-e @file) and tasks that use them set no_log; never environment or argv."""

from __future__ import annotations

import os
import secrets as random
import subprocess
from pathlib import Path

import yaml

from affordml.errors import RunError
from affordml.project import Project

PLATFORM_SECRETS = (
    "affordml_grafana_admin_password",
    "affordml_jupyterhub_cookie_secret",
    "affordml_jupyterhub_proxy_token",
)


def secure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Create or replace a file that only its owner can read, without a moment of wider permissions."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def fill_secrets(path: Path, keys: tuple[str, ...]) -> dict[str, str]:
    """Generate values for missing or empty keys only; existing values are never replaced."""
    current = yaml.safe_load(path.read_text()) if path.exists() else {}
    current = current or {}
    changed = False
    for key in keys:
        if not current.get(key):
            current[key] = random.token_hex(24)
            changed = True
    if changed or not path.exists():
        write_private(
            path,
            "# affordml secrets: generated once, never logged. Keep this file private.\n"
            + yaml.safe_dump(current, sort_keys=True),
        )
    os.chmod(path, 0o600)
    return current


def ensure_platform_secrets(project: Project) -> Path:
    path = secure_dir(project.secrets_dir) / "platform.yml"
    fill_secrets(path, PLATFORM_SECRETS)
    return path


def ensure_kolla_passwords(project: Project, toolchain_bin: Path) -> Path:
    """kolla's passwords.yml, filled by kolla's own kolla-genpwd (it fills empty keys only)."""
    target = secure_dir(project.secrets_dir) / "kolla-passwords.yml"
    if not target.exists():
        template = kolla_share(toolchain_bin) / "etc_examples" / "kolla" / "passwords.yml"
        write_private(target, template.read_text())
    done = subprocess.run(
        [str(toolchain_bin / "kolla-genpwd"), "-p", str(target)], capture_output=True, text=True, check=False
    )
    os.chmod(target, 0o600)
    if done.returncode != 0:
        raise RunError(
            f"kolla-genpwd failed: {done.stderr.strip().splitlines()[-1:]}",
            "check the kolla-ansible toolchain (delete it to rebuild)",
        )
    return target


def kolla_share(toolchain_bin: Path) -> Path:
    """share/kolla-ansible inside the toolchain's virtualenv."""
    return toolchain_bin.parent / "share" / "kolla-ansible"
