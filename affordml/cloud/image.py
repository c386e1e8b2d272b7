"""The guest image: a local file, or the lock's Ubuntu cloud image downloaded once and checked against SHA256SUMS."""

from __future__ import annotations

import hashlib
import urllib.parse
import urllib.request
from pathlib import Path

from affordml.cloud.faults import ImageUploadFailed
from affordml.project import Project

QCOW2_MAGIC = b"QFI\xfb"
CHUNK = 1 << 20


def disk_format(path: Path) -> str:
    with open(path, "rb") as handle:
        return "qcow2" if handle.read(4) == QCOW2_MAGIC else "raw"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_source(project: Project, source: str, lock_image: dict) -> Path:
    """A local path as it is; an http(s) URL downloaded into the project's cache (kept for re-runs)."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme in ("http", "https"):
        return download(project, source, lock_image.get("sha256sums_url") if source == lock_image.get("url") else None)
    path = Path(parsed.path if parsed.scheme == "file" else source).expanduser()
    if not path.is_file():
        raise ImageUploadFailed(
            f"the guest image {path} does not exist",
            "give an existing image file in cloud.guest_image, or leave it unset to download the lock's image",
        )
    return path


def download(project: Project, url: str, sums_url: str | None) -> Path:
    from affordml.safefile import own_file_exists, replacing

    name = Path(urllib.parse.urlparse(url).path).name or "guest.img"
    rel = Path("cache") / "images" / name
    target = project.root / rel
    expected = _expected_sum(sums_url, name) if sums_url else None
    if sums_url and expected is None:  # never trust the lock's image unchecked
        raise ImageUploadFailed(
            f"cannot read the checksum of {name} from {sums_url}; the image was not downloaded",
            "check this PC's internet access, or leave cloud.guest_image unset and use `affordml init --mirror DIR`",
        )
    # a cached image is used only when it is affordml's own file (never a link to a file elsewhere)
    if own_file_exists(project.root, rel) and (expected is None or sha256_of(target) == expected):
        return target
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, replacing(project.root, rel, 0o644) as handle:  # noqa: S310
            for chunk in iter(lambda: response.read(CHUNK), b""):
                handle.write(chunk)
                digest.update(chunk)
            if expected and digest.hexdigest() != expected:
                raise _Mismatch
    except _Mismatch:
        raise ImageUploadFailed(
            f"the downloaded guest image {name} does not match its SHA256SUMS entry",
            "run again (the mirror may have moved to a new serial mid-download)",
        ) from None
    except OSError as exc:
        raise ImageUploadFailed(
            f"downloading the guest image {url} failed: {exc}",
            "check this PC's internet access, or download the image yourself and set cloud.guest_image to it",
        ) from None
    return target


class _Mismatch(Exception):
    """The download's SHA256 is not the one its SHA256SUMS names: it is not kept."""


def _expected_sum(sums_url: str, name: str) -> str | None:
    try:
        with urllib.request.urlopen(sums_url, timeout=30) as response:  # noqa: S310
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == name:
            return parts[0]
    return None
