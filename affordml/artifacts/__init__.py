"""Pinned, verified downloads (Kubespray, helm, charts, the guest image) from the internet or a local mirror.

Light to import: the network and tar code loads only when a download or an unpack runs.
"""

from __future__ import annotations

from affordml.artifacts.store import ArtifactStore
from affordml.artifacts.unpack import unpack_tarball
from affordml.errors import ArtifactError

__all__ = ["ArtifactError", "ArtifactStore", "unpack_tarball"]
