"""The serving releases (cert-manager, kserve-crd, kserve), in install order. Owned by the ml-serve work; empty
here so that the ml phase imports it."""

from __future__ import annotations

from affordml.helm import Release

SERVING_RELEASES: list[Release] = []
