"""Safe extraction of a downloaded tarball: nothing lands outside the destination folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from affordml.errors import ArtifactError


def _strict_data_filter(member, dest_path: str):
    """tarfile's "data" filter, but an absolute name is refused instead of made relative."""
    import tarfile

    if member.name.startswith("/"):
        raise tarfile.AbsolutePathError(member)
    return tarfile.data_filter(member, dest_path)


def unpack_tarball(path: Path, dest: Path) -> Path:
    """Unpack `path` into the new folder `dest` and return it.

    Uses tarfile's "data" filter: absolute names, `..`, links that point outside `dest`, device files and
    setuid bits are refused. It unpacks into a hidden sibling first and renames it into place, so a refused
    archive leaves nothing behind and `dest` never holds half an archive.
    """
    import tarfile
    import tempfile

    path, dest = Path(path), Path(dest)
    if dest.is_symlink() or (dest.exists() and any(dest.iterdir())):
        raise ArtifactError(f"cannot unpack {path.name}: {dest} already exists", f"remove {dest} or pick a new folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.unpack-", dir=dest.parent))
    try:
        with tarfile.open(path, "r:*") as tar:
            tar.extractall(staging, filter=_strict_data_filter)
        if dest.exists():
            dest.rmdir()
        os.replace(staging, dest)
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        reason = " ".join(str(exc).split())
        raise ArtifactError(
            f"refused to unpack {path}: {reason}; nothing was written to {dest}",
            "the archive is damaged or unsafe: delete it and fetch it again (its checksum is checked on download)",
        ) from None
    return dest
