"""Fixtures for the verify checks against a real control plane (outside CI): tests/kubecp, plus the Kueue and
KServe CRDs at the locked tags from AFFORDML_VERIFY_CRDS."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.kubecp.fixtures import control_plane_factory  # noqa: F401 - re-exported fixture

CRDS_ENV = "AFFORDML_VERIFY_CRDS"
CRD_FILES = (
    "kueue.x-k8s.io_resourceflavors.yaml",
    "kueue.x-k8s.io_clusterqueues.yaml",
    "kueue.x-k8s.io_localqueues.yaml",
    "kueue.x-k8s.io_workloads.yaml",
    "serving.kserve.io_inferenceservices.yaml",
)


@pytest.fixture
def verify_crds() -> Path:
    """A folder with Kueue v0.19.2's config/components/crd/bases (resourceflavors, clusterqueues, localqueues,
    workloads) and KServe v0.20.0's config/crd/full/serving.kserve.io_inferenceservices.yaml (git archive of the
    locked tags; see /work/coord/realengines.md)."""
    if os.environ.get("CI"):
        pytest.skip("CI: the Kueue and KServe CRDs come from their source trees, not from a package registry")
    folder = os.environ.get(CRDS_ENV)
    if not folder:
        pytest.skip(f"set {CRDS_ENV} to a folder with {', '.join(CRD_FILES)} at the locked tags")
    missing = [f for f in CRD_FILES if not (Path(folder) / f).is_file()]
    if missing:
        pytest.skip(f"{CRDS_ENV}: missing {', '.join(missing)}")
    return Path(folder)
