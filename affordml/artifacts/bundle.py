"""`affordml bundle DIR`: every artifact of the lock, verified, in DIR with a versioned manifest.

DIR has the cache's layout (`<name>/<file>` plus the upstream checksum file, index or manifest beside it), so
`ArtifactStore(cache, mirror=DIR)` checks a mirror copy exactly as it checks a download. The format is
documented in docs/artifacts.md.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from affordml.artifacts.store import MANIFEST, MANIFEST_FORMAT, MANIFEST_VERSION, ArtifactStore, _write_atomic


def manifest_entry(store: ArtifactStore, name: str, path: Path) -> dict:
    from affordml.artifacts.verify import sha256_file

    artifact = store.artifact(name)
    evidence = artifact.evidence_name
    return {
        "name": name,
        "version": artifact.version,
        "file": f"{name}/{artifact.file}",
        "sha256": sha256_file(path),
        "size": path.stat().st_size,
        "verify": artifact.verify,
        "evidence": f"{name}/{evidence}" if evidence else None,
        "url": artifact.url,
        "checksum_source": artifact.checksum_source,
    }


def bundle(dest: Path, *, lock_name: str, store: ArtifactStore | None = None, say=lambda text: None) -> dict:
    """Fetch every artifact into `dest` (re-runs keep what is already verified there); write the manifest."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    store = store or ArtifactStore(dest)
    entries, started = [], time.monotonic()
    for name in store.names():
        path = store.fetch(name)
        entries.append(manifest_entry(store, name, path))
        say(f"{name} {entries[-1]['version']}: {entries[-1]['size']} bytes, sha256 {entries[-1]['sha256'][:16]}…")
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "lock": lock_name,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "artifacts": entries,
        "images": _existing_images(dest),
    }
    write_manifest(dest, manifest)
    total = sum(e["size"] for e in entries)
    say(f"bundle {dest}: {len(entries)} artifacts, {total} bytes in {time.monotonic() - started:.1f} s")
    return manifest


def write_manifest(dest: Path, manifest: dict) -> None:
    _write_atomic(Path(dest) / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())


def _existing_images(dest: Path) -> list:
    path = dest / MANIFEST
    if not path.is_file():
        return []
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("images", [])
    except (OSError, ValueError, AttributeError):
        return []


def run_bundle(dest: Path, *, images: bool, say, store: ArtifactStore | None = None, which=None) -> dict:
    """The `affordml bundle` command: artifacts, then (with --images) the container images, into one manifest."""
    import shutil

    from affordml.versions import load_lock

    dest = Path(dest).expanduser().resolve()
    manifest = bundle(dest, lock_name=str(load_lock().get("name")), store=store, say=say)
    if images:
        from affordml.artifacts.images import save_images

        store = store or ArtifactStore(dest)
        manifest["images"] = save_images(
            dest, [store.artifact(n) for n in store.names()], which=which or shutil.which, say=say
        )
        write_manifest(dest, manifest)
        say(f"images: {len(manifest['images'])}, {sum(i['size'] for i in manifest['images'])} bytes")
    say(f"use it with: affordml init --mirror {dest}   (or artifacts.mirror in affordml.yaml)")
    return manifest
