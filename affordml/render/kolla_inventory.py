"""kolla-ansible's inventory for the platform, made from the all-in-one inventory that the installed
kolla-ansible ships (so every group its playbooks name exists): its base groups point at our hosts.

kolla-ansible runs on the first host (the controller), so that host is `ansible_connection=local`;
the other PCs are compute hosts it reaches over SSH."""

from __future__ import annotations

import shlex
from pathlib import Path

from affordml.config.model import Host

CONTROLLER_GROUPS = ("control", "network", "storage", "monitoring", "deployment")
COMPUTE_GROUP = "compute"
TARGET = Path("kolla") / "inventory.ini"


def host_line(host: Host, controller: bool, extra: dict[str, str] | None = None) -> str:
    if controller:
        return f"{host.name} ansible_connection=local ansible_python_interpreter=/usr/bin/python3"
    # Ansible splits a host line like a shell: quoted, a value stays one value whatever it holds
    values = {"ansible_host": host.address, "ansible_user": host.user, "ansible_port": str(host.port)}
    values |= extra or {}
    words = [shlex.quote(host.name)] + [f"{key}={shlex.quote(value)}" for key, value in values.items()]
    if host.user != "root":
        words.append("ansible_become=true")
    return " ".join(words)


def kolla_inventory(all_in_one: str, hosts: list[Host], host_vars: dict[str, dict[str, str]] | None = None) -> str:
    """all_in_one's text with the host lines of its base groups replaced; every other line kept. host_vars: kolla
    variables of one compute PC (its network_interface: NIC names differ from PC to PC)."""
    controller, computes = hosts[0], hosts[1:]
    members = {group: [host_line(controller, True)] for group in CONTROLLER_GROUPS}
    members[COMPUTE_GROUP] = [host_line(controller, True)] + [
        host_line(h, False, (host_vars or {}).get(h.name)) for h in computes
    ]
    out = [f"# Made by affordml from kolla-ansible's all-in-one inventory: {controller.name} runs kolla-ansible."]
    section = None
    for line in all_in_one.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
            out.append(line)
            out += members.get(section, [])
            continue
        if section in members and stripped and not stripped.startswith("#"):
            continue  # a host line of a base group: replaced above
        out.append(line)
    return "\n".join(out) + "\n"


def platform_hosts(hosts: list[Host], plan) -> tuple[list[Host], dict[str, dict[str, str]]]:
    """The PCs kolla deploys to: the first one and those added with `affordml add-node` (a PC only listed in
    affordml.yaml joins when add-node brings it in), with each added PC's own NIC."""
    added = {n.host: n for n in plan.nodes}
    chosen = [hosts[0], *(h for h in hosts[1:] if h.name in added)]
    return chosen, {name: {"network_interface": n.management_interface} for name, n in added.items()}


def write_kolla_inventory(env_dir: Path, all_in_one: Path, hosts: list[Host], plan=None) -> Path:
    from affordml.safefile import write_text

    chosen, host_vars = platform_hosts(hosts, plan) if plan is not None else (hosts, {})
    text = kolla_inventory(all_in_one.read_text(), chosen, host_vars)
    return write_text(env_dir.parent, Path(env_dir.name) / TARGET, text, 0o644)
