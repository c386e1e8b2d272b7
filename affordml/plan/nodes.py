"""The plan for a PC added to the platform (`affordml add-node`): its reservations, its worker VMs, its GPUs, and
the checks that refuse a PC that cannot join. Pure: facts + config + the platform's plan in, data out."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from affordml.config.model import Config
from affordml.errors import PlanError
from affordml.facts.model import HostFacts
from affordml.plan import passthrough, support
from affordml.plan.build import _assign, _vm, check_one_mode_per_vm, disk_free_gib
from affordml.plan.carve import budget_after, carve_workers
from affordml.plan.gpu_selection import passthrough_gpus, spread_over_workers
from affordml.plan.model import GIB, NodePlan, Plan, PlanWarning, Reservation


def node_reservations(vm_count: int) -> list[Reservation]:
    """A compute PC keeps less than the first one: no MariaDB, RabbitMQ or API services run on it."""
    return [
        Reservation("host OS", 1, 2, 20, "the PC's own system, SSH and updates"),
        Reservation(
            "OpenStack compute (kolla-ansible)", 1, 2, 20, "nova-compute, libvirt, Open vSwitch and their images"
        ),
        Reservation("hypervisor overhead", 0, max(1, (vm_count + 1) // 2), 0, "QEMU's own memory per VM"),
    ]


def make_node_plan(host: str, facts: HostFacts, config: Config, versions: dict[str, str], platform: Plan) -> NodePlan:
    refuse_unfit(host, facts, platform)
    gpus, warnings = passthrough_gpus(facts, config, support.driver_branch(versions))
    spread = spread_over_workers(gpus, max(1, len(gpus)))
    groups = [spread[i] for i in sorted(spread) if spread[i]] or [[]]
    reserved = node_reservations(len(groups))
    disk = disk_free_gib(facts)
    budget = budget_after(facts.cpu.threads, facts.memory_bytes // GIB, disk, reserved)
    sizes = carve_workers(budget, config.vms.workers, [bool(g) for g in groups], host)
    bits = facts.cpu.phys_address_bits
    vms = [_vm(f"{host}-worker-{i + 1}", "worker", size, groups[i], bits) for i, size in enumerate(sizes)]
    known = {(a["vendor_id"] + ":" + a["product_id"], a["device_type"]): a["name"] for a in platform.nova_aliases}
    aliases = _aliases(gpus, known)
    assignments = [_assign(g, vms, aliases, config) for g in gpus]
    check_one_mode_per_vm(assignments)
    vfio_ids, vfio_addresses = passthrough.vfio_binding(gpus, facts.pci_devices)
    nic = facts.default_nic
    assert nic is not None  # refuse_unfit checked it
    new_aliases = [
        {"name": name, "vendor_id": ids[:4], "product_id": ids[5:], "device_type": kind}
        for (ids, kind), name in sorted(aliases.items(), key=lambda item: item[1])
        if (ids, kind) not in known
    ]
    warnings += passthrough.address_space_warnings(vms, gpus, bits)
    if not gpus:
        warnings.append(PlanWarning("no-gpu", f"{host}: no NVIDIA GPU can be passed through: its VM is CPU-only"))
    return NodePlan(
        host=host,
        hostname=facts.hostname,
        os=_os(facts),
        host_vcpus=facts.cpu.threads,
        host_ram_gib=facts.memory_bytes // GIB,
        host_disk_free_gib=disk,
        management_interface=nic.name,
        management_address=_ipv4(nic).split("/")[0],
        reservations=tuple(reserved),
        vms=tuple(vms),
        gpus=tuple(assignments),
        vfio_ids=tuple(vfio_ids),
        vfio_addresses=tuple(vfio_addresses),
        nova_device_specs=tuple(passthrough.device_specs(gpus)),
        nova_aliases=tuple(new_aliases),
        warnings=tuple(warnings),
    )


def _aliases(gpus, known: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    """The platform's alias where the model is known; a model new to the platform gets gpu-<device id>[-<type>]."""
    out = {}
    for ids, kind in sorted({(g.ids, passthrough.device_type(g)) for g in gpus}):
        out[(ids, kind)] = known.get((ids, kind)) or f"gpu-{ids[5:]}" + ("" if kind == "type-PCI" else "-pf")
    return out


def refuse_unfit(host: str, facts: HostFacts, platform: Plan) -> None:
    """One line for a PC that cannot join: already the first PC, no address on the first PC's network."""
    if facts.hostname == platform.host:
        raise PlanError(
            f"hosts.{host}: this PC reports host name {facts.hostname!r}, the name of the first PC",
            "give the new PC its own host name (`hostnamectl set-hostname`), then run add-node again",
        )
    nic = facts.default_nic
    if nic is None or not _ipv4(nic):
        raise PlanError(
            f"hosts.{host}: no NIC with an IPv4 address carries the default route",
            "connect the new PC to the same network as the first PC, then run add-node again",
        )
    controller = ipaddress.ip_address(platform.network["management_address"])
    network = ipaddress.ip_interface(_ipv4(nic)).network
    if controller not in network:
        raise PlanError(
            f"hosts.{host}: its network {network} ({nic.name}) does not hold the first PC's management address "
            f"{controller}: nova-compute and Open vSwitch tunnels need that network",
            "connect the new PC to the first PC's network (same switch, same subnet), then run add-node again",
        )


def check_same_os(host: str, facts: HostFacts, first: HostFacts) -> None:
    if _os(facts) != _os(first):
        raise PlanError(
            f"hosts.{host}: it runs {facts.os.pretty_name} ({_os(facts)}), the first PC {first.os.pretty_name} "
            f"({_os(first)}); kolla-ansible deploys one release for one OS",
            f"install {first.os.pretty_name} on the new PC, then run add-node again",
        )


def with_nodes(platform: Plan, nodes: list[NodePlan]) -> Plan:
    """The platform's plan with the added PCs: their VMs after the first PC's (whose addresses stay), their GPUs,
    and the aliases they bring. The PCs platform already holds are replaced by nodes, not added twice."""
    first_vms = [v for v in platform.vms if platform.node_of_vm(v.name) is None]
    first_gpus = [g for g in platform.gpus if platform.node_of_vm(g.vm) is None]
    node_alias_names = {a["name"] for n in platform.nodes for a in n.nova_aliases}
    first_aliases = [a for a in platform.nova_aliases if a["name"] not in node_alias_names]
    return replace(
        platform,
        vms=[*first_vms, *(vm for n in nodes for vm in n.vms)],
        gpus=[*first_gpus, *(g for n in nodes for g in n.gpus)],
        nova_aliases=[*first_aliases, *_new_aliases(first_aliases, nodes)],
        nodes=list(nodes),
    )


def _new_aliases(first_aliases: list[dict], nodes: list[NodePlan]) -> list[dict]:
    names = {a["name"] for a in first_aliases}
    out = []
    for alias in (a for n in nodes for a in n.nova_aliases):
        if alias["name"] not in names:
            names.add(alias["name"])
            out.append(alias)
    return out


def _ipv4(nic) -> str:
    return next((a for a in nic.addresses if ":" not in a), "")


def _os(facts: HostFacts) -> str:
    return f"{facts.os.id} {facts.os.version_id}".strip()
