"""helm command lines (pure). The kubeconfig is passed as a path; no value or secret ever goes on the command line:
values reach helm only as files."""

from __future__ import annotations

from pathlib import Path

from affordml.helm.keep import PLUGIN as KEEP_PLUGIN
from affordml.helm.release import Release


def _common(helm: Path, kubeconfig: Path, release: Release) -> list[str]:
    return [str(helm), "--kubeconfig", str(kubeconfig), "--namespace", release.namespace]


def upgrade_install(
    helm: Path, kubeconfig: Path, release: Release, chart: Path, values_files: list[Path], description: str
) -> list[str]:
    argv = [*_common(helm, kubeconfig, release), "upgrade", "--install", release.name, str(chart)]
    argv += ["--create-namespace", "--reset-values", "--wait=watcher", f"--timeout={release.timeout_s}s"]
    argv += ["--description", description]
    if release.no_hooks:
        argv.append("--no-hooks")
    if release.keep_crds:
        argv += ["--post-renderer", KEEP_PLUGIN]
    for path in values_files:
        argv += ["--values", str(path)]
    return argv


def history(helm: Path, kubeconfig: Path, release: Release) -> list[str]:
    return [*_common(helm, kubeconfig, release), "history", release.name, "--max", "20", "--output", "json"]


def get_values(helm: Path, kubeconfig: Path, release: Release) -> list[str]:
    return [*_common(helm, kubeconfig, release), "get", "values", release.name, "--output", "json"]


def get_manifest(helm: Path, kubeconfig: Path, release: Release) -> list[str]:
    return [*_common(helm, kubeconfig, release), "get", "manifest", release.name]


def rollback(helm: Path, kubeconfig: Path, release: Release, revision: int) -> list[str]:
    argv = [*_common(helm, kubeconfig, release), "rollback", release.name, str(revision)]
    return argv + ["--wait=watcher", f"--timeout={release.timeout_s}s"]


def uninstall(helm: Path, kubeconfig: Path, release: Release, timeout_s: int | None = None) -> list[str]:
    argv = [*_common(helm, kubeconfig, release), "uninstall", release.name]
    argv += ["--wait=watcher"] if release.wait_on_removal else []
    return argv + [f"--timeout={timeout_s or release.timeout_s}s"]
