"""A real, minimal OpenStack control plane on 127.0.0.1 for the project's integration tests.

Keystone, glance, placement, nova (api, conductor, scheduler, compute with a fake driver that reports a PC's
GPU functions, under affordml's rendered [pci] config) and neutron (ML2 with a driver that binds every port,
no dataplane), on Debian's MariaDB and RabbitMQ, at the OpenStack 2026.1 releases that kolla-ansible 22 deploys.
The services live in their own venv under ~/.cache/affordml-openstack.
Command line: ``python3 -m tests.testbed.openstack up|down|status``.
"""

from .cloud import OpenStackCloud
from .clouds import ADMIN, CloudCredentials, connect, connect_from_clouds_yaml, write_clouds_yaml
from .control_plane import (
    ControlPlane,
    bring_up,
    exclusive_use,
    running_control_plane,
    stop,
    stop_abandoned_test_plane,
    stop_run,
)
from .fake_host import FakeFunction
from .install import PrerequisiteMissing
from .processes import ServiceFailed
from .settings import ExternalNetwork

__all__ = [
    "ADMIN",
    "CloudCredentials",
    "ControlPlane",
    "ExternalNetwork",
    "FakeFunction",
    "OpenStackCloud",
    "PrerequisiteMissing",
    "ServiceFailed",
    "bring_up",
    "connect",
    "connect_from_clouds_yaml",
    "exclusive_use",
    "running_control_plane",
    "stop",
    "stop_abandoned_test_plane",
    "stop_run",
    "write_clouds_yaml",
]
