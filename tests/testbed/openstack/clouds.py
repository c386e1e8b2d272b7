"""clouds.yaml for the test control plane, and openstacksdk connections that read only what we pass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .settings import ADMIN_CLOUD_NAME, PASSWORD, REGION, keystone_url

if TYPE_CHECKING:
    import openstack.connection


@dataclass(frozen=True)
class CloudCredentials:
    """Password credentials of one user scoped to one project, in the Default domain."""

    username: str
    password: str
    project_name: str

    def auth(self) -> dict[str, str]:
        """The auth mapping of a clouds.yaml entry or of openstack.connect()."""
        return {
            "auth_url": keystone_url(),
            "username": self.username,
            "password": self.password,
            "project_name": self.project_name,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        }

    def cloud_entry(self) -> dict[str, Any]:
        """One cloud entry of clouds.yaml."""
        return {
            "auth": self.auth(),
            "auth_type": "password",
            "region_name": REGION,
            "identity_api_version": 3,
            "interface": "public",
        }


ADMIN = CloudCredentials(username="admin", password=PASSWORD, project_name="admin")


def write_clouds_yaml(path: Path, clouds: Mapping[str, CloudCredentials] | None = None) -> Path:
    """Write clouds.yaml with the admin entry and any others given; return its path."""
    entries = {ADMIN_CLOUD_NAME: ADMIN, **(clouds or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump({"clouds": {name: cred.cloud_entry() for name, cred in entries.items()}}, sort_keys=False)
    )
    return path


def connect(credentials: CloudCredentials = ADMIN) -> openstack.connection.Connection:
    """An openstacksdk connection from these credentials alone (no clouds.yaml, no OS_* variables)."""
    import openstack

    return openstack.connect(
        load_yaml_config=False,
        load_envvars=False,
        auth_type="password",
        auth=credentials.auth(),
        region_name=REGION,
        identity_api_version="3",
        interface="public",
    )


def connect_from_clouds_yaml(path: Path, cloud: str) -> openstack.connection.Connection:
    """An openstacksdk connection to one named entry of one clouds.yaml file, ignoring any other."""
    import openstack.config
    import openstack.connection

    config = openstack.config.OpenStackConfig(config_files=[str(path)], vendor_files=[], load_envvars=False)
    return openstack.connection.Connection(config=config.get_one(cloud=cloud))
