"""The openstack_cloud fixture: a real minimal OpenStack on 127.0.0.1 for the whole test session."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.testbed.openstack import (  # noqa: E402
    PrerequisiteMissing,
    bring_up,
    exclusive_use,
    running_control_plane,
    stop,
    stop_abandoned_test_plane,
)
from tests.testbed.openstack.cloud import OpenStackCloud  # noqa: E402

STRICT_VARIABLE = "AFFORDML_REQUIRE_OPENSTACK"
LOCK_WAIT_S = 1800


def _reporter(config: pytest.Config) -> Callable[[str], None]:
    """Write bring-up and teardown timings to the terminal, past pytest's output capture."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")

    def report(line: str) -> None:
        uncaptured = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
        with uncaptured:
            if terminal is None:
                print(line, flush=True)
            else:
                terminal.write_line(line)

    return report


def _unavailable(reason: str) -> None:
    """Skip, or fail where the environment says the control plane is required (CI)."""
    message = f"OpenStack test control plane unavailable: {reason}"
    if os.environ.get(STRICT_VARIABLE) == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def openstack_cloud(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OpenStackCloud]:
    """Bring the control plane up once (or reuse one started with `up`), and always take ours down."""
    report = _reporter(request.config)
    started_by_hand = running_control_plane(owner="cli")
    if started_by_hand is not None:
        report(f"[openstack testbed] reusing the control plane started by hand in {started_by_hand.layout.root}")
        yield OpenStackCloud.from_plane(started_by_hand)
        return
    if os.geteuid() != 0:
        _unavailable("needs root (it installs Debian packages and runs MariaDB and RabbitMQ)")
    with exclusive_use(LOCK_WAIT_S, report):
        stop_abandoned_test_plane(report)
        try:
            plane = bring_up(tmp_path_factory.mktemp("openstack"), report=report, owner="pytest")
        except PrerequisiteMissing as missing:
            _unavailable(str(missing))
            return
        try:
            yield OpenStackCloud.from_plane(plane)
        finally:
            stop(plane, report)
