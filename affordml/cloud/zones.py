"""Availability zones, one per PC (admin): a host aggregate named like its zone holds that PC's nova-compute, and
every VM of the plan asks for the zone of the PC that holds its GPUs and disk (nova's own way: the scheduler keeps
a server that names a zone to that zone's aggregate; one that names none may land on any PC).

nova's rules, which the zone plan follows: a host is in one availability zone at most (it may be in other
aggregates without one); a host in none is in the default zone `nova`, which no aggregate narrows; and nova moves
no host that holds instances into another zone (nor a running server into another zone). So a PC whose compute
already holds instances outside a zone keeps them, and its VMs carry no zone until that compute is empty."""

from __future__ import annotations

from dataclasses import dataclass

from affordml.cloud import names
from affordml.cloud.faults import CloudError
from affordml.cloud.spec import ZoneSpec


@dataclass(frozen=True)
class Aggregate:
    """What the zone plan reads of one nova host aggregate."""

    name: str
    availability_zone: str | None
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class ZoneStep:
    """What the carve does for one PC's zone, and the zone its VMs then ask for (None: no zone)."""

    zone: ZoneSpec
    effective: str | None
    create: bool = False  # create the aggregate with its availability zone
    add_host: bool = False  # add the PC's compute host to it
    kept: str = ""  # what stays as it is, and why (said, not a change)


def plan_zones(
    zones: tuple[ZoneSpec, ...], compute_hosts: set[str], aggregates: list[Aggregate], instances: dict[str, int]
) -> list[ZoneStep]:
    """Pure: the platform's zones against nova's compute hosts, aggregates and instances per host."""
    by_name = {a.name: a for a in aggregates}
    zone_of_host = {h: a.availability_zone for a in aggregates if a.availability_zone for h in a.hosts}
    planned_hosts = {z.compute_host for z in zones}
    steps = []
    for zone in zones:
        _refuse_unknown_host(zone, compute_hosts)
        ours = by_name.get(zone.name)
        _refuse_foreign_aggregate(zone, ours)
        current = zone_of_host.get(zone.compute_host)
        if current == zone.name:
            steps.append(ZoneStep(zone, zone.name))
        elif current is not None:
            steps.append(_other_zone(zone, current, zone_of_host, planned_hosts))
        elif instances.get(zone.compute_host, 0):
            steps.append(_busy(zone, instances[zone.compute_host], len(zones)))
        else:
            steps.append(ZoneStep(zone, zone.name, create=ours is None, add_host=True))
    return steps


def _refuse_unknown_host(zone: ZoneSpec, compute_hosts: set[str]) -> None:
    if zone.compute_host in compute_hosts:
        return
    fix = (
        "run `affordml init` again: its openstack phase deploys nova-compute on the first PC, which nova names "
        "after the PC's host name"
        if zone.first
        else f"run `affordml add-node {zone.config_host}` again: its openstack step deploys nova-compute there"
    )
    raise CloudError(
        f"hosts.{zone.config_host}: nova has no compute service on host {zone.compute_host!r} "
        f"(it knows {', '.join(sorted(compute_hosts)) or 'none'})",
        fix,
    )


def _refuse_foreign_aggregate(zone: ZoneSpec, ours: Aggregate | None) -> None:
    if ours is None:
        return
    if ours.availability_zone != zone.name:
        raise CloudError(
            f"host aggregate {zone.name} exists with availability zone {ours.availability_zone!r}",
            f"delete it (`openstack aggregate delete {zone.name}`) or set its zone to {zone.name}, then run again",
        )
    others = sorted(set(ours.hosts) - {zone.compute_host})
    if others:
        raise CloudError(
            f"host aggregate {zone.name} holds compute host(s) {', '.join(others)} besides "
            f"{zone.config_host}'s {zone.compute_host}: its VMs could land there",
            f"remove them (`openstack aggregate remove host {zone.name} HOST`), then run again",
        )


def _other_zone(zone: ZoneSpec, current: str, zone_of_host: dict[str, str], planned: set[str]) -> ZoneStep:
    """A host already in a zone that is not ours stays there (one zone per host); its VMs ask for that zone when
    it holds no other PC of the platform, otherwise for none."""
    shared = sorted(h for h in planned - {zone.compute_host} if zone_of_host.get(h) == current)
    if shared:
        return ZoneStep(
            zone,
            None,
            kept=f"{zone.config_host}'s compute host {zone.compute_host} stays in availability zone {current}, "
            f"which also holds {', '.join(shared)}: its VMs carry no zone",
        )
    return ZoneStep(
        zone,
        current,
        kept=f"{zone.config_host}'s compute host {zone.compute_host} stays in availability zone {current} "
        f"(nova keeps a host in one zone): its VMs are carved in {current}",
    )


def _busy(zone: ZoneSpec, count: int, pcs: int) -> ZoneStep:
    risk = (
        f"a VM of {zone.config_host} created again may land on another PC"
        if pcs > 1
        else "that matters only once another PC is added"
    )
    return ZoneStep(
        zone,
        None,
        kept=f"{zone.config_host}'s compute host {zone.compute_host} holds {count} instance(s) and no availability "
        f"zone; nova moves no host with instances into a zone, so zone {zone.name} waits and its VMs carry none "
        f"({risk}; `affordml destroy --only cloud`, then `affordml init`, carves them all in {zone.name})",
    )


def ensure_zones(carver) -> dict[str, str | None]:
    """Each PC's aggregate and zone as plan_zones says; returns each planned zone's effective zone for the
    servers. Re-runs change nothing; what stays as it is is said, not counted as a change."""
    if not carver.spec.zones:
        return {}
    compute = carver.admin.compute
    services = carver.call("list compute services", compute.services, binary="nova-compute")
    found = list(carver.call("list host aggregates", compute.aggregates))
    aggregates = [Aggregate(a.name, a.availability_zone or None, tuple(a.hosts or ())) for a in found]
    zoned = {h for a in aggregates if a.availability_zone for h in a.hosts}
    instances = {
        zone.compute_host: _instances_on(carver, zone.compute_host)
        for zone in carver.spec.zones
        if zone.compute_host not in zoned
    }
    by_name = {a.name: a for a in found}
    effective = {}
    for step in plan_zones(carver.spec.zones, {s.host for s in services}, aggregates, instances):
        _apply(carver, step, by_name)
        effective[step.zone.name] = step.effective
    return effective


def _instances_on(carver, host: str) -> int:
    """nova's own test before it moves a host into a zone: any instance on it, of any project."""
    servers = carver.call(
        f"list instances on {host}", carver.admin.compute.servers, details=False, all_projects=True, compute_host=host
    )
    return sum(1 for _ in servers)


def _apply(carver, step: ZoneStep, by_name: dict) -> None:
    zone = step.zone
    if step.kept:
        carver.say(f"[cloud] kept: {step.kept}")
    if step.create:
        by_name[zone.name] = carver.call(
            f"create host aggregate {zone.name}",
            carver.admin.compute.create_aggregate,
            name=zone.name,
            availability_zone=zone.name,
        )
        carver.call(
            f"mark host aggregate {zone.name} as affordml's",
            carver.admin.compute.set_aggregate_metadata,
            by_name[zone.name],
            {names.MARK_KEY: names.MARK_VALUE},
        )
        carver.changed(f"created host aggregate {zone.name} (availability zone {zone.name})")
    if step.add_host:
        carver.call(
            f"add {zone.compute_host} to aggregate {zone.name}",
            carver.admin.compute.add_host_to_aggregate,
            by_name[zone.name],
            zone.compute_host,
        )
        carver.changed(f"host aggregate {zone.name}: added {zone.config_host}'s compute host {zone.compute_host}")
