"""One reading of the IOMMU for the doctor and the planner: what the running kernel reports (groups and their
default domain), and what the host phase will change. The command line only explains why.

Kernel facts used (Documentation/admin-guide/kernel-parameters.txt): `intel_iommu=on` turns the Intel IOMMU on
where the kernel was built without CONFIG_INTEL_IOMMU_DEFAULT_ON; the AMD IOMMU is on by default and `amd_iommu=`
takes only off/force_isolation/fullflush/pgtbl_v1/pgtbl_v2/irtcachedis/... (there is no `amd_iommu=on`);
`iommu=pt` (or `iommu.passthrough=1`) gives the host's own devices identity mappings."""

from __future__ import annotations

from dataclasses import dataclass

from affordml.facts.model import HostFacts

ACTIVE = "active"  # the kernel created IOMMU groups
HOST_PHASE = "host-phase"  # off only because this kernel does not enable it by default: the host phase adds it
CMDLINE_OFF = "cmdline-off"  # the command line turns it off: the user must remove that
FIRMWARE_OFF = "firmware-off"  # asked for (or on by default) but no groups: VT-d / AMD-Vi is off in the firmware
IN_VM = "vm"  # this host is itself a VM (or a container): no IOMMU of its own to pass devices through


@dataclass(frozen=True)
class IommuReading:
    state: str
    why: str  # one sentence, true for this host


def host_kernel_args(cpu_vendor: str) -> list[str]:
    """What the host phase puts on the command line: AMD needs only iommu=pt (its IOMMU is on by default)."""
    return ["iommu=pt"] if cpu_vendor == "amd" else ["intel_iommu=on", "iommu=pt"]


def firmware_setting(cpu_vendor: str) -> str:
    return "AMD-Vi / IOMMU" if cpu_vendor == "amd" else "VT-d"


def read_iommu(facts: HostFacts) -> IommuReading:
    iommu = facts.iommu
    if iommu.active:
        return IommuReading(ACTIVE, f"the kernel runs the IOMMU ({iommu.group_count} IOMMU groups)")
    if facts.is_vm:
        return IommuReading(IN_VM, "this host is itself virtualized: it has no IOMMU of its own to pass GPUs through")
    if iommu.cmdline_disabled:
        return IommuReading(CMDLINE_OFF, f"the kernel command line turns the IOMMU off (`{iommu.cmdline_disabled}`)")
    table = "IVRS" if facts.cpu.vendor == "amd" else "DMAR"
    setting = firmware_setting(facts.cpu.vendor)
    if iommu.firmware_table is False:
        return IommuReading(
            FIRMWARE_OFF, f"the firmware offers no IOMMU (no ACPI {table} table): {setting} is off in its setup"
        )
    if facts.cpu.vendor == "amd" or iommu.cmdline_enabled:
        asked = "on by default for AMD" if facts.cpu.vendor == "amd" else "asked for on the command line"
        return IommuReading(
            FIRMWARE_OFF,
            f"the IOMMU is {asked}, yet the kernel created no IOMMU groups: {setting} is off in the firmware",
        )
    return IommuReading(
        HOST_PHASE,
        "this kernel does not turn the Intel IOMMU on by default and the command line does not ask for it; "
        "the host phase adds `intel_iommu=on iommu=pt` and asks for one reboot",
    )


def passthrough_possible_after_host_phase(facts: HostFacts) -> bool:
    return read_iommu(facts).state in (ACTIVE, HOST_PHASE)
