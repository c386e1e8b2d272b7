"""How a downloaded file is checked: its sha256 against a pin or an upstream checksum file, or its git tree."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

CHUNK = 1024 * 1024


class EvidenceError(ValueError):
    """The checksum file, index or manifest does not name this artifact (message: what is missing)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_from_sums(text: str, file_name: str) -> str:
    """The checksum of file_name in a `sha256sum` style file ("HEX  name", "HEX *name", or a lone "HEX")."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    for parts in lines:
        if len(parts) >= 2 and parts[1].lstrip("*") == file_name:
            return _hex(parts[0])
    if len(lines) == 1 and len(lines[0]) == 1:
        return _hex(lines[0][0])
    raise EvidenceError(f"the checksum file has no line for {file_name}")


def sha256_from_chart_index(text: str, chart: str, version: str) -> str:
    import yaml

    index = yaml.safe_load(text)
    entries = (index or {}).get("entries", {}).get(chart) if isinstance(index, dict) else None
    for entry in entries or []:
        if isinstance(entry, dict) and str(entry.get("version")) == version and entry.get("digest"):
            return _hex(str(entry["digest"]))
    raise EvidenceError(f"the chart index has no digest for {chart} {version}")


HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def sha256_from_oci_manifest(text: str) -> str:
    manifest = json.loads(text)
    for layer in manifest.get("layers", []):
        if layer.get("mediaType") == HELM_CHART_LAYER:
            algorithm, _, value = str(layer.get("digest", "")).partition(":")
            if algorithm == "sha256":
                return _hex(value)
    raise EvidenceError("the OCI manifest has no helm chart layer with a sha256 digest")


def _hex(value: str) -> str:
    value = value.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise EvidenceError(f"{value[:80]!r} is not a sha256")
    return value


def git_tree_of_tarball(path: Path) -> str:
    """The git tree hash of a `git archive` tarball's content below its one top folder (what `git rev-parse
    TAG^{tree}` gives for the archived commit). Only regular files, executables and symlinks, as git stores them."""
    import tarfile

    root: dict = {}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            parts = member.name.strip("/").split("/")[1:]
            if not parts or not parts[-1] or member.isdir():
                continue
            if member.issym():
                mode, data = b"120000", member.linkname.encode()
            elif member.isfile():
                mode = b"100755" if member.mode & 0o100 else b"100644"
                data = tar.extractfile(member).read()
            else:
                raise EvidenceError(f"{member.name} is neither a file nor a symlink")
            node = root
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = (mode, _git_object(b"blob", data))
    return _tree_hash(root).hex()


def _git_object(kind: bytes, data: bytes) -> bytes:
    return hashlib.sha1(kind + b" " + str(len(data)).encode() + b"\0" + data, usedforsecurity=False).digest()


def _tree_hash(node: dict) -> bytes:
    entries = []
    for name, value in node.items():
        if isinstance(value, dict):
            entries.append((name.encode() + b"/", b"40000", name.encode(), _tree_hash(value)))
        else:
            entries.append((name.encode(), value[0], name.encode(), value[1]))
    body = b"".join(mode + b" " + name + b"\0" + sha for _key, mode, name, sha in sorted(entries))
    return _git_object(b"tree", body)
