"""The connection half of Kubespray's inventory, written per run beside ansible-runner's artifacts.

env/kubespray/ (rendered from the plan) holds the groups, the nodes' cluster addresses and the group_vars; this
file adds how to reach each VM from the PC, which is known only once the cloud phase has run. Ansible merges the
two inventories. Every string that is not ours is tagged !unsafe so that Ansible never templates it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from affordml.kube.access import ClusterAccess


class Unsafe(str):
    """A value Ansible must take as data."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value)))


def ssh_common_args(known_hosts: Path) -> str:
    return (
        f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes "
        "-o ConnectTimeout=15 -o ConnectionAttempts=1"
    )


def connection_inventory(access: ClusterAccess) -> dict:
    """ansible_host per VM (its reachable address), user, key, strict host keys, become; the reachable API
    address goes into the API server certificate (supplementary_addresses_in_ssl_keys)."""
    first = access.nodes[0]
    return {
        "all": {
            "vars": {
                "ansible_user": Unsafe(first.user),
                "ansible_ssh_private_key_file": Unsafe(first.key),
                "ansible_ssh_common_args": Unsafe(ssh_common_args(first.known_hosts)),
                "ansible_become": True,
                "supplementary_addresses_in_ssl_keys": [access.control_plane.address],
            },
            "hosts": {n.name: {"ansible_host": n.address, "ansible_port": n.port} for n in access.nodes},
        }
    }


def write_connection_inventory(path: Path, access: ClusterAccess) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by affordml for one Kubespray run: how to reach the VMs from this PC.\n"
        + yaml.dump(connection_inventory(access), Dumper=_Dumper, sort_keys=False)
    )
    return path
