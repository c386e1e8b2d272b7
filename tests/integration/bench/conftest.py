"""The real control plane (tests/kubecp) for the cluster bench's Jobs (outside CI)."""

from __future__ import annotations

from tests.kubecp.fixtures import control_plane_factory  # noqa: F401 - re-exported fixture
