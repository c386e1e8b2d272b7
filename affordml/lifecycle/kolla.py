"""kolla-ansible's password merge before an OpenStack upgrade (operating-kolla.rst, "Preparation"): the new
release's passwords.yml filled by kolla-genpwd, merged with the project's by kolla-mergepwd (old values kept),
on private copies; the result replaces secrets/kolla-passwords.yml (0600)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from affordml import safefile
from affordml.errors import RunError
from affordml.project import Project
from affordml.secrets import kolla_share, read_secrets, secure_dir, write_private

PASSWORDS = "secrets/kolla-passwords.yml"


def merge_kolla_passwords(project: Project, toolchain_bin: Path) -> Path:
    target = secure_dir(project.secrets_dir, project.root) / "kolla-passwords.yml"
    read_secrets(target, project.root)  # refuses a link, a foreign or broken file before anything else
    old = safefile.read_text(project.root, PASSWORDS)
    if old is None:
        raise RunError(
            f"{target} is missing: there are no passwords of the installed OpenStack to carry over",
            "restore it from the newest backup (`affordml backup --list`), then run `affordml upgrade` again",
        )
    sample = (kolla_share(toolchain_bin) / "etc_examples" / "kolla" / "passwords.yml").read_text()
    work = Path(tempfile.mkdtemp(prefix=".kolla-mergepwd-", dir=project.secrets_dir))
    try:
        write_private(work / "old.yml", old, work)
        write_private(work / "new.yml", sample, work)
        _tool(toolchain_bin, "kolla-genpwd", "-p", str(work / "new.yml"))
        _tool(
            toolchain_bin,
            "kolla-mergepwd",
            "--old",
            str(work / "old.yml"),
            "--new",
            str(work / "new.yml"),
            "--final",
            str(work / "final.yml"),
        )
        write_private(target, safefile.read_text(work, "final.yml"), project.root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _tool(toolchain_bin: Path, name: str, *args: str) -> None:
    done = subprocess.run([str(toolchain_bin / name), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RunError(
            f"{name} failed: {done.stderr.strip().splitlines()[-1:]}",
            "check the kolla-ansible toolchain (delete it to rebuild), then run `affordml upgrade` again",
        )
