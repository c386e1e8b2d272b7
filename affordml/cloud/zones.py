"""Availability zones for the PCs added with `affordml add-node` (admin): one host aggregate per PC, named like
its zone, holding that PC's nova-compute, so that the VMs the plan carves on that PC land there (nova's own way:
a server asks for the zone, the scheduler keeps it to the aggregate's hosts)."""

from __future__ import annotations

from affordml.cloud.faults import CloudError
from affordml.cloud.spec import ZoneSpec


def ensure_zones(carver) -> None:
    """Each zone's aggregate exists with its availability zone and holds its PC's compute host; re-runs change
    nothing. A PC whose nova-compute has not registered yet is refused in one line."""
    if not carver.spec.zones:
        return
    compute = carver.admin.compute
    hosts = {s.host for s in carver.call("list compute services", compute.services, binary="nova-compute")}
    aggregates = {a.name: a for a in carver.call("list host aggregates", compute.aggregates)}
    for zone in carver.spec.zones:
        if zone.compute_host not in hosts:
            raise CloudError(
                f"hosts.{zone.config_host}: nova has no compute service on host {zone.compute_host!r} "
                f"(it knows {', '.join(sorted(hosts)) or 'none'})",
                f"run `affordml add-node {zone.config_host}` again: its openstack step deploys nova-compute there",
            )
        aggregate = aggregates.get(zone.name) or _create(carver, zone)
        if aggregate.availability_zone != zone.name:
            raise CloudError(
                f"host aggregate {zone.name} exists with availability zone {aggregate.availability_zone!r}",
                f"delete it (`openstack aggregate delete {zone.name}`) or set its zone to {zone.name}, then run again",
            )
        if zone.compute_host not in (aggregate.hosts or []):
            carver.call(
                f"add {zone.compute_host} to aggregate {zone.name}",
                compute.add_host_to_aggregate,
                aggregate,
                zone.compute_host,
            )
            carver.changed(f"host aggregate {zone.name}: added compute host {zone.compute_host}")


def _create(carver, zone: ZoneSpec):
    created = carver.call(
        f"create host aggregate {zone.name}",
        carver.admin.compute.create_aggregate,
        name=zone.name,
        availability_zone=zone.name,
    )
    carver.changed(f"created host aggregate {zone.name} (availability zone {zone.name})")
    return created
