"""Fixtures for the kubernetes phase's integration tests: the real test hosts (from tests/integration/hosts), the
Kubespray toolchain from PyPI (cached like kolla-ansible's), and the real control plane of tests/kubecp when its
binaries are given (outside CI)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.hosts.conftest import testbed_factory, testbed_rootfs  # noqa: F401 - re-exported fixtures
from tests.kubecp.fixtures import control_plane_factory  # noqa: F401 - re-exported fixture

# Kubespray v2.31.0's requirements.txt pins (the lock's `kubespray.ansible` and what the tag adds): the same
# toolchain the phase builds from the real tree, so this cache serves both.
KUBESPRAY_REQUIREMENTS = "ansible==11.13.0\ncryptography==46.0.7\njmespath==1.1.0\nnetaddr==1.3.0\n"


@pytest.fixture(scope="session")
def kubespray_toolchain_bin(tmp_path_factory) -> Path:
    """Kubespray's toolchain, built once from PyPI into the toolchain cache (about a minute when cold)."""
    from affordml.errors import RunError
    from affordml.kube.source import kubespray_toolchain
    from affordml.run.toolchains import ensure
    from affordml.versions import load_lock

    tree = tmp_path_factory.mktemp("requirements")
    (tree / "requirements.txt").write_text(KUBESPRAY_REQUIREMENTS)
    started = time.monotonic()
    try:
        path = ensure(kubespray_toolchain(tree, load_lock()), print)
    except RunError as error:
        pytest.skip(f"Kubespray toolchain unavailable: {error.one_line()}")
    print(f"Kubespray toolchain ready in {time.monotonic() - started:.1f} s at {path}")
    return path
