"""Fixtures for integration tests against real test hosts (systemd-nspawn containers on a private bridge).

``testbed_factory(n)`` returns a started Testbed with n hosts and an inventory written at
``bed.inventory_path``; everything it started is torn down when the test module ends, failures included (beds kept
for the whole session piled up: a CI run held 16 at once, ran out of subnets and slowed every host's sshd).
Set AFFORDML_TESTBED=0 to skip these tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from tests.testbed import image
from tests.testbed.netsafety import SubnetTaken
from tests.testbed.nspawn import Testbed, TestbedError

TestbedFactory = Callable[..., Testbed]


def why_testbed_unavailable() -> str | None:
    """Why real test hosts cannot run here, or None when they can."""
    if os.environ.get("AFFORDML_TESTBED") == "0":
        return "test bed disabled by AFFORDML_TESTBED=0"
    if os.geteuid() != 0:
        return "test bed needs root (network namespaces, overlay mounts, systemd-nspawn)"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "test bed needs overlayfs in the kernel"
    try:
        image.ensure_host_tools()
    except image.HostToolsUnavailable as error:
        return f"test bed tools unavailable: {error}"
    return None


@pytest.fixture(scope="session")
def testbed_rootfs() -> Path:
    """The cached base root filesystem, built once (about a minute or more when cold)."""
    reason = why_testbed_unavailable()
    if reason:
        pytest.skip(reason)
    return image.ensure_rootfs()


@pytest.fixture(scope="module")
def testbed_factory(testbed_rootfs: Path) -> Iterator[TestbedFactory]:
    """Start test beds on demand: factory(n_hosts, names=None, groups=None) -> started Testbed."""
    started: list[Testbed] = []

    def start(
        n_hosts: int, names: Sequence[str] | None = None, groups: Mapping[str, Sequence[str]] | None = None
    ) -> Testbed:
        bed = Testbed()
        started.append(bed)
        try:
            bed.start(n_hosts, names)
        except SubnetTaken as error:
            pytest.skip(f"no free test bed subnet: {error}")
        assert bed.workdir is not None
        bed.write_inventory(bed.workdir / "inventory.yml", groups)
        return bed

    yield start
    problems = []
    for bed in started:
        try:
            bed.stop()
        except TestbedError as error:
            problems.append(str(error))
    if problems:
        raise TestbedError("test bed teardown failed: " + " | ".join(problems))
