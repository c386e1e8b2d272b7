"""Smoke test of the test control plane through openstacksdk, as the project's OpenStack phase will use it."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.testbed.openstack import CloudCredentials
from tests.testbed.openstack.cloud import OpenStackCloud

pytestmark = [pytest.mark.openstack, pytest.mark.slow]

SERVER_TIMEOUT_S = 180
PLACEMENT_MICROVERSION = "1.28"
GPU_EXTRA_SPEC = "pci_passthrough:alias"


@pytest.fixture
def cleanup() -> Iterator[Callable[[Callable[[], Any]], None]]:
    """Register undo steps that run in reverse order at the end, each even when another fails."""
    stack = contextlib.ExitStack()

    def register(undo: Callable[[], Any]) -> None:
        stack.callback(_best_effort, undo)

    with stack:
        yield register


def _best_effort(undo: Callable[[], Any]) -> None:
    """Run one undo step; a failure here must not hide the test's own outcome."""
    with contextlib.suppress(Exception):
        undo()


def _retry(what: str, attempt: Callable[[], Any], tries: int = 10, pause_s: float = 1.0) -> Any:
    """Call attempt() until it succeeds, a bounded number of times."""
    for remaining in range(tries - 1, -1, -1):
        try:
            return attempt()
        except Exception:
            if not remaining:
                raise
            time.sleep(pause_s)
    raise AssertionError(f"unreachable: {what}")


def _ssh_public_key() -> str:
    """A fresh ed25519 public key in OpenSSH format."""
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _allocations(admin: Any, consumer_id: str) -> dict[str, dict[str, int]]:
    """Placement's allocations of a server: resource provider uuid -> resources."""
    response = admin.placement.get(f"/allocations/{consumer_id}", microversion=PLACEMENT_MICROVERSION)
    response.raise_for_status()
    return {rp: alloc["resources"] for rp, alloc in response.json()["allocations"].items()}


def _provider_name(admin: Any, provider_id: str) -> str:
    """A resource provider's name."""
    response = admin.placement.get(f"/resource_providers/{provider_id}", microversion=PLACEMENT_MICROVERSION)
    response.raise_for_status()
    return str(response.json()["name"])


def _gpus_in_use(admin: Any, resource_class: str) -> int:
    """How many GPUs placement counts as allocated, over every provider."""
    response = admin.placement.get("/resource_providers", microversion=PLACEMENT_MICROVERSION)
    response.raise_for_status()
    total = 0
    for provider in response.json()["resource_providers"]:
        usages = admin.placement.get(
            f"/resource_providers/{provider['uuid']}/usages", microversion=PLACEMENT_MICROVERSION
        ).json()["usages"]
        total += usages.get(resource_class, 0)
    return total


def _boot(conn: Any, name: str, flavor: Any, image: Any, network: Any, key_name: str, group: str) -> Any:
    """Ask nova for one server on the tenant network (without waiting)."""
    return conn.compute.create_server(
        name=name,
        flavor_id=flavor.id,
        image_id=image.id,
        networks=[{"uuid": network.id}],
        key_name=key_name,
        security_groups=[{"name": group}],
    )


def _wait_active(conn: Any, server: Any) -> Any:
    """Wait for ACTIVE; on ERROR fail with nova's fault message."""
    try:
        return conn.compute.wait_for_server(
            server, status="ACTIVE", failures=["ERROR"], interval=1, wait=SERVER_TIMEOUT_S
        )
    except Exception as error:
        fault = conn.compute.get_server(server.id).fault
        raise AssertionError(f"server {server.name} did not become ACTIVE: {error}; fault: {fault}") from error


def test_tenant_boots_normal_and_gpu_servers(
    openstack_cloud: OpenStackCloud, tmp_path: Path, cleanup: Callable[[Callable[[], Any]], None]
) -> None:
    """Project, user, image, flavors, network, router, keypair, security group, servers with and without GPU."""
    admin = openstack_cloud.connect()
    suffix = secrets.token_hex(3)
    name = f"smoke-{suffix}"

    project = admin.identity.create_project(name=name, domain_id="default")
    cleanup(lambda: admin.identity.delete_project(project))
    password = secrets.token_urlsafe(12)
    user = admin.identity.create_user(name=name, password=password, domain_id="default", default_project_id=project.id)
    cleanup(lambda: admin.identity.delete_user(user))
    admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role("member"))
    tenant_credentials = CloudCredentials(username=name, password=password, project_name=name)
    tenant = openstack_cloud.connect_as(tenant_credentials)
    _retry("tenant token", tenant.authorize)

    image_file = tmp_path / "tiny.img"
    image_file.write_bytes(b"affordml-smoke-image\n" * 200)
    image = tenant.image.create_image(
        name=name, filename=str(image_file), disk_format="raw", container_format="bare", wait=True
    )
    cleanup(lambda: tenant.image.delete_image(image))
    assert tenant.image.get_image(image.id).status == "active"

    plain_flavor = admin.compute.create_flavor(name=f"{name}-tiny", ram=64, vcpus=1, disk=1)
    cleanup(lambda: admin.compute.delete_flavor(plain_flavor))
    gpu_flavor = admin.compute.create_flavor(name=f"{name}-gpu", ram=64, vcpus=1, disk=1)
    cleanup(lambda: admin.compute.delete_flavor(gpu_flavor))
    admin.compute.create_flavor_extra_specs(gpu_flavor, {GPU_EXTRA_SPEC: f"{openstack_cloud.gpu_alias}:1"})
    specs = admin.compute.fetch_flavor_extra_specs(gpu_flavor).extra_specs
    assert specs[GPU_EXTRA_SPEC] == f"{openstack_cloud.gpu_alias}:1"

    network = tenant.network.create_network(name=name)
    cleanup(lambda: tenant.network.delete_network(network))
    subnet = tenant.network.create_subnet(network_id=network.id, name=name, ip_version=4, cidr="10.42.0.0/24")
    cleanup(lambda: tenant.network.delete_subnet(subnet))
    router_options: dict[str, Any] = {"name": name}
    if openstack_cloud.external_network is not None:
        router_options["external_gateway_info"] = {"network_id": openstack_cloud.external_network.network_id}
    router = tenant.network.create_router(**router_options)
    cleanup(lambda: tenant.network.delete_router(router))
    tenant.network.add_interface_to_router(router, subnet=subnet.id)
    cleanup(lambda: tenant.network.remove_interface_from_router(router, subnet=subnet.id))
    if openstack_cloud.external_network is not None:
        gateway = tenant.network.get_router(router.id).external_gateway_info
        assert gateway["network_id"] == openstack_cloud.external_network.network_id
        assert gateway["external_fixed_ips"][0]["ip_address"].startswith("203.0.113.")

    keypair = tenant.compute.create_keypair(name=name, public_key=_ssh_public_key())
    cleanup(lambda: tenant.compute.delete_keypair(keypair))
    group = tenant.network.create_security_group(name=name, description="smoke test")
    cleanup(lambda: tenant.network.delete_security_group(group))
    tenant.network.create_security_group_rule(
        security_group_id=group.id,
        direction="ingress",
        protocol="tcp",
        port_range_min=22,
        port_range_max=22,
        remote_ip_prefix="0.0.0.0/0",
        ethertype="IPv4",
    )

    servers: list[Any] = []

    def boot(server_name: str, flavor: Any) -> Any:
        server = _boot(tenant, server_name, flavor, image, network, keypair.name, group.name)
        servers.append(server)
        return server

    cleanup(lambda: _delete_servers(tenant, servers))

    plain = _wait_active(tenant, boot(f"{name}-plain", plain_flavor))
    gpu = _wait_active(tenant, boot(f"{name}-gpu-0", gpu_flavor))

    assert plain.addresses[name][0]["addr"].startswith("10.42.0.")
    port = next(iter(admin.network.ports(device_id=plain.id)))
    assert (port.binding_vif_type, port.status) == ("ovs", "ACTIVE")

    resource_class = openstack_cloud.gpu_resource_class
    assert all(resource_class not in resources for resources in _allocations(admin, plain.id).values())
    gpu_allocations = {rp: res for rp, res in _allocations(admin, gpu.id).items() if resource_class in res}
    assert len(gpu_allocations) == 1, _allocations(admin, gpu.id)
    [(gpu_provider, gpu_resources)] = gpu_allocations.items()
    assert gpu_resources[resource_class] == 1
    assert _provider_name(admin, gpu_provider).endswith(":00.0")  # one PCI device, named by its address

    for index in range(1, openstack_cloud.gpu_count):
        _wait_active(tenant, boot(f"{name}-gpu-{index}", gpu_flavor))
    assert _gpus_in_use(admin, resource_class) == openstack_cloud.gpu_count

    one_too_many = boot(f"{name}-gpu-{openstack_cloud.gpu_count}", gpu_flavor)
    refused = tenant.compute.wait_for_server(
        one_too_many, status="ERROR", failures=["ACTIVE"], interval=1, wait=SERVER_TIMEOUT_S
    )
    assert "No valid host" in (refused.fault or {}).get("message", ""), refused.fault

    _delete_servers(tenant, servers)
    _retry("GPUs back in placement", lambda: _assert_no_gpu_in_use(admin, resource_class), tries=30)


def _assert_no_gpu_in_use(admin: Any, resource_class: str) -> None:
    """Fail while placement still counts a GPU as allocated."""
    assert _gpus_in_use(admin, resource_class) == 0


def _delete_servers(conn: Any, servers: list[Any]) -> None:
    """Delete servers and wait until each has gone."""
    for server in servers:
        conn.compute.delete_server(server, ignore_missing=True)
    for server in servers:
        conn.compute.wait_for_delete(server, interval=1, wait=SERVER_TIMEOUT_S)
    servers.clear()
