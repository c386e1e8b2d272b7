"""The upstream upgrade rules (affordml/lifecycle/paths.yaml) and the lock summary the hop planner compares."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import yaml

from affordml.errors import ConfigError

CHART_COMPONENTS = ("gpu_operator", "hami", "cert_manager", "kserve", "kueue", "jupyterhub", "kube_prometheus_stack")
NUMBER = re.compile(r"\d+")


@lru_cache(maxsize=1)
def load_rules() -> dict:
    text = resources.files("affordml").joinpath("lifecycle/paths.yaml").read_text()
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError("affordml/lifecycle/paths.yaml is damaged", "reinstall affordml")
    return data


def version_key(version: str) -> tuple[int, ...]:
    """'v2.31.0' -> (2, 31, 0); '4.6.0-4.8.3' -> (4, 6, 0): the release before any '-' suffix."""
    head = str(version).lstrip("v").split("-", 1)[0]
    return tuple(int(n) for n in NUMBER.findall(head))


def minor_of(version: str) -> str:
    major, minor = version_key(version)[:2]
    return f"{major}.{minor}"


def lock_summary(lock: dict) -> dict:
    """What the planner and the state record of a lock: its name and each engine's and chart's version."""
    summary = {
        "name": str(lock.get("name", "")),
        "kolla_ansible": str(lock["kolla_ansible"]["version"]),
        "openstack_release": str(lock["kolla_ansible"]["openstack_release"]),
        "kubespray": str(lock["kubespray"]["version"]),
        "kubernetes": str(lock["kubernetes"]["version"]),
        "helm": str(lock["helm"]["version"]),
        "guest_image": str(lock["guest_image"]["version"]),
        "cert_manager": str(((lock.get("kserve") or {}).get("requires") or {}).get("cert_manager", "")),
    }
    for name in CHART_COMPONENTS:
        if name != "cert_manager":
            summary[name] = str(lock[name]["version"])
    return summary
