"""Renders each service's configuration into a run's etc folder."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from .install import BIND_ALL_DRIVER_NAME, FAKE_GPU_DRIVER_MODULE
from .settings import (
    COMPUTE_HOST,
    HOST,
    PASSWORD,
    PLATFORM_PHYSNET,
    PUBLIC_PHYSNET,
    REGION,
    Layout,
    database_url,
    keystone_url,
    transport_url,
)

IniValue = str | int | bool | Sequence[str]
IniSections = Mapping[str, Mapping[str, IniValue]]


def render_ini(sections: IniSections) -> str:
    """An ini file for oslo.config; a list value repeats its key (for multi-valued options)."""
    lines: list[str] = []
    for section, options in sections.items():
        lines.append(f"[{section}]")
        for key, value in options.items():
            values = [value] if isinstance(value, str | int | bool) else list(value)
            lines.extend(f"{key} = {_ini_scalar(item)}" for item in values)
        lines.append("")
    return "\n".join(lines)


def _ini_scalar(value: str | int | bool) -> str:
    """One value as oslo.config reads it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def keystone_authtoken(user: str) -> dict[str, IniValue]:
    """The [keystone_authtoken] section with which a service checks tokens: its own credentials and more."""
    return {"www_authenticate_uri": keystone_url()} | service_credentials(user) | {"service_token_roles_required": True}


def service_credentials(user: str) -> dict[str, IniValue]:
    """A keystoneauth section with which a service calls another one."""
    return {
        "auth_url": keystone_url(),
        "auth_type": "password",
        "project_domain_name": "Default",
        "user_domain_name": "Default",
        "project_name": "service",
        "username": user,
        "password": PASSWORD,
        "region_name": REGION,
    }


def keystone_conf(layout: Layout) -> IniSections:
    """keystone.conf."""
    keys = layout.keystone_keys
    return {
        "DEFAULT": {"debug": False},
        "database": {"connection": database_url("keystone")},
        "token": {"provider": "fernet"},
        "fernet_tokens": {"key_repository": str(keys / "fernet-keys")},
        "fernet_receipts": {"key_repository": str(keys / "fernet-keys")},
        "credential": {"key_repository": str(keys / "credential-keys")},
    }


def placement_conf() -> IniSections:
    """placement.conf."""
    return {
        "DEFAULT": {"debug": False},
        "api": {"auth_strategy": "keystone"},
        "placement_database": {"connection": database_url("placement")},
        "keystone_authtoken": keystone_authtoken("placement"),
    }


def glance_conf(layout: Layout) -> IniSections:
    """glance-api.conf with a file store in the run folder."""
    images = layout.state / "glance"
    return {
        "DEFAULT": {"debug": False, "enabled_backends": "fs:file"},
        "database": {"connection": database_url("glance")},
        "glance_store": {"default_backend": "fs"},
        "fs": {"filesystem_store_datadir": str(images / "images")},
        "os_glance_staging_store": {"filesystem_store_datadir": str(images / "staging")},
        "os_glance_tasks_store": {"filesystem_store_datadir": str(images / "tasks")},
        "paste_deploy": {"flavor": "keystone"},
        "oslo_concurrency": {"lock_path": str(images / "lock")},
        "keystone_authtoken": keystone_authtoken("glance"),
    }


def nova_conf(layout: Layout) -> IniSections:
    """nova.conf shared by nova-api, conductor, scheduler and compute. Nothing about PCI here: each service also
    reads affordml's rendered kolla file for it (nova-api.conf, nova-scheduler.conf, nova-compute.conf), as kolla
    merges them on a real PC; so the scheduler filters, device specs and aliases are the production ones."""
    state = layout.state / "nova"
    return {
        "DEFAULT": {
            "debug": False,
            "transport_url": transport_url(),
            "compute_driver": f"{FAKE_GPU_DRIVER_MODULE}.FakeGpuDriver",
            "host": COMPUTE_HOST,
            "my_ip": HOST,
            "state_path": str(state),
            "instances_path": str(state / "instances"),
            "update_resources_interval": 10,
            "graceful_shutdown_timeout": 2,
        },
        "api": {"auth_strategy": "keystone"},
        "wsgi": {"api_paste_config": str(layout.etc / "nova" / "api-paste.ini")},
        "api_database": {"connection": database_url("nova_api")},
        "database": {"connection": database_url("nova")},
        "oslo_concurrency": {"lock_path": str(state / "lock")},
        "conductor": {"workers": 1},
        "scheduler": {"workers": 1, "discover_hosts_in_cells_interval": 2},
        "vnc": {"enabled": False},
        "glance": {"region_name": REGION},
        "keystone_authtoken": keystone_authtoken("nova"),
        "placement": service_credentials("nova"),
        "neutron": service_credentials("nova"),
        "service_user": service_credentials("nova") | {"send_service_user_token": True},
    }


def neutron_conf(layout: Layout) -> IniSections:
    """neutron.conf: ML2 and routers, no agents, no RPC server."""
    state = layout.state / "neutron"
    return {
        "DEFAULT": {
            "debug": False,
            "core_plugin": "ml2",
            "service_plugins": "router",
            "transport_url": transport_url(),
            "auth_strategy": "keystone",
            "state_path": str(state),
            "api_workers": 1,
            "rpc_workers": 0,
            "rpc_state_report_workers": 0,
            "dhcp_agent_notification": False,
        },
        "database": {"connection": database_url("neutron")},
        "oslo_concurrency": {"lock_path": str(state / "lock")},
        "keystone_authtoken": keystone_authtoken("neutron"),
        "nova": service_credentials("neutron"),
    }


def ml2_conf() -> IniSections:
    """plugins/ml2/ml2_conf.ini: vxlan tenant networks, one flat provider network, our binding driver."""
    return {
        "ml2": {
            "type_drivers": "flat,vxlan",
            "tenant_network_types": "vxlan",
            "mechanism_drivers": BIND_ALL_DRIVER_NAME,
            "extension_drivers": "port_security",
        },
        "ml2_type_vxlan": {"vni_ranges": "1:1000"},
        "ml2_type_flat": {"flat_networks": f"{PUBLIC_PHYSNET},{PLATFORM_PHYSNET}"},
    }


def _copy_paste_ini(venv: Path, source: str, target: Path) -> None:
    """Copy a service's paste pipeline file from the venv's etc folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(venv / "etc" / source, target)


def write_all(layout: Layout, venv: Path, nova_files: Mapping[str, str]) -> None:
    """Write every config file, affordml's rendered nova files beside nova.conf, and create the state folders."""
    for service, text in nova_files.items():
        (layout.etc / "nova").mkdir(parents=True, exist_ok=True)
        (layout.etc / "nova" / f"{service}.conf").write_text(text)
    files = {
        layout.etc / "keystone" / "keystone.conf": keystone_conf(layout),
        layout.etc / "placement" / "placement.conf": placement_conf(),
        layout.etc / "glance" / "glance-api.conf": glance_conf(layout),
        layout.etc / "nova" / "nova.conf": nova_conf(layout),
        layout.etc / "neutron" / "neutron.conf": neutron_conf(layout),
        layout.etc / "neutron" / "plugins" / "ml2" / "ml2_conf.ini": ml2_conf(),
    }
    for path, sections in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_ini(sections))
    _copy_paste_ini(venv, "nova/api-paste.ini", layout.etc / "nova" / "api-paste.ini")
    _copy_paste_ini(venv, "neutron/api-paste.ini", layout.etc / "neutron" / "api-paste.ini")
    _copy_paste_ini(venv, "glance/glance-api-paste.ini", layout.etc / "glance" / "glance-api-paste.ini")
    for folder in (
        "glance/images",
        "glance/staging",
        "glance/tasks",
        "glance/lock",
        "nova/instances",
        "nova/lock",
        "neutron/lock",
        "keystone",
    ):
        (layout.state / folder).mkdir(parents=True, exist_ok=True)


def neutron_config_args(layout: Layout) -> list[str]:
    """The --config-file arguments of neutron's command-line tools."""
    return [
        "--config-file",
        str(layout.etc / "neutron" / "neutron.conf"),
        "--config-file",
        str(layout.etc / "neutron" / "plugins" / "ml2" / "ml2_conf.ini"),
    ]
