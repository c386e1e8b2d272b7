"""The Plan: how one PC is carved. Plain data, the same for Rich tables and --json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

GIB = 1024**3


@dataclass(frozen=True)
class Reservation:
    """What something outside the Kubernetes VMs keeps of the host."""

    name: str
    vcpus: int
    ram_gib: int
    disk_gib: int
    why: str


@dataclass(frozen=True)
class PassthroughFunction:
    address: str
    ids: str  # vendor:device
    role: str  # gpu | audio | usb | other


@dataclass(frozen=True)
class SharingDecision:
    mode: str  # exclusive | time-slicing | mps | mig | hami
    slots: int  # jobs the GPU serves at once
    reason: str
    replicas: int | None = None
    mig_layout: str | None = None
    mig_instances: tuple[str, ...] = ()
    memory_per_slot_mib: int | None = None
    hami_memory_percent: int | None = None
    hami_cores_percent: int | None = None


@dataclass(frozen=True)
class GpuAssignment:
    address: str
    name: str
    ids: str
    memory_mib: int | None
    vm: str
    nova_alias: str
    functions: tuple[PassthroughFunction, ...]
    sharing: SharingDecision
    memory_source: str = "nvidia-smi"  # nvidia-smi | catalog | unknown
    mig_existing: tuple[str, ...] = ()  # MIG GPU instances on the card now (profiles), before the gpu phase
    device_type: str = "type-PCI"  # nova's: type-PF for SR-IOV-capable GPUs, whole-device passthrough all the same


@dataclass(frozen=True)
class VmSpec:
    name: str
    role: str  # control-plane | worker
    flavor: str
    vcpus: int
    ram_gib: int
    disk_gib: int
    gpus: tuple[str, ...] = ()  # PCI addresses
    maxphysaddr_bits: int | None = None  # guest physical address bits when its GPUs' BARs need more than default


@dataclass(frozen=True)
class PlanWarning:
    code: str
    message: str


@dataclass(frozen=True)
class NodePlan:
    """What one PC added with `affordml add-node` brings: its worker VMs and GPUs; it runs no control plane."""

    host: str  # the name in affordml.yaml's hosts (kolla's inventory name, Ansible's host)
    hostname: str  # the PC's own host name (nova-compute's host, the availability zone's member)
    os: str  # e.g. "debian 13"
    host_vcpus: int
    host_ram_gib: int
    host_disk_free_gib: int
    management_interface: str
    management_address: str
    reservations: tuple[Reservation, ...]
    vms: tuple[VmSpec, ...]
    gpus: tuple[GpuAssignment, ...]
    vfio_ids: tuple[str, ...] = ()
    vfio_addresses: tuple[str, ...] = ()
    nova_device_specs: tuple[dict, ...] = ()
    nova_aliases: tuple[dict, ...] = ()  # the aliases the platform did not have before this PC
    warnings: tuple[PlanWarning, ...] = ()

    @property
    def availability_zone(self) -> str:
        return availability_zone_of(self.host)


def availability_zone_of(host: str) -> str:
    """The host aggregate and availability zone of a PC (its name in affordml.yaml's hosts), the first one's too."""
    return f"affordml-{host}"


@dataclass
class Plan:
    host: str
    host_vcpus: int
    host_ram_gib: int
    host_disk_free_gib: int
    reservations: list[Reservation]
    vms: list[VmSpec]
    gpus: list[GpuAssignment]
    vfio_ids: list[str]
    nova_aliases: list[dict]
    versions: dict[str, str]
    network: dict[str, str]
    ml: dict[str, bool]
    warnings: list[PlanWarning] = field(default_factory=list)
    # Functions bound to vfio-pci by address (driver_override) because their ids also match a device that stays
    # on the host; nova's device_spec names each passed-through GPU by address for the same reason.
    vfio_addresses: list[str] = field(default_factory=list)
    nova_device_specs: list[dict] = field(default_factory=list)
    nodes: list[NodePlan] = field(default_factory=list)  # PCs added with `affordml add-node`; their VMs are in vms

    @property
    def gpu_phases_apply(self) -> bool:
        return bool(self.gpus)

    def totals(self) -> dict:
        """Platform overhead against what remains for ML work."""
        reserved = {k: sum(getattr(r, k) for r in self.reservations) for k in ("vcpus", "ram_gib", "disk_gib")}
        cp = [v for v in self.vms if v.role == "control-plane"]
        workers = [v for v in self.vms if v.role == "worker"]
        node_overhead_ram = KUBE_NODE_OVERHEAD_GIB * len(workers)
        overhead_ram = reserved["ram_gib"] + sum(v.ram_gib for v in cp) + node_overhead_ram
        ml_ram = sum(v.ram_gib for v in workers) - node_overhead_ram
        return {
            "platform_vcpus": reserved["vcpus"] + sum(v.vcpus for v in cp),
            "platform_ram_gib": overhead_ram,
            "platform_disk_gib": reserved["disk_gib"] + sum(v.disk_gib for v in cp),
            "ml_vcpus": sum(v.vcpus for v in workers),
            "ml_ram_gib": ml_ram,
            "ml_gpu_slots": sum(g.sharing.slots for g in self.gpus),
            "ml_gpu_memory_mib": sum(g.memory_mib or 0 for g in self.gpus),
            "platform_ram_share": round(overhead_ram / self.host_ram_gib, 3) if self.host_ram_gib else 0.0,
        }

    def to_dict(self) -> dict:
        data = asdict(self)
        data["warnings"] = [asdict(w) for w in self.warnings]
        data["totals"] = self.totals()
        data["gpu_phases_apply"] = self.gpu_phases_apply
        if not self.nodes:
            data.pop("nodes")  # a one-PC plan keeps the hash it always had
        return data

    def node_of_vm(self, vm: str) -> NodePlan | None:
        """The added PC a VM is carved on; None for the first PC's VMs."""
        return next((n for n in self.nodes if any(v.name == vm for v in n.vms)), None)


KUBE_NODE_OVERHEAD_GIB = 1  # kubelet, container runtime, system pods on each worker
