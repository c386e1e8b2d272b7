"""How the PC reaches the cluster's VMs: per node the address it answers on from here, the login user, the
platform's SSH key and the known_hosts file that holds the VMs' host keys (strict checking, always)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from affordml.errors import RunError

API_PORT = 6443


@dataclass(frozen=True)
class NodeAccess:
    name: str  # the inventory name, which Kubespray also gives the Kubernetes node
    role: str  # control-plane | worker
    address: str  # reachable from the PC (a floating IP, or the fixed address where the PC has a route)
    user: str
    key: Path
    known_hosts: Path
    port: int = 22


@dataclass(frozen=True)
class ClusterAccess:
    nodes: tuple[NodeAccess, ...]

    @property
    def control_plane(self) -> NodeAccess:
        return next(n for n in self.nodes if n.role == "control-plane")

    @property
    def api_url(self) -> str:
        return f"https://{self.control_plane.address}:{API_PORT}"

    def node(self, name: str) -> NodeAccess:
        return next(n for n in self.nodes if n.name == name)


def cluster_access(
    vms: list[tuple[str, str]], addresses: dict[str, str], user: str, key: Path, known_hosts: Path
) -> ClusterAccess:
    """vms: (name, role) from the plan; addresses: name -> reachable address (from the cloud phase's record)."""
    nodes = []
    for name, role in vms:
        address = addresses.get(name)
        if not address:
            raise RunError(
                f"the cloud phase recorded no address for VM {name}",
                "run `affordml init phase cloud` so that every planned VM exists, then run again",
            )
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise RunError(
                f"the cloud phase recorded {address!r} for VM {name}, which is not an IP address",
                "run `affordml init phase cloud` again",
            ) from None
        nodes.append(NodeAccess(name, role, address, user, key, known_hosts))
    if sum(1 for n in nodes if n.role == "control-plane") != 1:
        raise RunError(
            f"the plan has {sum(1 for n in nodes if n.role == 'control-plane')} control-plane VMs; Kubespray is set "
            "up for exactly one",
            "report this as a bug in affordml's planner (`affordml plan --json`)",
        )
    return ClusterAccess(tuple(nodes))
