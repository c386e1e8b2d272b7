"""Each upstream engine pins its own ansible-core, so each gets its own virtualenv (a toolchain)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

from affordml.errors import RunError

READY_MARK = ".affordml-ready"


@dataclass(frozen=True)
class Toolchain:
    name: str
    requirements: tuple[str, ...]

    @property
    def key(self) -> str:
        digest = hashlib.sha256("\n".join(self.requirements).encode()).hexdigest()[:10]
        return f"{self.name}-{digest}"


def cache_root() -> Path:
    return Path(os.environ.get("AFFORDML_TOOLCHAINS") or Path.home() / ".cache" / "affordml" / "toolchains")


def kolla_toolchain(lock: dict) -> Toolchain:
    entry = lock["kolla_ansible"]
    return Toolchain("kolla-ansible", (f"kolla-ansible=={entry['version']}", f"ansible-core{entry['ansible_core']}"))


def own_bin() -> Path:
    """affordml's own ansible-playbook lives beside the Python that runs affordml."""
    return Path(sys.executable).parent


def toolchain_dir(tc: Toolchain) -> Path:
    return cache_root() / tc.key


def ensure(tc: Toolchain, log) -> Path:
    """The toolchain's bin/ folder, creating the virtualenv once (pip from PyPI)."""
    root = toolchain_dir(tc)
    if (root / READY_MARK).exists():
        return root / "bin"
    log(f"creating the {tc.name} toolchain in {root} ({', '.join(tc.requirements)}); this takes a few minutes once")
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    done = subprocess.run(
        [
            str(root / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *tc.requirements,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-2:])
        raise RunError(
            f"could not install the {tc.name} toolchain: {tail}",
            "check the internet connection to PyPI, then run again",
        )
    (root / READY_MARK).write_text("\n".join(tc.requirements) + "\n")
    return root / "bin"
