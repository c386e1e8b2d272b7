"""Base root filesystem for test hosts: a Debian trixie (13) built once with debootstrap and cached.

Trixie, because kolla-ansible 2026.1 supports Debian 13 and Ubuntu 24.04 as hosts (its support matrix), and
the test hosts run kolla's own prechecks.

The image is cached as a tarball under ``~/.cache/affordml-testbed/`` keyed by a hash of the package list
and of the recipe, and extracted once next to it; hosts mount an overlay over the extracted tree.
Test hosts have no internet, so every package an Ansible role installs must be listed in BASE_PACKAGES.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"

# Bump when the recipe below changes in a way that should rebuild cached images.
RECIPE_VERSION = "5"

# Every package our Ansible roles install on hosts. Extend it (append) before the first testbed starts.
BASE_PACKAGES: list[str] = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "iproute2",
    "sudo",
    "procps",
    "kmod",
    "grub-common",
    "initramfs-tools",
    "pciutils",
    "bridge-utils",
    "ca-certificates",
    "gnupg",
    "docker.io",
    "docker-cli",  # Debian ships the docker command apart from docker.io (a Recommends apt installs by default)
    "python3-docker",
    "lsb-release",
    "cpu-checker",
    "nftables",
    "python3-dbus",
    "git",
    "iputils-ping",
    "tzdata",
    "ufw",
]

# Units that have no use in a container and only slow the boot down, or touch the network.
MASKED_UNITS = [
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "systemd-networkd-wait-online.service",
    "getty@tty1.service",
]

# Installed but not started at boot: roles under test start them when they need them.
DISABLED_UNITS = ["docker.service", "docker.socket", "containerd.service"]

SSHD_DROP_IN = """\
# affordml test host
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
HostKey /etc/ssh/ssh_host_ed25519_key
"""

POLICY_RC_D = "#!/bin/sh\nexit 101\n"

# Commands the test bed runs on this machine, and the Debian packages that provide them.
HOST_TOOLS = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "zstd": "zstd",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}


class ImageError(RuntimeError):
    """The base image could not be built or unpacked."""


class HostToolsUnavailable(ImageError):
    """A command the test bed needs (debootstrap, systemd-nspawn, ...) is missing and cannot be installed."""


def cache_dir() -> Path:
    """Directory that holds cached images (AFFORDML_TESTBED_CACHE overrides it)."""
    override = os.environ.get("AFFORDML_TESTBED_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "affordml-testbed"


def image_key(packages: Iterable[str]) -> str:
    """Short hash naming the image built from these packages with the current recipe."""
    text = "\n".join([SUITE, MIRROR, RECIPE_VERSION, *sorted(set(packages))])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def missing_host_tools() -> list[str]:
    """Debian packages to install so that every command in HOST_TOOLS is available."""
    return sorted({package for tool, package in HOST_TOOLS.items() if shutil.which(tool) is None})


def ensure_host_tools() -> None:
    """Install the packages of missing HOST_TOOLS (debootstrap, systemd-container, ...) with apt-get."""
    missing = missing_host_tools()
    if not missing:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise HostToolsUnavailable(f"missing {', '.join(missing)} and cannot apt-get install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *missing]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise HostToolsUnavailable(f"{' '.join(command)} failed: {result.stderr.strip()[-2000:]}")
    if missing_host_tools():
        raise HostToolsUnavailable(f"still missing after install: {', '.join(missing_host_tools())}")


def ensure_rootfs(packages: Iterable[str] | None = None) -> Path:
    """Return an extracted root filesystem with the packages, building and caching it if needed."""
    wanted = list(BASE_PACKAGES if packages is None else packages)
    key = image_key(wanted)
    rootfs = cache_dir() / key / "rootfs"
    if (rootfs.parent / "complete").exists():
        return rootfs
    ensure_host_tools()
    with _cache_lock(key):
        if not (rootfs.parent / "complete").exists():
            tarball = ensure_tarball(wanted)
            _extract(tarball, rootfs)
    return rootfs


def tarball_path(key: str) -> Path:
    """Where the image tarball for this key lives."""
    return cache_dir() / f"rootfs-{SUITE}-{key}.tar.zst"


def ensure_tarball(packages: list[str]) -> Path:
    """Return the cached image tarball for the packages, building it when absent."""
    tarball = tarball_path(image_key(packages))
    if not tarball.exists():
        _build_tarball(packages, tarball)
    return tarball


@contextlib.contextmanager
def _cache_lock(key: str) -> Iterator[None]:
    """Serialise builds of one image between concurrent test runs."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(command: list[str], what: str, timeout: float = 1800) -> None:
    """Run a build step, raising ImageError with its output tail on failure."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip()[-3000:]
        raise ImageError(f"{what} failed ({result.returncode}): {tail}")


def _build_tarball(packages: list[str], tarball: Path) -> None:
    """Debootstrap, install the packages, prepare the tree for booting in nspawn, and pack it."""
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=tarball.parent) as build:
        root = Path(build) / "rootfs"
        _run(["debootstrap", "--variant=minbase", SUITE, str(root), MIRROR], "debootstrap")
        _install_packages(root, packages)
        _prepare_for_boot(root)
        partial = tarball.with_suffix(".partial")
        _tar(root, "zstd -T0 -3", ["-cf", str(partial), "."], "packing the image")
        partial.rename(tarball)


def _tar(root: Path, zstd: str, args: list[str], what: str) -> None:
    """tar in root, zstd-compressed, keeping numeric owners and every extended attribute (file capabilities)."""
    _run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-I", zstd, "-C", str(root), *args], what)


def _in_root(root: Path, *command: str) -> list[str]:
    """A command line that runs inside the root tree, sharing this machine's network (for apt only)."""
    return [
        "systemd-nspawn",
        "-q",
        "--register=no",
        "--keep-unit",
        "--as-pid2",
        "-D",
        str(root),
        "--setenv=DEBIAN_FRONTEND=noninteractive",
        *command,
    ]


def _install_packages(root: Path, packages: list[str]) -> None:
    """Install the packages with apt inside the tree, with service starts blocked."""
    (root / "etc/apt/sources.list").write_text(_sources_list())
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text(POLICY_RC_D)
    policy.chmod(0o755)
    _run(_in_root(root, "apt-get", "update", "-q"), "apt-get update in the image")
    _run(_in_root(root, "apt-get", "-y", "-q", "dist-upgrade"), "apt-get dist-upgrade in the image")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    _run(_in_root(root, *install), "installing the base packages")
    _run(_in_root(root, "apt-get", "clean"), "apt-get clean")
    policy.unlink()


def _sources_list() -> str:
    """Apt sources of the image (kept so Ansible's apt module sees candidates for installed packages)."""
    return (
        f"deb {MIRROR} {SUITE} main\ndeb {MIRROR} {SUITE}-updates main\ndeb {SECURITY_MIRROR} {SUITE}-security main\n"
    )


def _prepare_for_boot(root: Path) -> None:
    """Configure sshd, drop per-machine identity, and quiet units that do nothing in a container."""
    (root / "etc/ssh/sshd_config.d/affordml-testbed.conf").write_text(SSHD_DROP_IN)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    (root / "etc/resolv.conf").unlink(missing_ok=True)
    (root / "etc/resolv.conf").write_text("# test host: no DNS\n")
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    for unit in MASKED_UNITS:
        _mask_unit(root, unit)
    for unit in DISABLED_UNITS:
        _disable_unit(root, unit)


def _mask_unit(root: Path, unit: str) -> None:
    """Mask a unit by linking it to /dev/null in /etc/systemd/system."""
    link = root / "etc/systemd/system" / unit
    link.unlink(missing_ok=True)
    link.symlink_to("/dev/null")


def _disable_unit(root: Path, unit: str) -> None:
    """Remove the unit's enablement links under /etc/systemd/system."""
    for wants in (root / "etc/systemd/system").iterdir():
        link = wants / unit
        if wants.is_dir() and link.is_symlink():
            link.unlink()


def _extract(tarball: Path, rootfs: Path) -> None:
    """Unpack the tarball into rootfs and mark the extraction complete."""
    if rootfs.exists():
        shutil.rmtree(rootfs)
    rootfs.mkdir(parents=True)
    _tar(rootfs, "zstd -T0", ["-xf", str(tarball)], "unpacking the image")
    (rootfs.parent / "complete").write_text(tarball.name + "\n")
