"""Credentials and connections: the admin cloud (from the openstack phase), the platform's own user and cloud.

clouds.yaml entries live in the project's secrets/clouds.yaml (0600): `affordml-admin`, written by the openstack
phase (or by hand), and `affordml`, the platform user that the cloud phase creates. Without an admin entry there,
kolla-ansible's /etc/kolla/clouds.yaml (`kolla-admin`) is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from affordml.cloud import names
from affordml.cloud.faults import CloudUnreachable
from affordml.project import Project
from affordml.secrets import fill_secrets, secure_dir, write_private

PASSWORD_KEY = "affordml_openstack_password"
COPIED_KEYS = ("region_name", "interface", "identity_api_version", "cacert", "verify", "insecure")


def clouds_yaml(project: Project) -> Path:
    return project.secrets_dir / "clouds.yaml"


@dataclass(frozen=True)
class AdminSource:
    path: Path
    cloud: str


def admin_source(project: Project, path: Path | None = None, cloud: str | None = None) -> AdminSource:
    """Where the admin credentials come from: the option, the project's secrets, or kolla's clouds.yaml."""
    if path is not None:
        return AdminSource(Path(path), cloud or names.ADMIN_CLOUD)
    own = clouds_yaml(project)
    if names.ADMIN_CLOUD in _entries(own):
        return AdminSource(own, names.ADMIN_CLOUD)
    kolla = Path(names.KOLLA_CLOUDS_YAML)
    if names.KOLLA_ADMIN_CLOUD in _entries(kolla):
        return AdminSource(kolla, names.KOLLA_ADMIN_CLOUD)
    raise CloudUnreachable(
        f"no OpenStack admin credentials: neither {own} (cloud {names.ADMIN_CLOUD}) nor "
        f"{kolla} (cloud {names.KOLLA_ADMIN_CLOUD}) has them",
        "run the openstack phase first (`affordml init`), or put an admin entry named "
        f"{names.ADMIN_CLOUD} into {own} (mode 0600)",
    )


def _load(path: Path) -> dict:
    """A clouds.yaml's content; {} when it is missing or unreadable."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _entries(path: Path) -> dict:
    clouds = _load(path).get("clouds")
    return clouds if isinstance(clouds, dict) else {}


def _save(path: Path, data: dict) -> None:
    write_private(path, "# affordml clouds: private, mode 0600\n" + yaml.safe_dump(data, sort_keys=True))


def connect_cloud(path: Path, cloud: str, api_timeout: float | None = None):
    """A connection to one entry of one clouds.yaml, ignoring OS_* variables and every other file."""
    import openstack.config
    import openstack.connection

    config = openstack.config.OpenStackConfig(config_files=[str(path)], vendor_files=[], load_envvars=False)
    region = config.get_one(cloud=cloud, api_timeout=api_timeout) if api_timeout else config.get_one(cloud=cloud)
    return openstack.connection.Connection(config=region)


def platform_password(project: Project) -> str:
    """The platform user's password: generated once into secrets/openstack.yml (0600)."""
    path = secure_dir(project.secrets_dir) / "openstack.yml"
    return fill_secrets(path, (PASSWORD_KEY,))[PASSWORD_KEY]


def user_entry(admin, project_name: str, username: str, password: str) -> dict:
    """The platform user's clouds.yaml entry, on the admin's endpoint and settings."""
    auth = dict(admin.config.config.get("auth") or {})
    entry = {
        "auth_type": "password",
        "auth": {
            "auth_url": auth.get("auth_url"),
            "username": username,
            "password": password,
            "project_name": project_name,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
    }
    for key in COPIED_KEYS:
        value = admin.config.config.get(key)
        if value is not None:
            entry[key] = value
    return entry


def write_user_cloud(project: Project, entry: dict) -> tuple[Path, bool]:
    """Put the `affordml` entry into secrets/clouds.yaml (0600), keeping the other entries; True if it changed."""
    path = clouds_yaml(project)
    secure_dir(path.parent)
    data = _load(path)
    clouds = data.setdefault("clouds", {})
    if clouds.get(names.USER_CLOUD) == entry and (path.stat().st_mode & 0o777) == 0o600:
        return path, False
    clouds[names.USER_CLOUD] = entry
    _save(path, data)
    return path, True


def forget_user_cloud(project: Project) -> None:
    """Take the `affordml` entry out of secrets/clouds.yaml (destroy removed its user), keeping the others."""
    path = clouds_yaml(project)
    data = _load(path)
    if names.USER_CLOUD in (data.get("clouds") or {}):
        del data["clouds"][names.USER_CLOUD]
        _save(path, data)


def user_cloud_exists(project: Project) -> bool:
    return names.USER_CLOUD in _entries(clouds_yaml(project))
