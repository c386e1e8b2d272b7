"""Starting the OpenStack services of a run and waiting until each one answers."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .fake_host import FakeFunction
from .processes import Started, http_answers, start_background, wait_until
from .settings import HOST, PORTS, WSGI_SERVE_SCRIPT, Layout


@dataclass(frozen=True)
class ApiService:
    """An HTTP API served by gunicorn from a WSGI module of the venv."""

    name: str
    port: int
    application: str
    config_variable: str
    config_folder: str
    extra_env: tuple[tuple[str, str], ...] = ()

    @property
    def url(self) -> str:
        """Where the API answers its version document."""
        return f"http://{HOST}:{self.port}/"


KEYSTONE = ApiService("keystone", PORTS.keystone, "keystone.wsgi.api:application", "OS_KEYSTONE_CONFIG_DIR", "keystone")
PLACEMENT = ApiService(
    "placement", PORTS.placement, "placement.wsgi.api:application", "OS_PLACEMENT_CONFIG_DIR", "placement"
)
GLANCE = ApiService("glance-api", PORTS.glance, "glance.wsgi.api:application", "OS_GLANCE_CONFIG_DIR", "glance")
NEUTRON = ApiService("neutron-api", PORTS.neutron, "neutron.wsgi.api:application", "OS_NEUTRON_CONFIG_DIR", "neutron")
# nova-api reads affordml's rendered nova-api.conf (the PCI aliases) after nova.conf, as kolla merges it.
NOVA_API = ApiService(
    "nova-api",
    PORTS.nova,
    "nova.wsgi.osapi_compute:application",
    "OS_NOVA_CONFIG_DIR",
    "nova",
    (("OS_NOVA_CONFIG_FILES", "api-paste.ini;nova.conf;nova-api.conf"),),
)
APIS_AFTER_KEYSTONE = (PLACEMENT, GLANCE, NEUTRON, NOVA_API)
NOVA_DAEMONS = ("nova-conductor", "nova-scheduler")
FAKE_PCI_VARIABLE = "AFFORDML_FAKE_PCI"
FAKE_PHYS_BITS_VARIABLE = "AFFORDML_FAKE_PHYS_BITS"
RENDERED_CONFIG = {"nova-scheduler": "nova-scheduler.conf", "nova-compute": "nova-compute.conf"}


def service_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without OpenStack client or config variables, plus extras."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OS_", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"))
    }
    env.update(extra or {})
    return env


def start_api(service: ApiService, layout: Layout, venv: Path) -> Started:
    """Start one API under gunicorn, bound to 127.0.0.1 only."""
    command = [
        str(venv / "bin" / "python"),
        str(WSGI_SERVE_SCRIPT),
        service.name,
        f"{HOST}:{service.port}",
        service.application,
    ]
    env = service_environment(
        {service.config_variable: str(layout.etc / service.config_folder), **dict(service.extra_env)}
    )
    return start_background(service.name, command, layout.logs / f"{service.name}.log", env=env, cwd=layout.root)


def wait_for_api(service: ApiService, process: Started, timeout_s: float = 180) -> None:
    """Wait until an API answers its version document."""
    wait_until(
        f"{service.name} to answer on {service.url}", lambda: http_answers(service.url), timeout_s, watched=process
    )


def nova_config_args(layout: Layout) -> list[str]:
    """The --config-file argument of nova's command-line tools."""
    return ["--config-file", str(layout.etc / "nova" / "nova.conf")]


def start_nova_daemon(name: str, layout: Layout, venv: Path, extra_env: Mapping[str, str] | None = None) -> Started:
    """Start nova-conductor, nova-scheduler or nova-compute."""
    command = [str(venv / "bin" / name), *nova_config_args(layout)]
    if name in RENDERED_CONFIG:
        command += ["--config-file", str(layout.etc / "nova" / RENDERED_CONFIG[name])]
    return start_background(
        name, command, layout.logs / f"{name}.log", env=service_environment(extra_env), cwd=layout.root
    )


def start_nova_compute(layout: Layout, venv: Path, functions: Sequence[FakeFunction], phys_bits: int) -> Started:
    """Start nova-compute with the fake driver, the PC's PCI functions and its CPU's address bits."""
    env = {
        FAKE_PCI_VARIABLE: json.dumps([function.nova_record() for function in functions]),
        FAKE_PHYS_BITS_VARIABLE: str(phys_bits),
    }
    return start_nova_daemon("nova-compute", layout, venv, env)
