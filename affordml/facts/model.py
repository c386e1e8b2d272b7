"""Parsed hardware facts of one host: plain dataclasses, cheap to import, easy to dump as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

NVIDIA_VENDOR = "10de"


@dataclass(frozen=True)
class OsRelease:
    id: str = "unknown"
    version_id: str = ""
    pretty_name: str = "unknown"
    codename: str = ""


@dataclass(frozen=True)
class Cpu:
    model: str = "unknown"
    vendor: str = "unknown"  # intel | amd | unknown
    threads: int = 0
    virt_flag: str | None = None  # vmx | svm | None
    hypervisor: bool = False
    phys_address_bits: int | None = None  # "address sizes: N bits physical" in /proc/cpuinfo


@dataclass(frozen=True)
class Disk:
    name: str
    size_bytes: int
    kind: str  # disk | part | lvm | ...
    rotational: bool
    mountpoint: str | None = None


@dataclass(frozen=True)
class Nic:
    name: str
    mac: str = ""
    operstate: str = "unknown"
    speed_mbps: int | None = None
    physical: bool = False
    bridge: bool = False
    wireless: bool = False
    addresses: tuple[str, ...] = ()
    default_route: bool = False

    @property
    def has_link(self) -> bool:
        return self.operstate == "up"


@dataclass(frozen=True)
class PciDevice:
    address: str  # 0000:01:00.0
    vendor_id: str  # 10de (hex, no 0x)
    device_id: str
    class_code: str  # 030000
    driver: str | None = None
    iommu_group: int | None = None
    sriov_totalvfs: int = 0  # sysfs sriov_totalvfs; > 0: nova tracks the device as type-PF
    bar_sizes: tuple[int, ...] = ()  # bytes of BAR0..BAR5 from sysfs resource (0 where unused)

    @property
    def slot(self) -> str:
        """The address without the function number: 0000:01:00."""
        return self.address.rsplit(".", 1)[0]

    @property
    def is_bridge(self) -> bool:
        return self.class_code.startswith("0604")

    @property
    def is_gpu(self) -> bool:
        return self.class_code[:4] in ("0300", "0302")

    @property
    def ids(self) -> str:
        return f"{self.vendor_id}:{self.device_id}"


@dataclass(frozen=True)
class Gpu:
    """An NVIDIA GPU with its companion functions (HDMI audio, USB-C) and its IOMMU group."""

    address: str
    vendor_id: str
    device_id: str
    name: str
    memory_mib: int | None
    mig_capable: bool
    mig_enabled: bool
    driver: str | None
    iommu_group: int | None
    functions: tuple[PciDevice, ...]  # every function in the GPU's slot, the GPU itself first
    group_others: tuple[str, ...] = ()  # devices in the IOMMU group that are neither its functions nor bridges

    @property
    def ids(self) -> str:
        return f"{self.vendor_id}:{self.device_id}"

    @property
    def sriov_capable(self) -> bool:
        """SR-IOV capable (data-center GPUs): nova reports it as type-PF, never type-PCI."""
        return self.functions[0].sriov_totalvfs > 0 if self.functions else False

    @property
    def bar_bytes(self) -> int:
        """Address space the GPU's BARs take in a guest (the large BAR1 of 80 GB-class cards dominates)."""
        return sum(self.functions[0].bar_sizes) if self.functions else 0

    @property
    def isolatable(self) -> bool:
        """True when passthrough can take the GPU alone: it has a group and nobody else is in it."""
        return self.iommu_group is not None and not self.group_others


@dataclass(frozen=True)
class Iommu:
    cmdline_enabled: bool  # intel_iommu=on / amd_iommu=on (or on by default for AMD)
    passthrough_mode: bool  # iommu=pt
    active: bool  # the kernel created IOMMU groups
    group_count: int = 0


@dataclass(frozen=True)
class Vfio:
    available: bool  # built in or a module that can load
    loaded: bool


@dataclass
class HostFacts:
    hostname: str
    source: str
    arch: str
    os: OsRelease
    kernel: str
    cmdline: str
    cpu: Cpu
    memory_bytes: int
    disks: list[Disk]
    root_free_bytes: int | None
    varlib_free_bytes: int | None
    nics: list[Nic]
    pci_devices: list[PciDevice]
    gpus: list[Gpu]
    iommu: Iommu
    vfio: Vfio
    kvm_device: bool
    virtualization: str  # none | kvm | ... (systemd-detect-virt), "unknown" if it could not tell
    secure_boot: bool | None
    is_root: bool | None
    sudo_without_password: bool | None
    nvidia_driver_version: str | None = None
    default_gateway: str | None = None  # the IPv4 next hop of the default route, when there is one
    notes: list[str] = field(default_factory=list)

    @property
    def is_vm(self) -> bool:
        return self.virtualization not in ("none", "unknown") or self.cpu.hypervisor

    @property
    def nvidia_gpus(self) -> list[Gpu]:
        return [g for g in self.gpus if g.vendor_id == NVIDIA_VENDOR]

    @property
    def default_nic(self) -> Nic | None:
        return next((n for n in self.nics if n.default_route), None)

    @property
    def physical_nics(self) -> list[Nic]:
        return [n for n in self.nics if n.physical and not n.wireless]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["is_vm"] = self.is_vm
        for gpu, raw in zip(self.gpus, data["gpus"], strict=True):
            raw["isolatable"] = gpu.isolatable
        return data
