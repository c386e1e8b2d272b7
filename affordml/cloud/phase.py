"""The `cloud` phase: from the plan to ACTIVE Kubernetes VMs, recorded in the run state for later phases."""

from __future__ import annotations

import time
from pathlib import Path

from affordml.cloud import names
from affordml.cloud.carve import Carver, CloudOptions
from affordml.cloud.faults import CloudUnreachable, message_of
from affordml.cloud.spec import cloud_spec, user_data


def options_from_context(ctx) -> CloudOptions:
    """The cloud section of affordml.yaml, and `init --yes-i-really-really-mean-it` (replace or delete VMs)."""
    return CloudOptions(
        image=ctx.config.cloud.guest_image,
        external_network=ctx.config.cloud.external_network,
        confirm=bool(getattr(ctx, "confirm", False)),
    )


def run_cloud_phase(ctx, options: CloudOptions | None = None) -> dict:
    options = options or options_from_context(ctx)
    spec = cloud_spec(ctx.plan, ctx.config.hosts[0].name)
    if ctx.dry_run:
        for server in spec.servers:
            ctx.say(
                f"[cloud] would ensure server {server.name} ({server.flavor}, {server.address}) "
                f"in zone {server.availability_zone} and a floating IP for it"
            )
        return {}
    started = time.monotonic()
    from affordml.cloud.connect import (
        admin_source,
        clouds_yaml,
        connect_cloud,
        platform_password,
        user_entry,
        write_user_cloud,
    )

    source = admin_source(ctx.project, options.admin_clouds_yaml, options.admin_cloud)
    admin = connect_cloud(source.path, source.cloud)
    authorize(admin, f"the admin cloud {source.cloud} in {source.path}")
    carver = Carver(admin, spec, options, ctx.say)
    project = carver.ensure_project()
    password = platform_password(ctx.project)
    user = carver.ensure_user(project, password)
    path, written = write_user_cloud(ctx.project, user_entry(admin, names.PROJECT, names.USER, password))
    if written:
        ctx.say(f"[cloud] wrote the {names.USER_CLOUD} cloud to {path} (mode 0600)")
    carver.user = connect_cloud(clouds_yaml(ctx.project), names.USER_CLOUD)
    if not authorize(carver.user, f"the platform user {names.USER}", quiet=True):
        carver.reset_password(user, password)
        carver.user = connect_cloud(clouds_yaml(ctx.project), names.USER_CLOUD)
        authorize(carver.user, f"the platform user {names.USER}")
    carver.refuse_destruction_early()
    carver.ensure_quotas(project)
    carver.ensure_flavors()
    from affordml.cloud.zones import ensure_zones

    carver.zones = ensure_zones(carver)
    external = carver.ensure_external_network()
    carver.ensure_network(external)
    carver.ensure_security_group()
    from affordml.cloud.keys import ensure_ssh_key

    private_key, public_key, _ = ensure_ssh_key(ctx.project)
    carver.ensure_keypair(public_key)
    image = carver.ensure_image(lambda: _image_file(ctx, options))
    carver.ensure_servers(image, lambda server: _user_data_with_host_key(ctx.project, server))
    carver.ensure_floating_ips()
    out = carver.out
    _record_host_keys(ctx, out.servers)
    record = {
        "project": names.PROJECT,
        "project_id": out.project_id,
        "user": names.USER,
        "clouds_yaml": str(clouds_yaml(ctx.project)),
        "admin_clouds_yaml": str(source.path),  # destroy may use a system-wide file only when this says so
        "cloud": names.USER_CLOUD,
        "ssh_key": str(private_key),
        "image_id": out.image_id,
        "network_id": out.network_id,
        "subnet_id": out.subnet_id,
        "router_id": out.router_id,
        "external_network_id": out.external_network_id,
        "security_group_id": out.security_group_id,
        "flavors": out.flavors,
        "servers": out.servers,
        "changes": len(out.changes),
    }
    ctx.state.data["cloud"] = record
    took = time.monotonic() - started
    summary = f"{len(out.changes)} change(s)" if out.changes else "nothing changed"
    reach = ", ".join(f"{vm} {s['floating_ip']}" for vm, s in sorted(out.servers.items()))
    ctx.say(f"[cloud] {len(out.servers)} server(s) ACTIVE ({reach}), {summary} ({took:.1f}s)")
    return {"changes": out.changes, "record": record}


def _user_data_with_host_key(project, server) -> str:
    """Called only for a server about to be created: a replaced VM gets a new host key, a kept one keeps its."""
    from affordml.cloud.hostkeys import cloud_config, new_host_key

    return user_data(server, cloud_config(new_host_key(project, server.vm)))


def _record_host_keys(ctx, servers: dict[str, dict]) -> None:
    """Trust each VM's host key for its floating IP and tenant address; forget the keys of VMs that are gone."""
    from affordml.cloud.hostkeys import forget_host_keys, record_known_host, recorded_public_key

    for vm, server in sorted(servers.items()):
        public = recorded_public_key(ctx.project, vm)
        if public is None:
            ctx.say(
                f"[cloud] VM {vm} was created without a host key from affordml, so {ctx.project.known_hosts} "
                "cannot vouch for it; delete the server and run `affordml init` to carve it again, or add its key "
                "there after checking it on the VM's console"
            )
            continue
        addresses = [a for a in (server.get("floating_ip"), server.get("address")) if a]
        done = record_known_host(ctx.project, vm, addresses, public)
        server["host_key"] = public
        if done != "kept":
            ctx.say(f"[cloud] known_hosts: {done} the host key of {vm} for {', '.join(addresses)}")
    for vm in forget_host_keys(ctx.project, keep=set(servers)):
        ctx.say(f"[cloud] known_hosts: removed the host key of {vm} (no longer in the plan)")


def authorize(conn, what: str, quiet: bool = False) -> bool:
    """Get a token; False (quiet) or a one-line error when the credentials or the endpoint fail."""
    from openstack import exceptions

    try:
        conn.authorize()
    except exceptions.HttpException as exc:
        if quiet and getattr(exc, "status_code", None) == 401:
            return False
        raise CloudUnreachable(
            f"OpenStack refused {what}: {message_of(exc)}", "check the credentials and that keystone runs"
        ) from None
    except Exception as exc:  # noqa: BLE001 - keystoneauth connection errors have no common base here
        if quiet and "401" in str(exc):
            return False
        raise CloudUnreachable(
            f"cannot reach OpenStack with {what}: {type(exc).__name__}: {message_of(exc)}",
            "check that the openstack phase finished and that keystone answers (`affordml status`)",
        ) from None
    return True


def _image_file(ctx, options: CloudOptions) -> Path:
    from affordml.cloud.image import resolve_source

    if not options.image:  # the lock's image: pinned, checked against SHA256SUMS, from the mirror if one is set
        store = ctx.artifact_store()
        ctx.say(f"[cloud] guest image from {store.mirror or store.artifact('guest-image').url}")
        return store.fetch("guest-image")
    ctx.say(f"[cloud] guest image from {options.image}")
    return resolve_source(ctx.project, options.image, ctx.lock.get("guest_image", {}))
