"""The artifact list of the version lock as plain data (pure; no I/O beyond the packaged lock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from affordml.errors import ConfigError

VERIFY_KINDS = ("sha256", "sha256sums", "chart-index", "oci", "git-tree")
SHA256_HEX = frozenset("0123456789abcdef")
WHERE = "affordml/versions.yaml: artifacts"


@dataclass(frozen=True)
class Artifact:
    name: str
    component: str
    version: str
    url: str
    file: str
    verify: str
    checksum_source: str
    sha256: str | None = None
    size: int | None = None
    size_note: str | None = None
    checksum_url: str | None = None
    index_url: str | None = None
    chart: str | None = None
    oci: str | None = None
    git_tree: str | None = None
    images: tuple[str, ...] = field(default_factory=tuple)

    @property
    def upstream_name(self) -> str:
        """The file name the upstream checksum file uses (the URL's last part)."""
        return PurePosixPath(self.url).name

    @property
    def evidence_name(self) -> str | None:
        """The file kept beside the artifact that says which checksum it must have."""
        return {
            "sha256sums": PurePosixPath(self.checksum_url or "").name or None,
            "chart-index": "index.yaml",
            "oci": "oci-manifest.json",
        }.get(self.verify)


def _expand(text: str | None, version: str) -> str | None:
    return None if text is None else text.replace("{version}", version)


def _checked_sha256(name: str, value) -> str | None:
    if value is None:
        return None
    text = str(value).lower()
    if len(text) != 64 or not set(text) <= SHA256_HEX:
        raise ConfigError(f"{WHERE} {name}: sha256 is not 64 hex digits", "fix the lock")
    return text


def artifact_from_entry(entry: dict) -> Artifact:
    name = str(entry.get("name", "?"))
    version = str(entry["version"])
    verify = entry.get("verify")
    if verify not in VERIFY_KINDS:
        raise ConfigError(
            f"affordml/versions.yaml: artifacts {name}: verify must be one of {VERIFY_KINDS}", "fix the lock"
        )
    needs = {"sha256": "sha256", "sha256sums": "checksum_url", "chart-index": "index_url", "git-tree": "git_tree"}
    if verify in needs and not entry.get(needs[verify]) or verify == "chart-index" and not entry.get("chart"):
        raise ConfigError(
            f"affordml/versions.yaml: artifacts {name}: verify {verify} needs {needs[verify]}", "fix the lock"
        )
    return Artifact(
        name=name,
        component=str(entry["component"]),
        version=version,
        url=_expand(entry["url"], version),
        file=_expand(entry["file"], version),
        verify=verify,
        checksum_source=" ".join(str(entry["checksum_source"]).split()),
        sha256=_checked_sha256(name, entry.get("sha256")),
        size=entry.get("size"),
        size_note=entry.get("size_note"),
        checksum_url=_expand(entry.get("checksum_url"), version),
        index_url=entry.get("index_url"),
        chart=entry.get("chart"),
        oci=entry.get("oci"),
        git_tree=entry.get("git_tree"),
        images=tuple(entry.get("images") or ()),
    )


def lock_artifacts(lock: dict | None = None) -> dict[str, Artifact]:
    """Every artifact of the lock by name, in lock order."""
    if lock is None:
        from affordml.versions import load_lock

        lock = load_lock()
    return {a.name: a for a in (artifact_from_entry(e) for e in lock.get("artifacts") or [])}
