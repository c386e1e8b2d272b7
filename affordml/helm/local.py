"""The helm binary and chart folders, unpacked safely from verified archives into the project's cache."""

from __future__ import annotations

from pathlib import Path

from affordml.artifacts.verify import sha256_file
from affordml.errors import RunError


def _unpacked(archive: Path, cache_dir: Path, prefix: str) -> Path:
    from affordml.artifacts import unpack_tarball

    dest = cache_dir / f"{prefix}-{sha256_file(archive)[:12]}"
    if not dest.is_dir():
        cache_dir.mkdir(parents=True, exist_ok=True)
        unpack_tarball(archive, dest)
    return dest


def helm_binary(tarball: Path, cache_dir: Path) -> Path:
    """helm from get.helm.sh's tarball (linux-amd64/helm), unpacked once per tarball digest."""
    folder = _unpacked(tarball, cache_dir, "helm")
    found = [p for p in folder.glob("*/helm") if p.is_file() and not p.is_symlink()]
    if len(found) != 1:
        raise RunError(
            f"{tarball.name} holds no single */helm executable (found {len(found)})",
            f"delete {folder} and {tarball} so that affordml fetches and unpacks helm again",
        )
    return found[0]


def chart_dir(archive: Path, subdir: str, cache_dir: Path) -> Path:
    """A chart inside a chart archive (e.g. kube-prometheus-stack's charts/crds), as a folder helm can install."""
    folder = _unpacked(archive, cache_dir, archive.name.removesuffix(".tgz"))
    tops = [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()]
    target = (tops[0] / subdir) if len(tops) == 1 else folder / subdir
    if not target.resolve().is_relative_to(folder.resolve()) or not (target / "Chart.yaml").is_file():
        raise RunError(
            f"{archive.name} has no chart at {subdir}",
            "the chart archive does not match the version lock: delete it from the cache and run again",
        )
    return target


def chart_folder(archive: Path, folder: str, cache_dir: Path) -> Path:
    """A folder inside the chart of an archive (e.g. crds, charts/node-feature-discovery/crds). A subchart packed as
    charts/<name>-<version>.tgz (how `helm dependency build` leaves it) is unpacked too."""
    root = chart_dir(archive, "", cache_dir)
    target = root / folder
    parts = Path(folder).parts
    if not target.is_dir() and len(parts) > 2 and parts[0] == "charts":
        packed = sorted((root / "charts").glob(f"{parts[1]}-*.tgz"))
        if len(packed) == 1:
            root = chart_dir(packed[0], "", cache_dir)
            target = root / Path(*parts[2:])
    if not target.resolve().is_relative_to(root.resolve()) or not target.is_dir() or target.is_symlink():
        raise RunError(
            f"{archive.name} has no folder {folder}",
            "the chart archive does not match the version lock: delete it from the cache and run again",
        )
    return target
