"""The real control plane as a pytest fixture, for every phase's tests against real engines (kubernetes, gpu)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def control_plane_factory(tmp_path) -> Iterator[object]:
    """start(extra_sans=()) -> a started real control plane; a skip with the reason when it cannot run (CI)."""
    from tests.kubecp.controlplane import ControlPlane, why_unavailable

    started = []

    def start(extra_sans: tuple[str, ...] = ()) -> ControlPlane:
        reason = why_unavailable()
        if reason:
            pytest.skip(reason)
        cp = ControlPlane(tmp_path / f"controlplane{len(started)}", extra_sans)
        started.append(cp)
        cp.start()
        return cp

    yield start
    for cp in started:
        cp.stop()
