"""What `affordml plan` says about downloads: each artifact, where it will come from, its size where known.

`download_plan` is pure (the lock's artifacts, what the cache holds, the mirror's manifest in, rows out);
`project_download_plan` gathers those inputs from the project's folders without opening any connection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from affordml.errors import ArtifactError


@dataclass(frozen=True)
class DownloadRow:
    name: str
    version: str
    source: str  # cache | mirror | internet | missing
    where: str  # a path or a URL
    size: int | None
    size_note: str | None
    verify: str

    def to_dict(self) -> dict:
        return asdict(self)


def download_plan(
    artifacts, cached: set[str], mirror: Path | None, manifest: dict | None, cache_dir: Path
) -> list[DownloadRow]:
    in_mirror = {e.get("name"): e for e in (manifest or {}).get("artifacts", []) if isinstance(e, dict)}
    rows = []
    for a in artifacts:
        entry = in_mirror.get(a.name)
        size, note = a.size, a.size_note
        if a.name in cached:
            source, where = "cache", str(cache_dir / a.name / a.file)
        elif mirror is not None and entry and entry.get("version") == a.version:
            source, where, size = "mirror", str(mirror / a.name / a.file), entry.get("size", size)
        elif mirror is not None:
            source, where = "missing", f"not in the mirror {mirror}: add it with `affordml bundle {mirror}`"
        else:
            source, where = "internet", f"oci://{a.oci}:{a.version}" if a.oci else a.url
        rows.append(DownloadRow(a.name, a.version, source, where, size, note, a.verify))
    return rows


def totals(rows: list[DownloadRow]) -> dict:
    fetched = [r for r in rows if r.source in ("mirror", "internet")]
    known = [r.size for r in fetched if r.size is not None]
    return {"to_fetch": len(fetched), "known_bytes": sum(known), "unknown_sizes": len(fetched) - len(known)}


def project_download_plan(store) -> tuple[list[DownloadRow], str | None]:
    """Rows for the project's store, and a warning if its mirror cannot be read. No network, no hashing."""
    artifacts = [store.artifact(n) for n in store.names()]
    cached = {a.name for a in artifacts if store.path(a.name).is_file()}
    manifest, warning = None, None
    if store.mirror is not None:
        try:
            manifest = store.mirror_manifest()
        except ArtifactError as exc:
            warning = exc.one_line()
    return download_plan(artifacts, cached, store.mirror, manifest, store.cache_dir), warning
