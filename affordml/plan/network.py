"""Which NIC does what, and the address ranges (pure)."""

from __future__ import annotations

import ipaddress

from affordml.config.model import Network
from affordml.errors import PlanError
from affordml.facts.model import HostFacts, Nic

VETH_EXTERNAL = "affordml-ext0"  # neutron's end of the veth pair created on a one-NIC PC


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
    ext_subnet = ipaddress.ip_network(net.external_subnet) if net.external_subnet else iface.network
    first, last = _floating_range(ext_subnet, net.floating_ip_count)
    return {
        "management_interface": mgmt.name,
        "management_address": str(iface.ip),
        "external_interface": external,
        "external_created": "yes" if external == VETH_EXTERNAL else "no",
        "vm_subnet": net.vm_subnet,
        "external_subnet": str(ext_subnet),
        "floating_range": f"{first}-{last}",
    }


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


def _external(facts: HostFacts, wanted: str, mgmt: Nic) -> str:
    if wanted == "create":
        return VETH_EXTERNAL
    if wanted == "auto":
        spare = [
            n for n in facts.physical_nics if n.name != mgmt.name and n.has_link and not n.addresses and not n.bridge
        ]
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


def _floating_range(subnet, count: int) -> tuple[str, str]:
    """The top `count` usable addresses of the subnet (keep them out of your router's DHCP pool)."""
    hosts = subnet.num_addresses - 2
    if count > hosts - 2:
        raise PlanError(
            f"network.floating_ip_count: {count} does not fit in {subnet}",
            "lower it or use a larger network.external_subnet",
        )
    last = subnet.broadcast_address - 1
    return str(last - (count - 1)), str(last)
