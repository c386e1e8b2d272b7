"""The PC behind the test cloud: a real snapshot fixture with the GPU cases nova must get right, and from it
affordml's own plan, its rendered nova [pci]/[filter_scheduler] files and the fake driver's device list.

The workstation-2gpu fixture (two identical RTX A6000 cards, GPU + HDMI audio each, own IOMMU groups) gets:
- an H200 at 0000:81:00.0, SR-IOV capable (sriov_totalvfs 16), 256 GiB BAR1: nova tracks it as type-PF and its
  VM needs more than 40 guest address bits;
- a third identical A6000 at 0000:ca:00.0 that the configuration excludes (gpu.exclude): it stays on the host,
  so neither vfio-pci ids= nor nova's device_spec may catch it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

PCI_ROOT = "/sys/bus/pci/devices"
GROUPS_ROOT = "/sys/kernel/iommu_groups"
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "hardware" / "workstation-2gpu.json"
GIB = 1024**3
MIB = 1024**2

H200_ADDRESS = "0000:81:00.0"
EXCLUDED_ADDRESS = "0000:ca:00.0"
A6000_ADDRESSES = ("0000:17:00.0", "0000:31:00.0")
H200_BARS = (64 * MIB, 256 * GIB, 32 * MIB)
HOST_PHYS_BITS = 46  # what the fake compute node reports as its CPU's address bits (a Xeon w5-3435X has 46)


@dataclass(frozen=True)
class FakeFunction:
    """One PCI function as nova's libvirt driver would report it (pci_passthrough_devices)."""

    address: str
    vendor_id: str
    product_id: str
    dev_type: str  # type-PCI | type-PF

    def nova_record(self) -> dict:
        return {
            "address": self.address,
            "vendor_id": self.vendor_id,
            "product_id": self.product_id,
            "dev_type": self.dev_type,
            "status": "available",
            "parent_addr": None,
            "numa_node": None,
            "label": f"label_{self.vendor_id}_{self.product_id}",
        }


def _resource_text(bars: tuple[int, ...]) -> str:
    """A sysfs `resource` file: one "start end flags" line per region, BARs laid out from 0x38000000000."""
    lines, start = [], 0x38000000000
    for size in (*bars, *(0,) * (13 - len(bars))):
        if size:
            lines.append(f"0x{start:016x} 0x{start + size - 1:016x} 0x000000000014220c")
            start += size
        else:
            lines.append(f"0x{0:016x} 0x{0:016x} 0x{0:016x}")
    return "\n".join(lines) + "\n"


def _add_function(snap: dict, address: str, ids: str, class_code: str, group: int, **extra: str) -> None:
    """Put one PCI function into a raw snapshot, the way collect.sh records it."""
    base = f"{PCI_ROOT}/{address}"
    vendor, device = ids.split(":")
    snap["files"].update(
        {f"{base}/vendor": f"0x{vendor}\n", f"{base}/device": f"0x{device}\n", f"{base}/class": f"0x{class_code}\n"}
    )
    snap["files"].update({f"{base}/{name}": text for name, text in extra.items()})
    snap["links"][f"{base}/iommu_group"] = f"../../../../kernel/iommu_groups/{group}"
    snap["links"][f"{base}/driver"] = "../../../../bus/pci/drivers/nvidia"
    snap["dirs"][PCI_ROOT] = sorted({*snap["dirs"][PCI_ROOT], address})
    snap["dirs"][GROUPS_ROOT] = sorted({*snap["dirs"][GROUPS_ROOT], str(group)})
    members = snap["dirs"].setdefault(f"{GROUPS_ROOT}/{group}/devices", [])
    snap["dirs"][f"{GROUPS_ROOT}/{group}/devices"] = sorted({*members, address})


def snapshot_dict() -> dict:
    """The raw snapshot of the test cloud's PC."""
    snap = copy.deepcopy(json.loads(FIXTURE.read_text()))
    snap["source"] = "workstation-2gpu fixture + an SR-IOV H200 + a third, excluded RTX A6000 (test cloud)"
    cpuinfo = snap["files"]["/proc/cpuinfo"]
    snap["files"]["/proc/cpuinfo"] = cpuinfo.replace(
        "flags\t\t:", f"address sizes\t: {HOST_PHYS_BITS} bits physical, 57 bits virtual\nflags\t\t:"
    )
    _add_function(
        snap, H200_ADDRESS, "10de:2335", "030200", 90, sriov_totalvfs="16\n", resource=_resource_text(H200_BARS)
    )
    _add_function(snap, EXCLUDED_ADDRESS, "10de:2230", "030000", 91)
    _add_function(snap, EXCLUDED_ADDRESS[:-1] + "1", "10de:1aef", "040300", 91)
    return snap


def facts():
    from affordml.facts.parse import facts_from_snapshot
    from affordml.facts.snapshot import Snapshot

    return facts_from_snapshot(Snapshot.from_dict(snapshot_dict()))


def config():
    """One GPU worker per planned GPU; the third A6000 stays on the host."""
    from affordml.config.model import Config

    return Config.model_validate({"gpu": {"exclude": [EXCLUDED_ADDRESS]}, "vms": {"workers": {"count": 3}}})


def plan():
    from affordml.plan.build import make_plan
    from affordml.versions import load_lock, version_table

    return make_plan(facts(), config(), version_table(load_lock()))


def rendered_nova_files() -> dict[str, str]:
    """affordml's rendered kolla nova files for this PC: {service: text} for nova-api, -scheduler, -compute."""
    from affordml.render.context import build_context
    from affordml.render.engine import render_files
    from affordml.versions import load_lock

    files = render_files(build_context(plan(), config(), load_lock()))
    return {
        service: files[f"kolla/config/nova/{service}.conf"]
        for service in ("nova-api", "nova-scheduler", "nova-compute")
    }


def fake_functions() -> list[FakeFunction]:
    """Every NVIDIA function of the PC, as the fake virt driver reports them to nova (all of them, as libvirt
    would: the device_spec decides what nova tracks)."""
    found = []
    for gpu in facts().nvidia_gpus:
        kind = "type-PF" if gpu.sriov_capable else "type-PCI"
        for function in gpu.functions:
            found.append(FakeFunction(function.address, function.vendor_id, function.device_id, kind))
    return sorted(found, key=lambda f: f.address)
