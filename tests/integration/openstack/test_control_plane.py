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

from affordml.cloud import diagnose
from affordml.cloud.spec import MAXPHYSADDR_BITS_SPEC as MAXPHYSADDR_BITS
from affordml.cloud.spec import MAXPHYSADDR_MODE_SPEC as MAXPHYSADDR_MODE
from affordml.cloud.spec import cloud_spec
from tests.testbed.openstack import CloudCredentials, fake_host
from tests.testbed.openstack.cloud import OpenStackCloud
from tests.testbed.openstack.control_plane import tracked_pci_devices
from tests.testbed.openstack.settings import Layout

pytestmark = [pytest.mark.openstack, pytest.mark.slow]

SERVER_TIMEOUT_S = 180
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

    def flavor(suffix: str, extra_specs: dict[str, str]) -> Any:
        made = admin.compute.create_flavor(name=f"{name}-{suffix}", ram=64, vcpus=1, disk=1)
        cleanup(lambda: admin.compute.delete_flavor(made))
        if extra_specs:
            admin.compute.create_flavor_extra_specs(made, extra_specs)
        assert admin.compute.fetch_flavor_extra_specs(made).extra_specs == extra_specs
        return made

    # affordml's own flavors for the test PC (fake_host.py), on 1 vCPU / 64 MiB: the same extra specs
    spec = cloud_spec(fake_host.plan())
    worker = {s.vm: spec.flavor(s.flavor) for s in spec.servers}
    plain_flavor = flavor("tiny", {})
    a6000_flavor = flavor("a6000", worker["worker-1"].extra_specs)
    h200_flavor = flavor("h200", worker["worker-3"].extra_specs)
    assert worker["worker-1"].extra_specs == {GPU_EXTRA_SPEC: "gpu-2230:1"}
    assert worker["worker-3"].extra_specs == {
        GPU_EXTRA_SPEC: "gpu-2335:1",
        MAXPHYSADDR_MODE: "emulate",
        MAXPHYSADDR_BITS: "41",
    }
    too_wide = flavor("pa47", {MAXPHYSADDR_MODE: "emulate", MAXPHYSADDR_BITS: str(fake_host.HOST_PHYS_BITS + 1)})

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
    assert plain.addresses[name][0]["addr"].startswith("10.42.0.")
    port = next(iter(admin.network.ports(device_id=plain.id)))
    assert (port.binding_vif_type, port.status) == ("ovs", "ACTIVE")

    # nova under affordml's rendered [pci] config tracks the planned GPUs only, by address, with their device
    # type; the excluded identical card (0000:ca:00.0) and every HDMI audio function are reported but not tracked
    layout = Layout(openstack_cloud.run_dir)
    tracked = tracked_pci_devices(layout)
    assert [(d["address"], d["product_id"], d["dev_type"]) for d in tracked] == [
        ("0000:17:00.0", "2230", "type-PCI"),
        ("0000:31:00.0", "2230", "type-PCI"),
        ("0000:81:00.0", "2335", "type-PF"),
    ], tracked
    reported = {f.address for f in openstack_cloud.functions}
    assert {"0000:17:00.1", "0000:31:00.1", "0000:ca:00.0", "0000:ca:00.1"} <= reported

    timings: dict[str, float] = {}
    started = time.monotonic()
    h200 = _wait_active(tenant, boot(f"{name}-h200", h200_flavor))
    timings["type-PF H200 (maxphysaddr 41)"] = time.monotonic() - started
    started = time.monotonic()
    first = _wait_active(tenant, boot(f"{name}-a6000-0", a6000_flavor))
    second = _wait_active(tenant, boot(f"{name}-a6000-1", a6000_flavor))
    timings["two type-PCI A6000"] = time.monotonic() - started
    held: dict[str, list[tuple[str, str, str]]] = {}
    for device in tracked_pci_devices(layout):
        held.setdefault(device["instance_uuid"], []).append((device["address"], device["dev_type"], device["status"]))
    assert held[h200.id] == [("0000:81:00.0", "type-PF", "allocated")], held
    cards = sorted(held[first.id] + held[second.id])
    assert cards == [("0000:17:00.0", "type-PCI", "allocated"), ("0000:31:00.0", "type-PCI", "allocated")], held
    assert len(held[first.id]) == len(held[second.id]) == 1  # one whole card each: nothing else to split off

    one_too_many = boot(f"{name}-a6000-2", a6000_flavor)  # the third A6000 stays on the host
    assert "No valid host" in _wait_error(tenant, one_too_many), "the excluded card must not be offered"
    why = diagnose.explain(
        diagnose.Request(f"{name}-a6000", 1, 64, 1, {"gpu-2230": 1}), diagnose.gather(admin), spec.gpus_offered
    )
    print(f"\n[openstack tests] boots: {timings}; fourth GPU server refused, affordml says: {why}")
    assert why == (
        f"no free GPU: flavor {name}-a6000 asks for 1 gpu-2230, 2 of 2 are in use "
        f"(held by {name}-a6000-0, {name}-a6000-1)"
    )
    wider_than_host = boot(f"{name}-pa47", too_wide)  # ComputeCapabilitiesFilter: 47 bits > the host's 46
    assert "No valid host" in _wait_error(tenant, wider_than_host)

    _delete_servers(tenant, servers)
    _retry("GPUs freed in nova", lambda: _assert_all_free(layout), tries=30)


def _wait_error(conn: Any, server: Any) -> str:
    """Wait for ERROR and return nova's fault message."""
    refused = conn.compute.wait_for_server(
        server, status="ERROR", failures=["ACTIVE"], interval=1, wait=SERVER_TIMEOUT_S
    )
    return str((refused.fault or {}).get("message", ""))


def _assert_all_free(layout: Layout) -> None:
    """Fail while nova's PCI tracker still holds a device for a server."""
    assert {d["status"] for d in tracked_pci_devices(layout)} == {"available"}


def _delete_servers(conn: Any, servers: list[Any]) -> None:
    """Delete servers and wait until each has gone."""
    for server in servers:
        conn.compute.delete_server(server, ignore_missing=True)
    for server in servers:
        conn.compute.wait_for_delete(server, interval=1, wait=SERVER_TIMEOUT_S)
    servers.clear()
