"""Installs what the control plane runs on: Debian's MariaDB and RabbitMQ, the services' venv, our plugins."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .processes import ServiceFailed, run_checked
from .settings import (
    CONSTRAINTS_FILE,
    DEBIAN_PACKAGES,
    EXTRA_REQUIREMENTS,
    PLUGIN_SOURCE_DIR,
    SERVICE_RELEASES,
    cache_root,
    venv_key,
)

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
APT_OPTIONS = ["-o", "DPkg::Lock::Timeout=600", "-o", "Acquire::Retries=3", "-q", "-y"]

FAKE_GPU_DRIVER_MODULE = "affordml_fake_gpu"
BIND_ALL_MODULE = "affordml_bind_all"
BIND_ALL_DRIVER_NAME = "affordml_bind_all"
BIND_ALL_DIST = "affordml_bind_all-1.0.dist-info"


class PrerequisiteMissing(RuntimeError):
    """This machine cannot host the control plane (not root, no apt, no PyPI); tests should skip."""


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on a file, so that two bring-ups do not build the same thing at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def missing_debian_packages() -> list[str]:
    """The Debian packages we need that dpkg does not list as installed."""
    if not shutil.which("dpkg-query"):
        return list(DEBIAN_PACKAGES)
    missing = []
    for package in DEBIAN_PACKAGES:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
        if "install ok installed" not in status.stdout:
            missing.append(package)
    return missing


@contextmanager
def services_kept_from_starting() -> Iterator[None]:
    """Stop package scripts from starting the services they install (we start our own instances)."""
    if POLICY_RC_D.exists():
        yield
        return
    POLICY_RC_D.write_text("#!/bin/sh\n# written by affordml's test control plane while it installs\nexit 101\n")
    POLICY_RC_D.chmod(0o755)
    try:
        yield
    finally:
        POLICY_RC_D.unlink(missing_ok=True)


def ensure_debian_packages(log: Path) -> None:
    """Install mariadb-server and rabbitmq-server with apt when they are missing."""
    missing = missing_debian_packages()
    if not missing:
        return
    if os.geteuid() != 0:
        raise PrerequisiteMissing(f"needs root to install {' '.join(missing)}")
    if not shutil.which("apt-get"):
        raise PrerequisiteMissing(f"no apt-get to install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", *APT_OPTIONS, "install", *missing]
    with services_kept_from_starting():
        try:
            run_checked("apt-get install", install, log, env=env, timeout_s=900)
        except ServiceFailed:
            try:
                run_checked("apt-get update", ["apt-get", *APT_OPTIONS, "update"], log, env=env, timeout_s=600)
                run_checked("apt-get install", install, log, env=env, timeout_s=900)
            except ServiceFailed as error:
                raise PrerequisiteMissing(f"could not install {' '.join(missing)} with apt: {error}") from error


def venv_dir() -> Path:
    """The services' venv for the pinned versions."""
    return cache_root() / f"venv-{venv_key()}"


def _requirements() -> list[str]:
    """The top-level packages of the venv; constraints.txt pins everything below them."""
    return [f"{name}=={version}" for name, version in SERVICE_RELEASES.items()] + list(EXTRA_REQUIREMENTS)


def _check_package_index(pip: Path, log: Path) -> None:
    """Make sure that pip reaches its package index before the long install."""
    with tempfile.TemporaryDirectory() as scratch:
        probe = [str(pip), "download", "--no-deps", "--dest", scratch, "-c", str(CONSTRAINTS_FILE), "pbr"]
        try:
            run_checked("pip download (index check)", probe, log, timeout_s=240)
        except ServiceFailed as error:
            raise PrerequisiteMissing(f"pip cannot reach its package index (PyPI): {error}") from error


def ensure_venv(log: Path) -> Path:
    """Build the services' venv from PyPI unless a complete one for these pins is cached."""
    venv = venv_dir()
    marker = venv / ".complete"
    if marker.exists():
        return venv
    with file_lock(cache_root() / "venv.lock"):
        if marker.exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        log.unlink(missing_ok=True)
        run_checked("python -m venv", [sys.executable, "-m", "venv", str(venv)], log, timeout_s=300)
        pip = venv / "bin" / "pip"
        _check_package_index(pip, log)
        install = [str(pip), "install", "--disable-pip-version-check", "-c", str(CONSTRAINTS_FILE), *_requirements()]
        try:
            run_checked("pip install of the OpenStack services", install, log, timeout_s=1500)
        except ServiceFailed:
            shutil.rmtree(venv, ignore_errors=True)
            raise
        marker.write_text(" ".join(_requirements()) + "\n")
    return venv


def site_packages(venv: Path) -> Path:
    """The venv's site-packages folder."""
    found = sorted((venv / "lib").glob("python3*/site-packages"))
    if not found:
        raise ServiceFailed(f"no site-packages in {venv}")
    return found[0]


def _write_if_changed(path: Path, content: str) -> None:
    """Write a file only when its content differs (keeps mtimes, and so entry-point caches, stable)."""
    if not path.exists() or path.read_text() != content:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def install_plugins(venv: Path) -> None:
    """Put the fake GPU driver inside nova.virt and register the bind-every-port ML2 driver."""
    packages = site_packages(venv)
    driver_source = (PLUGIN_SOURCE_DIR / "fake_gpu_driver.py").read_text()
    _write_if_changed(packages / "nova" / "virt" / f"{FAKE_GPU_DRIVER_MODULE}.py", driver_source)
    mech_source = (PLUGIN_SOURCE_DIR / "bind_all_mech.py").read_text()
    _write_if_changed(packages / f"{BIND_ALL_MODULE}.py", mech_source)
    dist = packages / BIND_ALL_DIST
    _write_if_changed(dist / "METADATA", "Metadata-Version: 2.1\nName: affordml-bind-all\nVersion: 1.0\n")
    _write_if_changed(dist / "INSTALLER", "affordml-testbed\n")
    _write_if_changed(
        dist / "entry_points.txt",
        f"[neutron.ml2.mechanism_drivers]\n{BIND_ALL_DRIVER_NAME} = {BIND_ALL_MODULE}:BindEveryPortDriver\n",
    )
    _write_if_changed(
        dist / "RECORD",
        f"{BIND_ALL_MODULE}.py,,\n{BIND_ALL_DIST}/METADATA,,\n"
        f"{BIND_ALL_DIST}/entry_points.txt,,\n{BIND_ALL_DIST}/RECORD,,\n",
    )
