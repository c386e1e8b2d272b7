"""The ArtifactStore a project uses: its cache folder and, if any, its mirror (--mirror beats the config key)."""

from __future__ import annotations

from pathlib import Path

from affordml.artifacts.store import ArtifactStore, default_cache_dir


def _resolve(project_root: Path, value: str | Path | None) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(project_root) / path


def project_store(project_root: Path, config=None, mirror: Path | None = None, **kwargs) -> ArtifactStore:
    settings = getattr(config, "artifacts", None)
    cache = _resolve(project_root, getattr(settings, "cache_dir", None)) or default_cache_dir(project_root)
    mirror = _resolve(project_root, mirror) or _resolve(project_root, getattr(settings, "mirror", None))
    return ArtifactStore(cache, mirror, project_root=Path(project_root), **kwargs)
