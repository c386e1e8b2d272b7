"""Pure parsers for what nvidia-smi prints: `-q -x` (GPUs, MIG devices), `mig -lgi` and `mig -lgip`, and its
complaint when no driver answers."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import NamedTuple

from affordml.errors import FactsError
from affordml.facts.model import MigInstance, MigProfile


class SmiGpu(NamedTuple):
    bus_id: str  # normalised to 0000:01:00.0
    name: str
    memory_mib: int | None
    mig_mode: str  # Enabled | Disabled | N/A
    architecture: str | None = None
    mig_instances: tuple[MigInstance, ...] = ()


def nvidia_smi_failure(text: str | None) -> str | None:
    """nvidia-smi's own complaint when it runs but cannot reach a driver ("NVIDIA-SMI has failed because it
    couldn't communicate with the NVIDIA driver..."): anything it printed that is not an XML document."""
    if not text or not text.strip() or text.lstrip().startswith("<"):
        return None
    return " ".join(text.split())[:300]


def parse_nvidia_smi(xml_text: str | None) -> tuple[str | None, list[SmiGpu]]:
    """Driver version and GPUs from `nvidia-smi -q -x`."""
    if not xml_text or not xml_text.strip() or nvidia_smi_failure(xml_text):
        return None, []
    try:
        root = ET.fromstring(xml_text.strip())
    except ET.ParseError as exc:
        raise FactsError(f"`nvidia-smi -q -x` gave invalid XML ({exc})", "check the NVIDIA driver") from None
    gpus = []
    for gpu in root.findall("gpu"):
        memory = re.match(r"\s*(\d+)", gpu.findtext("fb_memory_usage/total") or "")
        gpus.append(
            SmiGpu(
                bus_id=normalise_bus_id(gpu.get("id") or gpu.findtext("pci/pci_bus_id") or ""),
                name=(gpu.findtext("product_name") or "NVIDIA GPU").strip(),
                memory_mib=int(memory.group(1)) if memory else None,
                mig_mode=(gpu.findtext("mig_mode/current_mig") or "N/A").strip(),
                architecture=(gpu.findtext("product_architecture") or "").strip() or None,
                mig_instances=_xml_mig_instances(gpu),
            )
        )
    return (root.findtext("driver_version") or "").strip() or None, gpus


def _xml_mig_instances(gpu: ET.Element) -> tuple[MigInstance, ...]:
    """The MIG devices that exist now (`<mig_devices><mig_device>`); the XML names no profile, -lgi does."""
    found = {}
    for dev in gpu.findall("mig_devices/mig_device"):
        gi = (dev.findtext("gpu_instance_id") or "").strip()
        memory = re.match(r"\s*(\d+)", dev.findtext("fb_memory_usage/total") or "")
        if gi.isdigit() and int(gi) not in found:
            found[int(gi)] = MigInstance(int(gi), "", int(memory.group(1)) if memory else None)
    return tuple(found[k] for k in sorted(found))


_MIG_ROW = re.compile(r"^\|\s+(\d+)\s+MIG\s+(\S+)\s+(\d+)\s+(\S+)\s+(\S+)")


def parse_mig_gpu_instances(text: str | None) -> dict[int, list[tuple[str, int]]]:
    """GPU index -> [(profile, GPU instance id)] from `nvidia-smi mig -lgi`
    (rows like `|   0  MIG 3g.40gb       9        1          4:4     |`)."""
    result: dict[int, list[tuple[str, int]]] = {}
    for line in (text or "").splitlines():
        match = _MIG_ROW.match(line)
        if match and match.group(4).isdigit():
            result.setdefault(int(match.group(1)), []).append((match.group(2), int(match.group(4))))
    return result


def parse_mig_profiles(text: str | None) -> dict[int, list[MigProfile]]:
    """GPU index -> its GPU instance profiles from `nvidia-smi mig -lgip`
    (rows like `|   0  MIG 1g.10gb       19     7/7        9.50       No     14     0     0   |`)."""
    result: dict[int, list[MigProfile]] = {}
    for line in (text or "").splitlines():
        match = _MIG_ROW.match(line)
        if not match or "/" not in match.group(4):
            continue
        total = match.group(4).split("/")[-1]
        try:
            memory = float(match.group(5))
        except ValueError:
            continue
        if total.isdigit():
            profile = MigProfile(match.group(2), int(match.group(3)), int(total), memory)
            result.setdefault(int(match.group(1)), []).append(profile)
    return result


def normalise_bus_id(bus_id: str) -> str:
    """nvidia-smi writes 00000000:01:00.0; sysfs writes 0000:01:00.0."""
    bus_id = bus_id.strip().lower()
    domain, _, rest = bus_id.partition(":")
    return f"{domain[-4:]}:{rest}" if rest else bus_id
