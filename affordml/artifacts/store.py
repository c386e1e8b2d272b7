"""ArtifactStore: a verified file in the cache for each artifact of the lock, from the internet or a mirror.

A file is used only after its check passes (see verify.py). Downloads go to `<file>.part`, are checked, then
renamed; a file that fails its check is deleted, never kept under its final name. With a mirror (a folder made
by `affordml bundle`) no network connection is opened at all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from affordml.artifacts.lock import Artifact, lock_artifacts
from affordml.errors import ArtifactError

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "affordml-bundle"
MANIFEST_VERSION = 1
BUNDLE_FIX = "add it with `affordml bundle {mirror}` on a machine with internet, then copy the folder here again"


def default_cache_dir(project_root: Path) -> Path:
    return Path(project_root) / "cache" / "artifacts"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


class ArtifactStore:
    """fetch(name) -> a verified file in `cache_dir`; `mirror` (a bundle folder) replaces the internet."""

    def __init__(
        self,
        cache_dir: Path,
        mirror: Path | None = None,
        *,
        artifacts: dict[str, Artifact] | None = None,
        reporter=None,
        policy=None,
        project_root: Path | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.project_root = Path(project_root) if project_root is not None else None
        self.mirror = Path(mirror) if mirror is not None else None
        self._artifacts = artifacts if artifacts is not None else lock_artifacts()
        self._reporter = reporter
        self._policy = policy
        self._manifest: dict | None = None

    # ------------------------------------------------------------------ public
    def names(self) -> list[str]:
        return list(self._artifacts)

    def artifact(self, name: str) -> Artifact:
        try:
            return self._artifacts[name]
        except KeyError:
            raise ArtifactError(
                f"no artifact named {name!r} in the version lock", f"use one of: {', '.join(self._artifacts)}"
            ) from None

    def path(self, name: str) -> Path:
        """Where the verified file lives in the cache (it may not be there yet)."""
        artifact = self.artifact(name)
        return self._dir(artifact) / artifact.file

    def cached(self, name: str) -> Path | None:
        """The cached file if present and still passing its check; no network, nothing downloaded."""
        artifact = self.artifact(name)
        final = self._dir(artifact) / artifact.file
        if not final.is_file() or final.is_symlink():
            return None
        evidence = self._local_evidence(artifact, self._dir(artifact))
        if artifact.evidence_name and evidence is None:
            return None
        try:
            self._check(artifact, final, evidence, origin=str(final))
        except ArtifactError:
            final.unlink(missing_ok=True)  # damaged or stale: never used, fetched again
            return None
        return final

    def fetch(self, name: str) -> Path:
        """The verified file in the cache: a cache hit opens no connection; else mirror or internet."""
        artifact = self.artifact(name)
        hit = self.cached(name)
        if hit is not None:
            return hit
        folder = self._dir(artifact)
        self._make_folder(folder, name)
        part = folder / f"{artifact.file}.part"
        if part.is_symlink():
            part.unlink()
        if self.mirror is not None:
            evidence, origin = self._from_mirror(artifact, part)
            self._check(artifact, part, evidence, origin=origin, cleanup=part)
        else:
            evidence, origin = self._download_checked(artifact, part)
        if evidence is not None:
            _write_atomic(folder / artifact.evidence_name, evidence)
        final = folder / artifact.file
        os.replace(part, final)
        return final

    # ------------------------------------------------------------------ sources
    def _download_checked(self, artifact: Artifact, part: Path) -> tuple[bytes | None, str]:
        """Download and check; a .part left by an earlier run that fails the check (upstream published a new
        file under the same name meanwhile, as `current/` images do) is thrown away and fetched once whole."""
        resumed = part.is_file() and part.stat().st_size > 0
        evidence, origin = self._from_internet(artifact, part)
        try:
            self._check(artifact, part, evidence, origin=origin, cleanup=part)
        except ArtifactError:
            if not resumed:
                raise
            evidence, origin = self._from_internet(artifact, part)
            self._check(artifact, part, evidence, origin=origin, cleanup=part)
        return evidence, origin

    def _from_internet(self, artifact: Artifact, part: Path) -> tuple[bytes | None, str]:
        from affordml.artifacts.download import Policy, download, fetch_bytes

        policy = self._policy or Policy()
        url, headers, evidence = artifact.url, {}, None
        if artifact.verify == "sha256sums":
            evidence = fetch_bytes(artifact.checksum_url, name=artifact.name, policy=policy)
        elif artifact.verify == "chart-index":
            evidence = fetch_bytes(artifact.index_url, name=artifact.name, policy=policy)
        elif artifact.verify == "oci":
            from affordml.artifacts.oci import blob_url, oci_manifest

            evidence, headers = oci_manifest(artifact.url, name=artifact.name, policy=policy)
            url = blob_url(artifact.url, self._expected_sha256(artifact, evidence, artifact.url))
        download(url, part, name=artifact.name, reporter=self._reporter_now(), policy=policy, headers=headers)
        return evidence, url

    def _from_mirror(self, artifact: Artifact, part: Path) -> tuple[bytes | None, str]:
        import shutil

        entry = self.mirror_entry(artifact.name)
        folder = self.mirror / artifact.name
        source = folder / artifact.file
        if entry is None or not source.is_file():
            raise ArtifactError(
                f"{artifact.name} {artifact.version} is not in the mirror {self.mirror} (no {source})",
                BUNDLE_FIX.format(mirror=self.mirror),
            )
        if entry.get("version") != artifact.version:
            raise ArtifactError(
                f"the mirror {self.mirror} has {artifact.name} {entry.get('version')}, "
                f"the lock wants {artifact.version}",
                BUNDLE_FIX.format(mirror=self.mirror),
            )
        evidence = self._local_evidence(artifact, folder)
        if artifact.evidence_name and evidence is None:
            raise ArtifactError(
                f"{artifact.name}: the mirror {self.mirror} lacks {folder / artifact.evidence_name}, so the file "
                "cannot be checked",
                BUNDLE_FIX.format(mirror=self.mirror),
            )
        reporter = self._reporter_now()
        reporter.start(artifact.name, str(source), source.stat().st_size, 0)
        part.unlink(missing_ok=True)
        shutil.copyfile(source, part)
        reporter.advance(part.stat().st_size)
        reporter.finish()
        if entry.get("sha256") and entry["sha256"] != _sha256(part):
            part.unlink(missing_ok=True)
            raise ArtifactError(
                f"{artifact.name}: {source} does not match the sha256 in {self.mirror / MANIFEST}; it was not used",
                f"the mirror copy is damaged: {BUNDLE_FIX.format(mirror=self.mirror)}",
            )
        return evidence, str(source)

    def mirror_entry(self, name: str) -> dict | None:
        manifest = self.mirror_manifest()
        return next((e for e in manifest.get("artifacts", []) if e.get("name") == name), None)

    def mirror_manifest(self) -> dict:
        if self._manifest is None:
            self._manifest = read_manifest(self.mirror)
        return self._manifest

    # ------------------------------------------------------------------ checks
    def _check(self, artifact: Artifact, path: Path, evidence: bytes | None, *, origin: str, cleanup=None) -> None:
        import tarfile

        from affordml.artifacts.verify import EvidenceError, git_tree_of_tarball

        try:
            if artifact.verify == "git-tree":
                tree = git_tree_of_tarball(path)
                if tree != artifact.git_tree:
                    self._mismatch(artifact, origin, f"git tree {tree}", f"git tree {artifact.git_tree}", cleanup)
            expected = self._expected_sha256(artifact, evidence, origin)
            if expected is not None:
                got = _sha256(path)
                if got != expected:
                    self._mismatch(artifact, origin, f"sha256 {got}", f"sha256 {expected}", cleanup)
        except (EvidenceError, OSError, EOFError, tarfile.TarError) as exc:
            if cleanup is not None:
                cleanup.unlink(missing_ok=True)
            raise ArtifactError(
                f"{artifact.name}: cannot check the file from {origin}: {exc}; it was deleted, not used",
                "fetch it again; if this repeats, the upstream files changed: report it",
            ) from None

    def _expected_sha256(self, artifact: Artifact, evidence: bytes | None, origin: str) -> str | None:
        from affordml.artifacts.verify import sha256_from_chart_index, sha256_from_oci_manifest, sha256_from_sums

        found = None
        text = evidence.decode("utf-8", "replace") if evidence is not None else None
        if artifact.verify == "sha256sums":
            found = sha256_from_sums(text, artifact.upstream_name)
        elif artifact.verify == "chart-index":
            found = sha256_from_chart_index(text, artifact.chart, artifact.version)
        elif artifact.verify == "oci":
            found = sha256_from_oci_manifest(text)
        if artifact.sha256 and found and found != artifact.sha256:
            raise ArtifactError(
                f"{artifact.name}: upstream now says sha256 {found} but the lock pins {artifact.sha256}; nothing used",
                "upstream re-published this version: report it; do not override the lock",
            )
        return artifact.sha256 or found

    @staticmethod
    def _mismatch(artifact: Artifact, origin: str, got: str, want: str, cleanup) -> None:
        if cleanup is not None:
            cleanup.unlink(missing_ok=True)
        raise ArtifactError(
            f"{artifact.name}: the file from {origin} has {got}, expected {want} ({artifact.verify}); "
            "it was deleted, not used",
            "fetch it again; if it repeats, something between you and upstream alters it (proxy?) or upstream "
            "changed the file: report it",
        )

    # ------------------------------------------------------------------ helpers
    def _make_folder(self, folder: Path, name: str) -> None:
        """Inside the project folder: made one component at a time without following a link (safefile);
        elsewhere (a cache_dir of the user's choice): made as asked, the artifact's own folder never a link."""
        root = self.project_root
        if root is not None and folder.is_relative_to(root):
            from affordml.safefile import ensure_folder

            ensure_folder(root, folder.relative_to(root))
            return
        folder.mkdir(parents=True, exist_ok=True)
        if folder.is_symlink():
            raise ArtifactError(f"{name}: cache folder {folder} is a symlink", f"remove {folder}")

    def _dir(self, artifact: Artifact) -> Path:
        return self.cache_dir / artifact.name

    @staticmethod
    def _local_evidence(artifact: Artifact, folder: Path) -> bytes | None:
        if not artifact.evidence_name:
            return None
        path = folder / artifact.evidence_name
        return path.read_bytes() if path.is_file() else None

    def _reporter_now(self):
        if self._reporter is None:
            from affordml.artifacts.progress import default_reporter

            self._reporter = default_reporter()
        return self._reporter


def _sha256(path: Path) -> str:
    from affordml.artifacts.verify import sha256_file

    return sha256_file(path)


def read_manifest(mirror: Path) -> dict:
    path = Path(mirror) / MANIFEST
    fix = f"point --mirror at a folder made by `affordml bundle DIR` (it holds {MANIFEST})"
    if not path.is_file():
        raise ArtifactError(f"{mirror} is not an affordml bundle: no {MANIFEST}", fix)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} cannot be read ({exc})", fix) from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ArtifactError(f"{path} is not an affordml bundle manifest", fix)
    if data.get("format_version") != MANIFEST_VERSION:
        raise ArtifactError(
            f"{path} has format_version {data.get('format_version')}, this affordml reads {MANIFEST_VERSION}",
            f"make the bundle again with this affordml: `affordml bundle {mirror}`",
        )
    return data
