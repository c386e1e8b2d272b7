"""How the planned GPUs reach a VM: vfio-pci binding on the host, nova's device specs and device types, and the
guest address space their BARs need (pure)."""

from __future__ import annotations

import math

from affordml.facts.model import Gpu, PciDevice
from affordml.plan.model import GIB, PlanWarning, VmSpec

# QEMU's q35 guests get 40 physical address bits unless told otherwise; OVMF puts the 64-bit PCI window in them.
DEFAULT_GUEST_BITS = 40
LOW_MEMORY_HOLE = 4 * GIB  # the 32-bit PCI hole below 4 GiB moves that much RAM above it


def device_type(gpu: Gpu) -> str:
    """nova reports an SR-IOV-capable device as type-PF even with no VF enabled (nova/conf/pci.py)."""
    return "type-PF" if gpu.sriov_capable else "type-PCI"


def device_specs(gpus: list[Gpu]) -> list[dict]:
    """[pci] device_spec: each planned GPU by its address, so that an identical card the plan keeps on the host
    (excluded, or not isolatable) is never offered to nova. Companion functions are not offered at all."""
    return [{"vendor_id": g.vendor_id, "product_id": g.device_id, "address": g.address} for g in gpus]


def vfio_binding(gpus: list[Gpu], host_devices: list[PciDevice]) -> tuple[list[str], list[str]]:
    """(vendor:device ids for `vfio-pci ids=`, addresses to bind by driver_override).

    `ids=` claims every device with those ids, so it is used only where every such device on the host is one
    the plan passes through; the functions of a model that also has a card staying on the host go by address.
    """
    wanted = {f.address: f.ids for g in gpus for f in g.functions}
    by_ids: dict[str, set[str]] = {}
    for device in host_devices:
        by_ids.setdefault(device.ids, set()).add(device.address)
    ids, addresses = set(), []
    for address, device_ids in sorted(wanted.items()):
        if by_ids.get(device_ids, {address}) <= wanted.keys():
            ids.add(device_ids)
        else:
            addresses.append(address)
    return sorted(ids), addresses


def needed_bits(ram_gib: int, bar_bytes: list[int]) -> int:
    """Guest physical address bits for the VM's RAM, the 4 GiB hole and its GPUs' BARs.

    Each GPU's BARs are counted at the next power of two and twice over: a BAR is aligned to its own size, and
    the firmware places the 64-bit PCI window above RAM.
    """
    bars = sum(2 ** math.ceil(math.log2(b)) for b in bar_bytes if b > 0)
    return math.ceil(math.log2(ram_gib * GIB + LOW_MEMORY_HOLE + 2 * bars))


def guest_phys_bits(ram_gib: int, bar_bytes: list[int], host_bits: int | None) -> int | None:
    """`hw:maxphysaddr_bits` for a GPU VM, or None where the default 40 bits hold its RAM and BARs."""
    if not any(bar_bytes):
        return None
    bits = needed_bits(ram_gib, bar_bytes)
    if bits <= DEFAULT_GUEST_BITS:
        return None
    return min(bits, host_bits) if host_bits else bits


def address_space_warnings(vms: list[VmSpec], gpus: list[Gpu], host_bits: int | None) -> list[PlanWarning]:
    """Say so where the host CPU cannot give a VM the address space its GPUs' BARs need."""
    by_address = {g.address: g for g in gpus}
    warnings = []
    for vm in vms:
        bars = [by_address[a].bar_bytes for a in vm.gpus if a in by_address]
        if not any(bars) or not host_bits:
            continue
        bits = needed_bits(vm.ram_gib, bars)
        if bits > host_bits:
            warnings.append(
                PlanWarning(
                    "guest-address-space",
                    f"{vm.name}: its GPUs' BARs need {bits} physical address bits, the host CPU has {host_bits}; "
                    "the guest firmware may fail to map the GPU",
                )
            )
    return warnings
