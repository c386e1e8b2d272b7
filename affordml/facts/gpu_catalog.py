"""What we know of NVIDIA cards by PCI device id, for hosts where nvidia-smi cannot answer
(vfio-pci or nouveau holds the card). nvidia-smi's own answer always wins over this table."""

from __future__ import annotations

from typing import NamedTuple


class CardInfo(NamedTuple):
    name: str
    memory_mib: int
    mig_capable: bool


# device id -> (name, memory, MIG-capable). MIG cards per NVIDIA's MIG user guide: A30, A100, H100, H20, H200, B200.
CATALOG: dict[str, CardInfo] = {
    "1f82": CardInfo("NVIDIA GeForce GTX 1650", 4096, False),
    "2204": CardInfo("NVIDIA GeForce RTX 3090", 24576, False),
    "2504": CardInfo("NVIDIA GeForce RTX 3060", 12288, False),
    "2684": CardInfo("NVIDIA GeForce RTX 4090", 24564, False),
    "2786": CardInfo("NVIDIA GeForce RTX 4070", 12282, False),
    "2b85": CardInfo("NVIDIA GeForce RTX 5090", 32607, False),
    "2230": CardInfo("NVIDIA RTX A6000", 49140, False),
    "26b1": CardInfo("NVIDIA RTX 6000 Ada Generation", 49140, False),
    "20b7": CardInfo("NVIDIA A30", 24576, True),
    "20b0": CardInfo("NVIDIA A100-SXM4-40GB", 40960, True),
    "20b2": CardInfo("NVIDIA A100-SXM4-80GB", 81920, True),
    "20b5": CardInfo("NVIDIA A100 80GB PCIe", 81920, True),
    "20f1": CardInfo("NVIDIA A100-PCIE-40GB", 40960, True),
    "2330": CardInfo("NVIDIA H100 80GB HBM3", 81559, True),
    "2331": CardInfo("NVIDIA H100 PCIe", 81559, True),
    "2335": CardInfo("NVIDIA H200", 143771, True),
    "2329": CardInfo("NVIDIA H20", 97871, True),
    "2901": CardInfo("NVIDIA B200", 183359, True),
}


def card_info(device_id: str) -> CardInfo | None:
    return CATALOG.get(device_id.lower())


# The last driver branch that supports each architecture, from NVIDIA's "Unix Graphics Feature Deprecation
# Schedule" (https://forums.developer.nvidia.com/t/unix-graphics-feature-deprecation-schedule/60588): Fermi ended
# with 390, Kepler with 470, and "the release 580 series will be the last to support GPUs based on the Maxwell,
# Pascal, and Volta architectures". Turing and newer are supported by the later branches.
LAST_BRANCH: dict[str, int] = {"Fermi": 390, "Kepler": 470, "Maxwell": 580, "Pascal": 580, "Volta": 580}
PRE_TURING = "Volta or older"
FIRST_TURING_DEVICE_ID = 0x1E00  # TU102 (RTX 2080 Ti) is 1e02..1e07; every Kepler..Volta chip id is below 1e00
LAST_BRANCH[PRE_TURING] = 580


def architecture_from_device_id(device_id: str) -> str | None:
    """Where nvidia-smi cannot tell: pre-Turing from the PCI device id, else unknown (None)."""
    try:
        number = int(device_id, 16)
    except ValueError:
        return None
    return PRE_TURING if number < FIRST_TURING_DEVICE_ID else None


def last_supported_branch(architecture: str | None) -> int | None:
    """The newest driver branch that still supports this architecture; None when every current branch does."""
    return LAST_BRANCH.get(architecture or "")
