"""Why nova found no valid host: the flavor against the compute nodes' resources and PCI devices in placement.

`explain()` is pure (plain data in, one sentence out); `gather()` reads placement through openstacksdk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STANDARD = {
    "VCPU",
    "MEMORY_MB",
    "DISK_GB",
    "PCPU",
    "SRIOV_NET_VF",
    "NET_BW_EGR_KILOBIT_PER_SEC",
    "NET_BW_IGR_KILOBIT_PER_SEC",
    "NET_PACKET_RATE_KILOPACKET_PER_SEC",
    "VGPU",
    "IPV4_ADDRESS",
}
PLACEMENT_MICROVERSION = "1.14"  # parent_provider_uuid


@dataclass
class Provider:
    name: str
    uuid: str = ""
    parent: str | None = None
    inventories: dict[str, dict] = field(default_factory=dict)  # rc -> total, reserved, allocation_ratio, max_unit
    usages: dict[str, int] = field(default_factory=dict)
    consumers: dict[str, dict[str, int]] = field(default_factory=dict)  # consumer uuid -> rc -> amount

    def free(self, rc: str) -> float:
        inv = self.inventories.get(rc)
        if not inv:
            return 0
        capacity = (inv.get("total", 0) - inv.get("reserved", 0)) * float(inv.get("allocation_ratio", 1.0))
        return min(capacity - self.usages.get(rc, 0), inv.get("max_unit", capacity))


@dataclass(frozen=True)
class Request:
    flavor: str
    vcpus: int
    ram_mib: int
    disk_gib: int
    pci_count: int  # devices asked for by pci_passthrough:alias


def pci_count(spec: str | None) -> int:
    """The PCI devices a pci_passthrough:alias value asks for: "gpu:1,gpu-audio:1" gives 2."""
    total = 0
    for part in (spec or "").split(","):
        if ":" in part:
            total += int(part.split(":", 1)[1] or 0)
        elif part.strip():
            total += 1
    return total


def explain(
    request: Request,
    providers: list[Provider],
    server_names: dict[str, str] | None = None,
    compute_up: bool | None = None,
) -> str:
    """One sentence: what no compute node can give the request."""
    server_names = server_names or {}
    if compute_up is False:
        return "no nova-compute service is up and enabled"
    nodes = [p for p in providers if "MEMORY_MB" in p.inventories or "VCPU" in p.inventories]
    if not nodes:
        return "placement knows no compute node (nova-compute has not reported itself)"
    reasons = []
    for rc, wanted, label, unit in (
        ("MEMORY_MB", request.ram_mib, "RAM", 1024),
        ("VCPU", request.vcpus, "vCPUs", 1),
        ("DISK_GB", request.disk_gib, "disk", 1),
    ):
        best = max(p.free(rc) for p in nodes)
        if wanted > best:
            how = "few" if label == "vCPUs" else "little"
            reasons.append(
                f"too {how} {label}: flavor {request.flavor} needs {_amount(wanted, unit, label)}, "
                f"the most any compute node has free is {_amount(max(best, 0), unit, label)}"
            )
    if request.pci_count:
        reasons.append(_pci_reason(request, providers, server_names))
    reasons = [r for r in reasons if r]
    if reasons:
        return "; ".join(reasons)
    return "the compute nodes have enough RAM, vCPUs, disk and PCI devices on paper; a scheduler filter removed them"


def _amount(value: float, unit: int, label: str) -> str:
    if label == "RAM":
        return f"{value / unit:.1f} GiB"
    if label == "disk":
        return f"{value:.0f} GiB"
    return f"{value:.0f}"


def _pci_reason(request: Request, providers: list[Provider], server_names: dict[str, str]) -> str:
    devices = [(p, rc) for p in providers if p.parent for rc in p.inventories if rc not in STANDARD]
    if not devices:
        return (
            f"flavor {request.flavor} asks for {request.pci_count} PCI device(s) and placement lists no PCI "
            "device of any compute node: no free GPU that nova can see (check [pci] device_spec and vfio-pci)"
        )
    total = sum(p.inventories[rc].get("total", 0) for p, rc in devices)
    free = sum(max(p.free(rc), 0) for p, rc in devices)
    if request.pci_count > total:
        return f"flavor {request.flavor} asks for {request.pci_count} GPU(s), the cloud has {total} in all"
    if request.pci_count > free:
        holders = sorted({server_names.get(c, c) for p, _ in devices for c in p.consumers})
        held = f" (held by {', '.join(holders)})" if holders else ""
        return (
            f"no free GPU: flavor {request.flavor} asks for {request.pci_count}, "
            f"{total - int(free)} of {total} are in use{held}"
        )
    return ""


def gather(admin) -> tuple[list[Provider], dict[str, str], bool | None]:
    """Placement's providers with inventories, usages and consumers; server names by id; is a compute up."""
    providers = []
    for rp in admin.placement.resource_providers():
        provider = Provider(rp.name, rp.id, getattr(rp, "parent_provider_id", None))
        base = f"/resource_providers/{rp.id}"
        provider.inventories = _get(admin, f"{base}/inventories").get("inventories", {})
        provider.usages = _get(admin, f"{base}/usages").get("usages", {})
        allocations = _get(admin, f"{base}/allocations").get("allocations", {})
        provider.consumers = {c: a.get("resources", {}) for c, a in allocations.items()}
        if provider.parent is None:
            provider.parent = _get(admin, base).get("parent_provider_uuid")
        providers.append(provider)
    try:
        names = {s.id: s.name for s in admin.compute.servers(all_projects=True)}
    except Exception:  # noqa: BLE001 - names only decorate the message
        names = {}
    try:
        computes = [s for s in admin.compute.services() if s.binary == "nova-compute"]
        up = any(s.state == "up" and s.status == "enabled" for s in computes) if computes else False
    except Exception:  # noqa: BLE001
        up = None
    return providers, names, up


def _get(admin, path: str) -> dict:
    response = admin.placement.get(path, microversion=PLACEMENT_MICROVERSION)
    return response.json() if response.ok else {}
