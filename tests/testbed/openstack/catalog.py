"""Keystone's service users and catalog, and the public provider network, through openstacksdk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .clouds import connect
from .settings import (
    HOST,
    PASSWORD,
    PORTS,
    PUBLIC_CIDR,
    PUBLIC_GATEWAY,
    PUBLIC_NETWORK_NAME,
    PUBLIC_PHYSNET,
    PUBLIC_POOL,
    REGION,
    ExternalNetwork,
)

if TYPE_CHECKING:
    import openstack.connection

CATALOG = (
    ("glance", "image", f"http://{HOST}:{PORTS.glance}"),
    ("placement", "placement", f"http://{HOST}:{PORTS.placement}"),
    ("nova", "compute", f"http://{HOST}:{PORTS.nova}/v2.1"),
    ("neutron", "network", f"http://{HOST}:{PORTS.neutron}"),
)
INTERFACES = ("public", "internal", "admin")


def _find_or_create_role(conn: openstack.connection.Connection, name: str) -> object:
    """A role by name, created when missing."""
    return conn.identity.find_role(name) or conn.identity.create_role(name=name)


def register_services(conn: openstack.connection.Connection | None = None) -> None:
    """Create the service project, one user per service with admin and service roles, and the endpoints."""
    conn = conn or connect()
    identity = conn.identity
    project = identity.find_project("service") or identity.create_project(name="service", domain_id="default")
    roles = [_find_or_create_role(conn, "admin"), _find_or_create_role(conn, "service")]
    for user_name, service_type, url in CATALOG:
        user = identity.find_user(user_name) or identity.create_user(
            name=user_name, password=PASSWORD, domain_id="default"
        )
        for role in roles:
            identity.assign_project_role_to_user(project, user, role)
        service = identity.find_service(user_name) or identity.create_service(name=user_name, type=service_type)
        for interface in INTERFACES:
            if not list(identity.endpoints(service_id=service.id, interface=interface)):
                identity.create_endpoint(service_id=service.id, interface=interface, url=url, region_id=REGION)


def create_public_network(conn: openstack.connection.Connection | None = None) -> ExternalNetwork:
    """Create (or find) the admin-owned external flat network and its subnet in a documentation range."""
    conn = conn or connect()
    network = conn.network.find_network(PUBLIC_NETWORK_NAME) or conn.network.create_network(
        name=PUBLIC_NETWORK_NAME,
        is_router_external=True,
        is_shared=False,
        provider_network_type="flat",
        provider_physical_network=PUBLIC_PHYSNET,
    )
    subnet_name = f"{PUBLIC_NETWORK_NAME}-subnet"
    subnet = conn.network.find_subnet(subnet_name, network_id=network.id) or conn.network.create_subnet(
        name=subnet_name,
        network_id=network.id,
        ip_version=4,
        cidr=PUBLIC_CIDR,
        gateway_ip=PUBLIC_GATEWAY,
        is_dhcp_enabled=False,
        allocation_pools=[{"start": PUBLIC_POOL[0], "end": PUBLIC_POOL[1]}],
    )
    return ExternalNetwork(
        name=network.name, network_id=network.id, subnet_id=subnet.id, cidr=subnet.cidr, gateway_ip=subnet.gateway_ip
    )
