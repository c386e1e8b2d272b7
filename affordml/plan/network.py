"""Which NIC does what, and the address ranges (pure)."""

from __future__ import annotations

import ipaddress

from affordml.config.model import Network
from affordml.errors import PlanError
from affordml.facts.model import HostFacts, Nic

VETH_EXTERNAL = "affordml-ext0"  # neutron's end of the veth pair created on a one-NIC PC
NAT_SUBNET = "172.24.4.0/24"  # neutron's external network behind a one-NIC PC; the PC is its .1 and masquerades it


def plan_network(facts: HostFacts, net: Network) -> dict[str, str]:
    mgmt = _management(facts, net.management_interface)
    external = _external(facts, net.external_interface, mgmt)
    address = next((a for a in mgmt.addresses if ":" not in a), None)
    if address is None:
        raise PlanError(
            f"network.management_interface: {mgmt.name} has no IPv4 address",
            "give it an address (DHCP or static) or choose another NIC",
        )
    iface = ipaddress.ip_interface(address)
    vm_subnet = ipaddress.ip_network(net.vm_subnet)
    if external == VETH_EXTERNAL:
        # One NIC: neutron's external network is a private subnet behind this PC, which routes and masquerades it.
        ext_subnet = ipaddress.ip_network(net.external_subnet or NAT_SUBNET)
        _refuse_overlap(ext_subnet, {"the management subnet": iface.network, "network.vm_subnet": vm_subnet})
        gateway = ext_subnet.network_address + 1
        first, last = _floating_after_gateway(ext_subnet, net.floating_ip_count)
        nat, reachable = "yes", "this PC only"
    else:
        # A second NIC on the LAN: floating IPs are LAN addresses, the LAN's router is the gateway.
        ext_subnet = ipaddress.ip_network(net.external_subnet) if net.external_subnet else iface.network
        _refuse_overlap(ext_subnet, {"network.vm_subnet": vm_subnet})
        gateway = _lan_gateway(facts.default_gateway, ext_subnet)
        taken = {gateway} | ({iface.ip} if iface.ip in ext_subnet else set())
        first, last = _floating_at_top(ext_subnet, net.floating_ip_count, taken)
        nat, reachable = "no", "the LAN"
    floating = {
        ipaddress.ip_address(a) for a in range(int(ipaddress.ip_address(first)), int(ipaddress.ip_address(last)) + 1)
    }
    vip = _internal_vip(iface, net.internal_vip, facts.default_gateway, floating)
    return {
        "management_interface": mgmt.name,
        "management_address": str(iface.ip),
        "internal_vip": str(vip),
        "keepalived_router_id": str(_router_id(iface)),
        "external_interface": external,
        "external_created": "yes" if external == VETH_EXTERNAL else "no",
        "vm_subnet": net.vm_subnet,
        "external_subnet": str(ext_subnet),
        "external_gateway": str(gateway),
        "external_nat": nat,
        "floating_range": f"{first}-{last}",
        "floating_reachable_from": reachable,
    }


def _internal_vip(iface, wanted: str, default_gateway: str | None, floating: set) -> ipaddress.IPv4Address:
    """kolla's internal VIP: haproxy and keepalived on, a free address on the management network beside the
    host's own (the all-in-one layout kolla-ansible's CI deploys; the VIP equal to the host's address would put
    ProxySQL and MariaDB on the same port). Chosen from the top of the subnet, below anything already taken."""
    taken = {iface.ip, iface.network.network_address, iface.network.broadcast_address} | floating
    if default_gateway:
        taken.add(ipaddress.ip_address(default_gateway))
    if wanted != "auto":
        vip = ipaddress.ip_address(wanted)
        if vip not in iface.network or vip in taken:
            raise PlanError(
                f"network.internal_vip: {vip} is not a free address of the management network {iface.network}",
                'choose an unused address in that network, outside the DHCP pool and the floating IPs, or "auto"',
            )
        return vip
    candidate = iface.network.broadcast_address - 1
    while candidate > iface.network.network_address:
        if candidate not in taken:
            return candidate
        candidate -= 1
    raise PlanError(
        f"network.internal_vip: the management network {iface.network} has no free address for kolla's VIP",
        "give the management NIC a larger subnet, or set network.internal_vip",
    )


def _router_id(iface) -> int:
    """keepalived's VRRP router id (1-255; kolla's default is 51 for every deployment): the host's address
    modulo 255, plus one, so that two affordml PCs on one /24 never join each other's VRRP group."""
    return int(iface.ip) % 255 + 1


def _refuse_overlap(subnet, others: dict) -> None:
    for name, other in others.items():
        if subnet.overlaps(other):
            raise PlanError(
                f"network.external_subnet: {subnet} overlaps {name} {other}",
                "set network.external_subnet to a private network used nowhere else (for example 172.24.4.0/24)",
            )


def _lan_gateway(default_gateway: str | None, subnet):
    """The LAN's router when it is in the external subnet; else the subnet's first host address."""
    if default_gateway:
        gateway = ipaddress.ip_address(default_gateway)
        if gateway in subnet:
            return gateway
    return subnet.network_address + 1


def _management(facts: HostFacts, wanted: str) -> Nic:
    if wanted == "auto":
        nic = facts.default_nic
        if nic is None:
            raise PlanError(
                "network.management_interface: no NIC carries the default route",
                "connect the PC to your network, or name the NIC in network.management_interface",
            )
        return nic
    nic = next((n for n in facts.nics if n.name == wanted), None)
    if nic is None:
        raise PlanError(
            f"network.management_interface: {wanted!r} is not a NIC of this host",
            f"use one of: {', '.join(n.name for n in facts.nics) or '(none found)'}",
        )
    return nic


def spare_nics(facts: HostFacts, mgmt: Nic | None) -> list[Nic]:
    """Wired NICs neutron may take whole: up, without an address, not the management NIC, not a bridge."""
    return [
        n
        for n in facts.physical_nics
        if (mgmt is None or n.name != mgmt.name) and n.has_link and not n.addresses and not n.bridge
    ]


def _external(facts: HostFacts, wanted: str, mgmt: Nic) -> str:
    if wanted == "create":
        return VETH_EXTERNAL
    if wanted == "auto":
        spare = spare_nics(facts, mgmt)
        return spare[0].name if spare else VETH_EXTERNAL
    if wanted == mgmt.name:
        raise PlanError(
            f"network.external_interface: {wanted} is the management NIC; neutron would take its address",
            'choose a second NIC, or "create" for a one-NIC PC',
        )
    nic = next((n for n in facts.nics if n.name == wanted), None)
    if nic is None:
        raise PlanError(
            f"network.external_interface: {wanted!r} is not a NIC of this host",
            'name an existing NIC, or "create" for a one-NIC PC',
        )
    if nic.addresses:
        raise PlanError(
            f"network.external_interface: {wanted} has an IP address; neutron needs it bare",
            'remove its address, or use "create"',
        )
    return nic.name


def _floating_after_gateway(subnet, count: int) -> tuple[str, str]:
    """`count` addresses right after the gateway (.1): .2 on."""
    hosts = subnet.num_addresses - 2
    if count > hosts - 1:
        raise PlanError(
            f"network.floating_ip_count: {count} does not fit in {subnet} beside its gateway",
            "lower it or use a larger network.external_subnet",
        )
    first = subnet.network_address + 2
    return str(first), str(first + (count - 1))


def _floating_at_top(subnet, count: int, taken: set) -> tuple[str, str]:
    """The top `count` usable addresses of the subnet below any taken one (keep them out of the router's DHCP pool)."""
    last = subnet.broadcast_address - 1
    lowest = subnet.network_address + 1
    while True:
        if int(last) - int(lowest) + 1 < count:
            raise PlanError(
                f"network.floating_ip_count: {count} does not fit in {subnet}",
                "lower it or use a larger network.external_subnet",
            )
        first = last - (count - 1)
        inside = [a for a in taken if first <= a <= last]
        if not inside:
            return str(first), str(last)
        last = min(inside) - 1
