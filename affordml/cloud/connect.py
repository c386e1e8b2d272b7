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


def admin_source(
    project: Project, path: Path | None = None, cloud: str | None = None, system_cloud_allowed: bool = True
) -> AdminSource:
    """Where the admin credentials come from: the option, the project's secrets, or kolla's clouds.yaml
    (system-wide: only when system_cloud_allowed, i.e. the caller knows this project deployed that cloud)."""
    if path is not None:
        return AdminSource(Path(path), cloud or names.ADMIN_CLOUD)
    own = clouds_yaml(project)
    if names.ADMIN_CLOUD in _clouds(_load_own(project)):
        return AdminSource(own, names.ADMIN_CLOUD)
    kolla = Path(names.KOLLA_CLOUDS_YAML)
    if system_cloud_allowed and names.KOLLA_ADMIN_CLOUD in _entries(kolla):
        return AdminSource(kolla, names.KOLLA_ADMIN_CLOUD)
    if not system_cloud_allowed:
        raise CloudUnreachable(
            f"no OpenStack admin credentials in this project ({own}, cloud {names.ADMIN_CLOUD}); "
            f"{kolla} is not used because this project's state does not say that it deployed that cloud",
            f"put an admin entry named {names.ADMIN_CLOUD} into {own} (mode 0600), or run from the project "
            "folder whose openstack phase deployed the cloud",
        )
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


def _load_own(project: Project) -> dict:
    """The project's secrets/clouds.yaml (read without following a link); {} when missing. A broken one is
    named, its content never shown."""
    from affordml.secrets import read_secrets

    return read_secrets(clouds_yaml(project), project.root) or {}


def _entries(path: Path) -> dict:
    return _clouds(_load(path))


def _clouds(data: dict) -> dict:
    clouds = data.get("clouds")
    return clouds if isinstance(clouds, dict) else {}


def _save(project: Project, data: dict) -> None:
    text = "# affordml clouds: private, mode 0600\n" + yaml.safe_dump(data, sort_keys=True)
    write_private(clouds_yaml(project), text, project.root)


def connect_cloud(path: Path, cloud: str, api_timeout: float | None = None):
    """A connection to one entry of one clouds.yaml, ignoring OS_* variables and every other file."""
    import openstack.config
    import openstack.connection

    config = openstack.config.OpenStackConfig(config_files=[str(path)], vendor_files=[], load_envvars=False)
    region = config.get_one(cloud=cloud, api_timeout=api_timeout) if api_timeout else config.get_one(cloud=cloud)
    return openstack.connection.Connection(config=region)


def platform_password(project: Project) -> str:
    """The platform user's password: generated once into secrets/openstack.yml (0600)."""
    path = secure_dir(project.secrets_dir, project.root) / "openstack.yml"
    return fill_secrets(path, (PASSWORD_KEY,), project.root)[PASSWORD_KEY]


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
    secure_dir(path.parent, project.root)
    data = _load_own(project)
    clouds = data.setdefault("clouds", {})
    if not isinstance(clouds, dict):
        clouds = data["clouds"] = {}
    if clouds.get(names.USER_CLOUD) == entry:
        return path, False
    clouds[names.USER_CLOUD] = entry
    _save(project, data)
    return path, True


def forget_user_cloud(project: Project) -> None:
    """Take the `affordml` entry out of secrets/clouds.yaml (destroy removed its user), keeping the others."""
    data = _load_own(project)
    if names.USER_CLOUD in _clouds(data):
        del data["clouds"][names.USER_CLOUD]
        _save(project, data)


def user_cloud_exists(project: Project) -> bool:
    return names.USER_CLOUD in _clouds(_load_own(project))
