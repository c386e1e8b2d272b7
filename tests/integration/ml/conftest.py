"""Fixtures for the ml phase against real engines (outside CI): the real control plane (tests/kubecp), the real
helm (PyPI wheel, tests/artifacts) and the real charts at the locked versions (tests/gpustack/charts.py)."""

from __future__ import annotations

import pytest

from tests.kubecp.fixtures import control_plane_factory  # noqa: F401 - re-exported fixture


@pytest.fixture(scope="session")
def helm_tools() -> dict:
    from tests.gpustack import charts

    reason = charts.why_unavailable()
    if reason:
        pytest.skip(reason)
    from tests.artifacts.realfiles import cache_dir, helm_binary, helm_release_tarball

    helm = helm_binary()
    archives = charts.chart_archives(helm, cache_dir() / "gpu-charts")
    return {"helm": helm_release_tarball(), "helm_bin": helm, **archives}


@pytest.fixture
def fetch(helm_tools):
    return lambda name: helm_tools[name]
