"""Why nova found no valid host, from what a production nova exposes.

nova's own answer is only "No valid host was found". Placement holds the compute nodes' RAM, vCPUs, disk and
traits, but the platform's nova keeps PCI devices in its own PCI tracker (no `[pci] report_in_placement`), and
no API shows that tracker. So the PCI part is reasoned from what the API does show: how many GPUs of each alias
the plan offers nova (the device_spec the openstack phase renders from the same plan) against the aliases held
by the servers that exist (their flavors' pci_passthrough:alias).

`explain()` is pure (plain data in, one sentence out); `gather()` reads placement and nova through openstacksdk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PLACEMENT_MICROVERSION = "1.14"


@dataclass
class Provider:
    name: str
    uuid: str = ""
    parent: str | None = None
    inventories: dict[str, dict] = field(default_factory=dict)  # rc -> total, reserved, allocation_ratio, max_unit
    usages: dict[str, int] = field(default_factory=dict)

    def free(self, rc: str) -> float:
        inv = self.inventories.get(rc)
        if not inv:
            return 0
        capacity = (inv.get("total", 0) - inv.get("reserved", 0)) * float(inv.get("allocation_ratio", 1.0))
        return min(capacity - self.usages.get(rc, 0), inv.get("max_unit", capacity))


ADDRESS_SPACE_TRAIT = "COMPUTE_ADDRESS_SPACE_EMULATED"


@dataclass(frozen=True)
class Request:
    flavor: str
    vcpus: int
    ram_mib: int
    disk_gib: int
    pci: dict[str, int] = field(default_factory=dict)  # alias -> devices, from pci_passthrough:alias
    maxphysaddr_bits: int | None = None


@dataclass
class Cloud:
    """What the API shows: placement's providers, the aliases the servers hold, nova-compute's state."""

    providers: list[Provider] = field(default_factory=list)
    held: dict[str, list[str]] = field(default_factory=dict)  # alias -> server names, one entry per device
    compute_up: bool | None = None
    traits: set[str] | None = None  # the compute nodes' traits (None: unknown)


def pci_aliases(spec: str | None) -> dict[str, int]:
    """A pci_passthrough:alias value as alias -> count: "gpu:1,gpu-audio:1" gives {"gpu": 1, "gpu-audio": 1}."""
    counts: dict[str, int] = {}
    for part in (spec or "").split(","):
        name, _, count = part.strip().partition(":")
        if name:
            counts[name] = counts.get(name, 0) + (int(count) if count.strip().isdigit() else 1)
    return counts


def pci_count(spec: str | None) -> int:
    """The PCI devices a pci_passthrough:alias value asks for: "gpu:1,gpu-audio:1" gives 2."""
    return sum(pci_aliases(spec).values())


def explain(request: Request, cloud: Cloud, offered: dict[str, int]) -> str:
    """One sentence: what no compute node can give the request. `offered`: alias -> GPUs the plan gives nova."""
    if cloud.compute_up is False:
        return "no nova-compute service is up and enabled"
    nodes = [p for p in cloud.providers if "MEMORY_MB" in p.inventories or "VCPU" in p.inventories]
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
    if request.maxphysaddr_bits and cloud.traits is not None and ADDRESS_SPACE_TRAIT not in cloud.traits:
        reasons.append(
            f"flavor {request.flavor} sets hw:maxphysaddr_bits={request.maxphysaddr_bits} for its GPU's large BARs "
            f"and no compute node has the trait {ADDRESS_SPACE_TRAIT} (libvirt 9.2 or newer)"
        )
    reasons += [_pci_reason(request.flavor, alias, count, cloud.held, offered) for alias, count in request.pci.items()]
    reasons = [r for r in reasons if r]
    if reasons:
        return "; ".join(reasons)
    if request.pci:
        return (
            f"the plan offers nova enough free {', '.join(request.pci)} on paper, so nova's PCI tracker sees fewer: "
            "check that vfio-pci holds the planned GPUs (`lspci -nnk`), that nova-compute's [pci] device_spec is the "
            "rendered one (`affordml init phase openstack`), and nova-compute's log"
            + (
                f", and that the host CPU has {request.maxphysaddr_bits} physical address bits"
                if request.maxphysaddr_bits
                else ""
            )
        )
    return "the compute nodes have enough RAM, vCPUs and disk on paper; a scheduler filter removed them"


def _pci_reason(flavor: str, alias: str, count: int, held: dict[str, list[str]], offered: dict[str, int]) -> str:
    total = offered.get(alias, 0)
    if total == 0:
        return (
            f"flavor {flavor} asks for {count} {alias} and the plan offers nova no device for that alias "
            "(check [pci] device_spec and vfio-pci)"
        )
    if count > total:
        return f"flavor {flavor} asks for {count} {alias} GPU(s), the cloud has {total} in all"
    holders = held.get(alias, [])
    if count > total - len(holders):
        return (
            f"no free GPU: flavor {flavor} asks for {count} {alias}, {len(holders)} of {total} are in use "
            f"(held by {', '.join(sorted(set(holders)))})"
        )
    return ""


def _amount(value: float, unit: int, label: str) -> str:
    if label == "RAM":
        return f"{value / unit:.1f} GiB"
    if label == "disk":
        return f"{value:.0f} GiB"
    return f"{value:.0f}"


def gather(admin) -> Cloud:
    """Placement's providers and traits, the aliases every server's flavor holds, and nova-compute's state."""
    cloud = Cloud()
    traits: set[str] = set()
    for rp in admin.placement.resource_providers():
        provider = Provider(rp.name, rp.id, getattr(rp, "parent_provider_id", None))
        base = f"/resource_providers/{rp.id}"
        provider.inventories = _get(admin, f"{base}/inventories").get("inventories", {})
        provider.usages = _get(admin, f"{base}/usages").get("usages", {})
        traits.update(_get(admin, f"{base}/traits").get("traits", []))
        cloud.providers.append(provider)
    cloud.traits = traits
    try:
        for server in admin.compute.servers(all_projects=True):
            if server.status in ("DELETED", "SOFT_DELETED") or server.status == "ERROR" and not _placed(server):
                continue
            extra = dict(getattr(server.flavor, "extra_specs", None) or {})
            for alias, count in pci_aliases(extra.get("pci_passthrough:alias")).items():
                cloud.held.setdefault(alias, []).extend([server.name] * count)
    except Exception:  # noqa: BLE001 - without the servers, the PCI part says less
        cloud.held = {}
    try:
        computes = [s for s in admin.compute.services() if s.binary == "nova-compute"]
        cloud.compute_up = any(s.state == "up" and s.status == "enabled" for s in computes) if computes else False
    except Exception:  # noqa: BLE001
        cloud.compute_up = None
    return cloud


def _placed(server) -> bool:
    return bool(getattr(server, "compute_host", None) or getattr(server, "hypervisor_hostname", None))


def _get(admin, path: str) -> dict:
    response = admin.placement.get(path, microversion=PLACEMENT_MICROVERSION)
    return response.json() if response.ok else {}
