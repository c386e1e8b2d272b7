"""What the GPU phase's pinned driver supports, and what a hand-written `vfio-pci.ids=` really selects."""

from __future__ import annotations

import difflib
import re

from affordml.facts.gpu_catalog import last_supported_branch
from affordml.facts.model import Gpu, PciDevice

_VFIO_ID = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}(:[0-9a-fA-F]{4}){0,2}(:[0-9a-fA-F]{6}(:[0-9a-fA-F]{6})?)?$")


def driver_branch(versions: dict[str, str]) -> int | None:
    """The major branch of the guest driver the lock pins (nvidia_driver 595.91.07 -> 595); None if not pinned."""
    version = versions.get("nvidia_driver", "")
    major = version.split(".")[0]
    return int(major) if major.isdigit() else None


def unsupported_reason(gpu: Gpu, branch: int | None) -> str | None:
    """Why the pinned branch cannot drive this GPU, or None. NVIDIA's deprecation schedule is cited in
    affordml/facts/gpu_catalog.py (LAST_BRANCH)."""
    last = last_supported_branch(gpu.architecture)
    if branch is None or last is None or last >= branch:
        return None
    return (
        f"it is a {gpu.architecture} GPU: NVIDIA's {last} driver series is the last that supports it, and the GPU "
        f"phase installs the {branch} branch inside the VM"
    )


def vfio_ids_problems(words: tuple[str, ...], functions: list[PciDevice], devices: list[PciDevice]) -> list[str]:
    """Each malformed word, each word that matches no device, and each function the words leave out; a word that
    is one typo away from a missed function's id is named as the likely typo."""
    problems = []
    present = {d.ids for d in devices}
    wanted = {f.ids: f for f in functions}
    matched = set()
    for word in words:
        ids = ":".join(word.lower().split(":")[:2])
        if not _VFIO_ID.match(word):
            problems.append(f"vfio-pci.ids word {word!r} is malformed (vendor:device in hex, e.g. 10de:2684)")
        elif ids in wanted:
            matched.add(ids)
        elif ids not in present:
            problems.append(f"vfio-pci.ids word {word!r} matches no device in this PC")
    for ids, fn in wanted.items():
        if ids in matched:
            continue
        near = difflib.get_close_matches(ids, [w.lower() for w in words], n=1, cutoff=0.75)
        hint = f" (typo? {near[0]!r} is on the command line)" if near else ""
        driver = fn.driver or "no driver"
        problems.append(f"{fn.address} [{ids}] is not in vfio-pci.ids, so {driver} keeps it{hint}")
    return problems
