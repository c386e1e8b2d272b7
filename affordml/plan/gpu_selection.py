"""Which NVIDIA GPUs go to VMs, and why the others stay on the host: IOMMU isolation as the kernel reports it
(and as the host phase will set it), pretended isolation (ACS override), cards that share a group, and the pinned
guest driver's support. Pure."""

from __future__ import annotations

from affordml.config.model import Config
from affordml.errors import PlanError
from affordml.facts.model import Gpu, HostFacts
from affordml.plan import iommu, support
from affordml.plan.model import PlanWarning


def passthrough_gpus(facts: HostFacts, config: Config, branch: int | None) -> tuple[list[Gpu], list[PlanWarning]]:
    """NVIDIA GPUs that go to VMs; raises when there are GPUs but none can go."""
    candidates = [g for g in facts.nvidia_gpus if g.address not in config.gpu.exclude]
    reading = iommu.read_iommu(facts)
    problems = {g.address: passthrough_problem(g, facts, reading, branch) for g in candidates}
    problems = _with_group_mates(candidates, problems)
    usable = [g for g in candidates if not problems[g.address]]
    warnings = [
        PlanWarning(_problem_code(g, branch), f"{g.name} at {g.address} stays on the host: {problems[g.address]}")
        for g in candidates
        if problems[g.address]
    ]
    if candidates and not usable:
        first = candidates[0]
        raise PlanError(
            f"no GPU can be passed through: {first.name} at {first.address}: {problems[first.address]}",
            isolation_fix(first, facts, branch),
        )
    if reading.state == iommu.HOST_PHASE and usable:
        warnings.append(
            PlanWarning(
                "iommu-after-reboot",
                "the IOMMU is off in this kernel: the host phase turns it on (intel_iommu=on iommu=pt) and asks for "
                "a reboot; GPU isolation is checked again when `affordml init` resumes after it",
            )
        )
    for group, members in _shared_groups(usable).items():
        warnings.append(
            PlanWarning(
                "gpus-share-group",
                f"{', '.join(g.address for g in members)} share IOMMU group {group} (one root port): "
                "they go together to one VM",
            )
        )
    return sorted(usable, key=lambda g: g.address), warnings


def passthrough_problem(gpu: Gpu, facts: HostFacts, reading: iommu.IommuReading, branch: int | None) -> str | None:
    """Why this GPU cannot go to a VM, or None."""
    unsupported = support.unsupported_reason(gpu, branch)
    if unsupported:
        return unsupported
    if gpu.iommu_group is None:
        return None if reading.state == iommu.HOST_PHASE else isolation_problem(gpu, reading)
    if facts.iommu.acs_override is not None:
        return (
            f"its IOMMU group {gpu.iommu_group} is isolated only on paper: pcie_acs_override="
            f"{facts.iommu.acs_override} makes the kernel pretend so, and passthrough would not be safe"
        )
    if gpu.group_others:
        return isolation_problem(gpu, reading)
    return None


def _with_group_mates(candidates: list[Gpu], problems: dict[str, str | None]) -> dict[str, str | None]:
    """A GPU that shares its group with other GPUs goes only if all of them go (they cannot be split)."""
    owner = {f.address: g for g in candidates for f in g.functions}
    result = dict(problems)
    for gpu in candidates:
        if result[gpu.address] or not gpu.group_gpus:
            continue
        stuck = sorted({m for m in gpu.group_gpus if m not in owner or problems[owner[m].address]})
        if stuck:
            result[gpu.address] = (
                f"it shares IOMMU group {gpu.iommu_group} with {', '.join(stuck)}, which stays on the host, and "
                "a group goes to a VM only as a whole"
            )
    return result


def _shared_groups(gpus: list[Gpu]) -> dict[int, list[Gpu]]:
    groups: dict[int, list[Gpu]] = {}
    for gpu in gpus:
        if gpu.group_gpus and gpu.iommu_group is not None:
            groups.setdefault(gpu.iommu_group, []).append(gpu)
    return {k: v for k, v in groups.items() if len(v) > 1}


def spread_over_workers(gpus: list[Gpu], worker_count: int) -> dict[int, list[Gpu]]:
    """GPUs round-robin over the workers; GPUs that share an IOMMU group stay together on one worker."""
    units: list[list[Gpu]] = []
    by_group: dict[int, list[Gpu]] = {}
    for gpu in gpus:
        if gpu.group_gpus and gpu.iommu_group is not None:
            if gpu.iommu_group not in by_group:
                by_group[gpu.iommu_group] = []
                units.append(by_group[gpu.iommu_group])
            by_group[gpu.iommu_group].append(gpu)
        else:
            units.append([gpu])
    spread: dict[int, list[Gpu]] = {i: [] for i in range(worker_count)}
    for j, unit in enumerate(units):
        if worker_count:
            spread[j % worker_count] += unit
    return spread


def _problem_code(gpu: Gpu, branch: int | None) -> str:
    return "gpu-unsupported-driver" if support.unsupported_reason(gpu, branch) else "gpu-not-isolatable"


def isolation_problem(gpu: Gpu, reading: iommu.IommuReading | None = None) -> str:
    if gpu.iommu_group is None:
        return f"it has no IOMMU group ({reading.why})" if reading else "it has no IOMMU group"
    return f"IOMMU group {gpu.iommu_group} also holds {', '.join(gpu.group_others)}"


def isolation_fix(gpu: Gpu, facts: HostFacts, branch: int | None = None) -> str:
    if support.unsupported_reason(gpu, branch):
        return "use a Turing or newer card, or list this one in gpu.exclude to run CPU-only"
    reading = iommu.read_iommu(facts)
    if gpu.iommu_group is None and reading.state == iommu.IN_VM:
        return "run affordml on the bare-metal PC, not inside a VM"
    if gpu.iommu_group is None and reading.state == iommu.CMDLINE_OFF:
        return f"remove `{facts.iommu.cmdline_disabled}` from the kernel command line (see `affordml doctor`)"
    if gpu.iommu_group is None:
        return f"turn on {iommu.firmware_setting(facts.cpu.vendor)} in the firmware setup (see `affordml doctor`)"
    if facts.iommu.acs_override is not None:
        return "remove pcie_acs_override from the kernel command line and put the GPU in a CPU-attached slot"
    return (
        "move the GPU to a CPU-attached slot (usually the top x16 slot), or update the firmware; "
        "see `affordml doctor` (check gpu-isolatable)"
    )
