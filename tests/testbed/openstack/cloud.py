"""What the integration tests get from the openstack_cloud fixture."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .clouds import ADMIN, CloudCredentials, connect, connect_from_clouds_yaml
from .control_plane import ControlPlane
from .fake_host import FakeFunction
from .settings import REGION, ExternalNetwork, keystone_url

if TYPE_CHECKING:
    import openstack.connection


@dataclass(frozen=True)
class OpenStackCloud:
    """A running test cloud: where its clouds.yaml is, its admin cloud name, the PC's functions and public network.

    nova runs with affordml's rendered [pci] and [filter_scheduler] files for the PC in fake_host.py: its plan
    (fake_host.plan()) names the aliases and which GPU goes to which VM."""

    clouds_yaml: Path
    cloud_name: str
    functions: tuple[FakeFunction, ...]
    gpu_count: int  # GPUs nova tracks (the plan's device_spec)
    external_network: ExternalNetwork | None
    run_dir: Path
    auth_url: str = keystone_url()
    region_name: str = REGION
    admin: CloudCredentials = ADMIN

    @classmethod
    def from_plane(cls, plane: ControlPlane) -> OpenStackCloud:
        """Describe a running control plane."""
        return cls(
            clouds_yaml=plane.clouds_yaml,
            cloud_name=plane.cloud_name,
            functions=plane.functions,
            gpu_count=plane.tracked_gpus,
            external_network=plane.external_network,
            run_dir=plane.layout.root,
        )

    @property
    def logs_dir(self) -> Path:
        """Where each service's log is."""
        return self.run_dir / "logs"

    def connect(self) -> openstack.connection.Connection:
        """An admin connection read from this cloud's clouds.yaml entry alone."""
        return connect_from_clouds_yaml(self.clouds_yaml, self.cloud_name)

    def connect_as(self, credentials: CloudCredentials) -> openstack.connection.Connection:
        """A connection as another user, from explicit credentials (no clouds.yaml, no OS_* variables)."""
        return connect(credentials)
