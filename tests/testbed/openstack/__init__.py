"""A real, minimal OpenStack control plane on 127.0.0.1 for the project's integration tests.

Keystone, glance, placement, nova (api, conductor, scheduler, compute with a fake driver that reports fake
NVIDIA GPUs for PCI passthrough) and neutron (ML2 with a driver that binds every port, no dataplane), on
Debian's MariaDB and RabbitMQ. The services live in their own venv under ~/.cache/affordml-openstack.
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
from .install import PrerequisiteMissing
from .processes import ServiceFailed
from .settings import DEFAULT_GPUS, GPU_ALIAS, GPU_RESOURCE_CLASS, ExternalNetwork, FakeGpu

__all__ = [
    "ADMIN",
    "DEFAULT_GPUS",
    "GPU_ALIAS",
    "GPU_RESOURCE_CLASS",
    "CloudCredentials",
    "ControlPlane",
    "ExternalNetwork",
    "FakeGpu",
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
