"""What the platform created, read back from the cloud (status), and its removal (destroy; the lifecycle layer,
affordml/lifecycle/destroy.py, runs it as the cloud phase's destroy action).

Only what carries the platform's marks is touched: names with the affordml- prefix in the affordml project,
servers with metadata affordml=1, images with property affordml=1, flavors named affordml.* with the platform's
description, and the external network affordml-public tagged affordml.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from affordml.cloud import names
from affordml.cloud.diagnose import pci_count
from affordml.project import Project

DELETE_TIMEOUT_S = 300


def server_rows(conn, project_id: str | None = None) -> list[dict]:
    """The platform's servers with flavor, GPUs (from the flavor's PCI alias) and addresses."""
    query = {"all_projects": True, "project_id": project_id} if project_id else {}
    rows = []
    for server in conn.compute.servers(details=True, **query):
        if not names.is_platform_server(server):
            continue
        meta = server.metadata
        flavor = server.flavor
        specs = dict(getattr(flavor, "extra_specs", None) or {})
        alias = specs.get("pci_passthrough:alias")
        addresses = [a["addr"] for net in (server.addresses or {}).values() for a in net if a.get("addr")]
        rows.append(
            {
                "name": server.name,
                "vm": meta.get(names.VM_KEY) or names.vm_of_server(server.name),
                "id": server.id,
                "status": server.status,
                "flavor": getattr(flavor, "original_name", None) or getattr(flavor, "name", None),
                "vcpus": getattr(flavor, "vcpus", None),
                "ram_mib": getattr(flavor, "ram", None),
                "disk_gib": getattr(flavor, "disk", None),
                "gpus": pci_count(alias),
                "pci_alias": alias,
                "addresses": addresses,
            }
        )
    return sorted(rows, key=lambda r: r["name"])


def rows_from_state(record: dict) -> list[dict]:
    """The VMs as the state recorded them. state.json is a file a person can edit: a field of the wrong kind shows
    as unknown ("?") rather than stopping `status`."""
    servers = record.get("servers") if isinstance(record, dict) else None
    rows = []
    for vm, server in sorted((servers if isinstance(servers, dict) else {}).items(), key=lambda item: str(item[0])):
        server = server if isinstance(server, dict) else {}
        gpus = server.get("gpus")
        rows.append(
            {
                "name": _recorded_text(server.get("name")),
                "vm": str(vm),
                "id": _recorded_text(server.get("id")),
                "status": f"{_recorded_text(server.get('status')) or '?'} (recorded)",
                "flavor": _recorded_text(server.get("flavor")),
                "gpus": len(gpus) if isinstance(gpus, list) else "?",
                "pci_alias": _recorded_text(server.get("pci_alias")),
                "addresses": [
                    a for a in (server.get("address"), server.get("floating_ip")) if isinstance(a, str) and a
                ],
            }
        )
    return rows


def _delete_zones(compute, gone: Callable[[str], None], say: Callable[[str], None]) -> None:
    """The host aggregates (availability zones) the cloud phase made, marked affordml=1: hosts out, then the
    aggregate (nova refuses to delete one that still holds hosts). One named like ours but unmarked is someone's."""
    for aggregate in compute.aggregates():
        if not aggregate.name.startswith(names.PREFIX):
            continue
        if (aggregate.metadata or {}).get(names.MARK_KEY) != names.MARK_VALUE:
            say(f"[destroy] kept host aggregate {aggregate.name}: it is not marked as affordml's")
            continue
        for host in aggregate.hosts or ():
            compute.remove_host_from_aggregate(aggregate, host)
        compute.delete_aggregate(aggregate, ignore_missing=True)
        gone(f"host aggregate {aggregate.name} (availability zone {aggregate.availability_zone})")


def _recorded_text(value) -> str | None:
    return value if isinstance(value, str) else None if value is None else "?"


def destroy(admin, say: Callable[[str], None], project: Project | None = None) -> list[str]:
    """Delete everything the platform created in this cloud; returns what was removed, in order."""
    removed: list[str] = []

    def gone(what: str) -> None:
        removed.append(what)
        say(f"[destroy] removed {what}")

    identity, compute, network, image = admin.identity, admin.compute, admin.network, admin.image
    proj = identity.find_project(names.PROJECT, domain_id="default")
    pid = proj.id if proj is not None else None
    if pid:
        servers = [s for s in compute.servers(all_projects=True, project_id=pid) if names.is_platform_server(s)]
        for server in servers:
            compute.delete_server(server, ignore_missing=True)
        for server in servers:
            compute.wait_for_delete(server, interval=1, wait=DELETE_TIMEOUT_S)
        _wait_unlisted(compute, pid, {s.id for s in servers})
        for server in servers:
            gone(f"server {server.name}")
        _delete_network_side(network, pid, gone)
        user = identity.find_user(names.USER, domain_id="default")
        if user is not None and compute.find_keypair(names.KEYPAIR, user_id=user.id) is not None:
            compute.delete_keypair(names.KEYPAIR, user_id=user.id, ignore_missing=True)
            gone(f"keypair {names.KEYPAIR}")
        for img in image.images(owner=pid):
            if img.name == names.IMAGE and (img.properties or {}).get(names.MARK_KEY) == names.MARK_VALUE:
                image.delete_image(img, ignore_missing=True)
                gone(f"image {img.name} ({img.id})")
    _delete_zones(compute, gone, say)
    for flavor in compute.flavors(details=True):
        if flavor.name.startswith(names.FLAVOR_PREFIX) and flavor.description == names.DESCRIPTION:
            compute.delete_flavor(flavor, ignore_missing=True)
            gone(f"flavor {flavor.name}")
    ext = network.find_network(names.EXTERNAL_NETWORK)
    if ext is not None and names.TAG in (ext.tags or []):
        if not [p for p in network.ports(network_id=ext.id) if p.device_owner != "network:dhcp"]:
            network.delete_network(ext, ignore_missing=True)
            gone(f"external network {names.EXTERNAL_NETWORK}")
        else:
            say(f"[destroy] kept external network {names.EXTERNAL_NETWORK}: something else still uses it")
    if pid:
        left = _not_ours(admin, pid)
        if left:
            say(f"[destroy] kept project {names.PROJECT} and user {names.USER}: it still holds {', '.join(left)}")
        else:
            for group in network.security_groups(project_id=pid):
                network.delete_security_group(group, ignore_missing=True)
            if user is not None and user.description == names.DESCRIPTION:
                identity.delete_user(user, ignore_missing=True)
                gone(f"user {names.USER}")
            identity.delete_project(proj, ignore_missing=True)
            gone(f"project {names.PROJECT}")
    if project is not None:
        from affordml.cloud.connect import forget_user_cloud
        from affordml.cloud.hostkeys import forget_host_keys

        forget_user_cloud(project)
        for vm in forget_host_keys(project, keep=set()):
            gone(f"host key of {vm} (known_hosts line and secrets/ssh/hosts files)")
    return removed


def _delete_network_side(network, pid: str, gone: Callable[[str], None]) -> None:
    ours = names.PREFIX
    for ip in network.ips(project_id=pid):
        if ip.description == names.DESCRIPTION:
            network.delete_ip(ip, ignore_missing=True)
            gone(f"floating IP {ip.floating_ip_address}")
    for port in network.ports(project_id=pid):
        if port.name and port.name.startswith(ours) and not port.device_owner:
            network.delete_port(port, ignore_missing=True)
            gone(f"port {port.name}")
    for router in network.routers(project_id=pid):
        if router.name != names.ROUTER:
            continue
        for port in network.ports(device_id=router.id):
            if port.device_owner == "network:router_interface":
                for ip in port.fixed_ips or []:
                    # positional: openstacksdk 4.x renamed the keyword
                    network.remove_interface_from_router(router, ip["subnet_id"])
        if router.external_gateway_info:
            network.update_router(router, external_gateway_info={})
        network.delete_router(router, ignore_missing=True)
        gone(f"router {router.name}")
    for net in network.networks(project_id=pid):
        if net.name == names.NETWORK:
            _wait_ports_gone(network, net.id)
            network.delete_network(net, ignore_missing=True)
            gone(f"network {net.name} and its subnet")
    for group in network.security_groups(project_id=pid):
        if group.name == names.SECURITY_GROUP:
            network.delete_security_group(group, ignore_missing=True)
            gone(f"security group {group.name}")


def _wait_unlisted(compute, pid: str, ids: set[str]) -> None:
    """wait_for_delete returns on status DELETED, while nova still lists the server until its compute host has
    released it (its PCI devices too); the project is only empty once the list no longer shows them."""
    deadline = time.monotonic() + DELETE_TIMEOUT_S
    while time.monotonic() < deadline:
        if not ids & {s.id for s in compute.servers(all_projects=True, project_id=pid)}:
            return
        time.sleep(1)


def _wait_ports_gone(network, network_id: str) -> None:
    """Nova releases a server's ports a moment after the server is gone."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        busy = [p for p in network.ports(network_id=network_id) if p.device_owner not in ("network:dhcp", "")]
        if not busy:
            return
        time.sleep(1)


def _not_ours(admin, pid: str) -> list[str]:
    left = [f"server {s.name}" for s in admin.compute.servers(all_projects=True, project_id=pid)]
    left += [f"network {n.name}" for n in admin.network.networks(project_id=pid)]
    left += [f"router {r.name}" for r in admin.network.routers(project_id=pid)]
    left += [f"image {i.name}" for i in admin.image.images(owner=pid)]
    return left


def cloud_status(project: Project, record: dict, api_timeout: float = 10) -> dict:
    """The platform's servers from the API when it answers, else as the last cloud phase recorded them."""
    from affordml.cloud.connect import admin_source, clouds_yaml, connect_cloud, user_cloud_exists

    try:
        if user_cloud_exists(project):
            rows = server_rows(connect_cloud(clouds_yaml(project), names.USER_CLOUD, api_timeout))
        else:
            source = admin_source(project)
            admin = connect_cloud(source.path, source.cloud, api_timeout)
            proj = admin.identity.find_project(names.PROJECT, domain_id="default")
            rows = server_rows(admin, proj.id) if proj is not None else []
    except Exception as exc:  # noqa: BLE001 - any failure to reach the cloud falls back to the saved state
        reason = exc.one_line() if hasattr(exc, "one_line") else f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        return {"source": "state", "api_error": reason[:300], "servers": rows_from_state(record)}
    recorded = record.get("servers") or {}
    for row in rows:
        row["planned_gpus"] = list((recorded.get(row["vm"]) or {}).get("gpus") or [])
    return {"source": "api", "servers": rows}
