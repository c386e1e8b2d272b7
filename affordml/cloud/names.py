"""How the platform names and marks what it creates, so that status and destroy find it and only it (pure)."""

from __future__ import annotations

PREFIX = "affordml-"
FLAVOR_PREFIX = "affordml."  # the plan's flavor names: affordml.<role>.<size>[.gpuN]
MARK_KEY = "affordml"  # server metadata / image property / resource tag: affordml=1
MARK_VALUE = "1"
TAG = "affordml"  # neutron and glance tags
DESCRIPTION = "created by affordml; removed by `affordml destroy`"
VM_KEY = "affordml-vm"  # server metadata: the plan's VM name
PLAN_FLAVOR_KEY = "affordml-flavor"

PROJECT = "affordml"
USER = "affordml"
MEMBER_ROLE = "member"
USER_CLOUD = "affordml"  # the platform user's entry in secrets/clouds.yaml
ADMIN_CLOUD = "affordml-admin"  # the admin entry the openstack phase writes into secrets/clouds.yaml
KOLLA_CLOUDS_YAML = "/etc/kolla/clouds.yaml"
KOLLA_ADMIN_CLOUD = "kolla-admin"

NETWORK = f"{PREFIX}net"
SUBNET = f"{PREFIX}subnet"
ROUTER = f"{PREFIX}router"
EXTERNAL_NETWORK = f"{PREFIX}public"
EXTERNAL_SUBNET = f"{PREFIX}public-subnet"
SECURITY_GROUP = f"{PREFIX}k8s"
KEYPAIR = f"{PREFIX}key"
IMAGE = f"{PREFIX}ubuntu-24.04"


def server_name(vm: str) -> str:
    return f"{PREFIX}{vm}"


def port_name(vm: str) -> str:
    return f"{PREFIX}{vm}-port"


def vm_of_server(name: str) -> str | None:
    return name[len(PREFIX) :] if name.startswith(PREFIX) else None


def is_platform_server(server) -> bool:
    """A server the platform created: its name has the prefix and its metadata the mark."""
    return server.name.startswith(PREFIX) and (server.metadata or {}).get(MARK_KEY) == MARK_VALUE
