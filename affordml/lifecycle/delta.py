"""What a PC adds to the platform, as lines: the plan delta `affordml add-node --plan` shows before any change."""

from __future__ import annotations

from collections.abc import Callable

from affordml.plan.model import NodePlan


def delta_lines(node: NodePlan) -> list[str]:
    lines = [
        f"{node.host} ({node.hostname}, {node.os}): {node.host_vcpus} threads, {node.host_ram_gib} GiB RAM, "
        f"{node.host_disk_free_gib} GiB free; management {node.management_interface} {node.management_address}",
        "  kept by the PC: "
        + ", ".join(f"{r.name} {r.vcpus} vCPU/{r.ram_gib} GiB/{r.disk_gib} GiB" for r in node.reservations),
    ]
    for vm in node.vms:
        gpus = f", GPUs {', '.join(vm.gpus)}" if vm.gpus else ", no GPU"
        lines.append(
            f"  + VM {vm.name} ({vm.role}, {vm.vcpus} vCPU, {vm.ram_gib} GiB, {vm.disk_gib} GiB, flavor {vm.flavor}"
            f"{gpus}) in availability zone {node.availability_zone}"
        )
    for gpu in node.gpus:
        lines.append(
            f"  + GPU {gpu.address} {gpu.name} -> {gpu.vm}: {gpu.sharing.mode}, {gpu.sharing.slots} slot(s), "
            f"nova alias {gpu.nova_alias}"
        )
    if node.vfio_ids or node.vfio_addresses:
        lines.append(f"  vfio-pci on {node.host}: ids {', '.join(node.vfio_ids) or '-'}")
    lines += [f"  note: {w.message}" for w in node.warnings]
    return lines


def print_delta(node: NodePlan, say: Callable[[str], None]) -> None:
    say("[add-node] what this PC adds to the platform:")
    for line in delta_lines(node):
        say(line)
