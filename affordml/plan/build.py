"""facts + config + version lock -> Plan. Pure: no I/O, same input gives the same plan."""

from __future__ import annotations

from affordml.config.model import Config
from affordml.errors import PlanError
from affordml.facts.model import Gpu, HostFacts
from affordml.plan import carve, passthrough, sharing
from affordml.plan.model import GIB, GpuAssignment, PassthroughFunction, Plan, PlanWarning, VmSpec
from affordml.plan.network import plan_network


def make_plan(facts: HostFacts, config: Config, versions: dict[str, str]) -> Plan:
    gpus, warnings = passthrough_gpus(facts, config)
    worker_count = config.vms.workers.count
    if gpus and worker_count == 0:
        raise PlanError("vms.workers.count: 0 leaves no VM for the GPU", "set vms.workers.count to 1 or more")
    gpu_worker = {i: [g for j, g in enumerate(gpus) if j % max(worker_count, 1) == i] for i in range(worker_count)}
    flags = [bool(gpu_worker[i]) for i in range(worker_count)]
    reserved = carve.reservations(1 + worker_count)
    host_disk = disk_free_gib(facts)
    budget = carve.budget_after(facts.cpu.threads, facts.memory_bytes // GIB, host_disk, reserved)
    cp_size, worker_sizes = carve.carve(budget, config.vms, flags)
    aliases = nova_aliases(gpus)
    host_bits = facts.cpu.phys_address_bits
    vms = [_vm("cp-1", "control-plane", cp_size, [], host_bits)]
    vms += [_vm(f"worker-{i + 1}", "worker", size, gpu_worker[i], host_bits) for i, size in enumerate(worker_sizes)]
    warnings += passthrough.address_space_warnings(vms, gpus, host_bits)
    vfio_ids, vfio_addresses = passthrough.vfio_binding(gpus, facts.pci_devices)
    assignments = [_assign(g, vms, aliases, config) for g in gpus]
    check_one_mode_per_vm(assignments)
    if not gpus:
        warnings.append(
            PlanWarning(
                "no-gpu",
                "no NVIDIA GPU can be passed through: the gpu phase will be skipped and the platform runs CPU-only",
            )
        )
    warnings += [
        PlanWarning("mig-reboot", f"{a.name}: switching MIG mode inside the VM may need a VM reboot")
        for a in assignments
        if a.sharing.mode == "mig"
    ]
    return Plan(
        host=facts.hostname,
        host_vcpus=facts.cpu.threads,
        host_ram_gib=facts.memory_bytes // GIB,
        host_disk_free_gib=host_disk,
        reservations=reserved,
        vms=vms,
        gpus=assignments,
        vfio_ids=vfio_ids,
        nova_aliases=[
            {"name": name, "vendor_id": ids[:4], "product_id": ids[5:], "device_type": device_type}
            for (ids, device_type), name in sorted(aliases.items(), key=lambda item: item[1])
        ],
        versions=dict(sorted(versions.items())),
        network=plan_network(facts, config.network),
        ml=config.ml.model_dump(),
        warnings=warnings,
        vfio_addresses=vfio_addresses,
        nova_device_specs=passthrough.device_specs(gpus),
    )


def check_one_mode_per_vm(assignments: list[GpuAssignment]) -> None:
    """The device plugin configures a node as a whole, so the GPUs of one VM must share one mode."""
    by_vm: dict[str, list[GpuAssignment]] = {}
    for a in assignments:
        by_vm.setdefault(a.vm, []).append(a)
    for vm, gpus in by_vm.items():
        if len({(g.sharing.mode, g.sharing.replicas, g.sharing.mig_layout) for g in gpus}) > 1:
            raise PlanError(
                f"gpu.per_gpu: the GPUs in {vm} ({', '.join(g.address for g in gpus)}) have different sharing modes",
                "give GPUs that share a VM the same mode (the device plugin configures a node as a whole)",
            )


def disk_free_gib(facts: HostFacts) -> int:
    free = facts.varlib_free_bytes if facts.varlib_free_bytes is not None else facts.root_free_bytes
    if free is None:
        raise PlanError("facts: free disk space is unknown (no `df` output)", "collect the facts again on the host")
    return free // GIB


def passthrough_gpus(facts: HostFacts, config: Config) -> tuple[list[Gpu], list[PlanWarning]]:
    """NVIDIA GPUs that go to VMs; raises when there are GPUs but none can be isolated."""
    candidates = [g for g in facts.nvidia_gpus if g.address not in config.gpu.exclude]
    usable = [g for g in candidates if g.isolatable]
    warnings = [
        PlanWarning("gpu-not-isolatable", f"{g.name} at {g.address} stays on the host: {isolation_problem(g)}")
        for g in candidates
        if not g.isolatable
    ]
    if candidates and not usable:
        first = candidates[0]
        raise PlanError(
            f"no GPU can be passed through: {first.name} at {first.address}: {isolation_problem(first)}",
            isolation_fix(first, facts),
        )
    return sorted(usable, key=lambda g: g.address), warnings


def isolation_problem(gpu: Gpu) -> str:
    if gpu.iommu_group is None:
        return "it has no IOMMU group (the IOMMU is off, or this host is itself a VM)"
    return f"IOMMU group {gpu.iommu_group} also holds {', '.join(gpu.group_others)}"


def isolation_fix(gpu: Gpu, facts: HostFacts) -> str:
    if gpu.iommu_group is None and facts.is_vm:
        return "run affordml on the bare-metal PC, not inside a VM"
    if gpu.iommu_group is None:
        return "turn on VT-d / AMD-Vi (IOMMU) in the firmware and run `affordml doctor` for the kernel arguments"
    return (
        "move the GPU to a CPU-attached slot (usually the top x16 slot), or update the firmware; "
        "see `affordml doctor` (check gpu-isolatable)"
    )


def nova_aliases(gpus: list[Gpu]) -> dict[tuple[str, str], str]:
    """(vendor:device, nova device type) -> PCI alias name: "gpu" for one model, "gpu-<device id>" for several.

    Only GPUs get an alias: nova pools each function on its own, so asking it for a card's audio function too
    could pair card A's GPU with card B's audio. Companion functions are bound to vfio-pci on the host (the
    IOMMU group stays viable) and never requested from nova.
    """
    models = sorted({(g.ids, passthrough.device_type(g)) for g in gpus})
    several = len(models) > 1
    return {
        (ids, kind): (f"gpu-{ids[5:]}" + (f"-{kind[5:].lower()}" if sum(m[0] == ids for m in models) > 1 else ""))
        if several
        else "gpu"
        for ids, kind in models
    }


def _vm(name: str, role: str, size: carve.Size, gpus: list[Gpu], host_bits: int | None) -> VmSpec:
    flavor = f"affordml.{role}.{size.vcpus}c{size.ram_gib}g{size.disk_gib}d" + (f".gpu{len(gpus)}" if gpus else "")
    bits = passthrough.guest_phys_bits(size.ram_gib, [g.bar_bytes for g in gpus], host_bits)
    if bits is not None:
        flavor += f".pa{bits}"
    return VmSpec(name, role, flavor, size.vcpus, size.ram_gib, size.disk_gib, tuple(g.address for g in gpus), bits)


def flavor_pci_spec(vm: VmSpec, plan: Plan) -> str | None:
    """The flavor's `pci_passthrough:alias` extra spec, e.g. "gpu:1": whole GPUs only, one per planned GPU."""
    counts: dict[str, int] = {}
    for gpu in (g for g in plan.gpus if g.vm == vm.name):
        counts[gpu.nova_alias] = counts.get(gpu.nova_alias, 0) + 1
    return ",".join(f"{a}:{n}" for a, n in sorted(counts.items())) or None


def _assign(gpu: Gpu, vms: list[VmSpec], aliases: dict[str, str], config: Config) -> GpuAssignment:
    vm = next(v for v in vms if gpu.address in v.gpus)
    per_gpu = config.gpu.per_gpu.get(gpu.address)
    policy, path = (per_gpu, f"gpu.per_gpu.{gpu.address}") if per_gpu else (config.gpu.sharing, "gpu.sharing")
    return GpuAssignment(
        address=gpu.address,
        name=gpu.name,
        ids=gpu.ids,
        memory_mib=gpu.memory_mib,
        vm=vm.name,
        nova_alias=aliases[(gpu.ids, passthrough.device_type(gpu))],
        functions=tuple(PassthroughFunction(f.address, f.ids, _role(f.class_code)) for f in gpu.functions),
        sharing=sharing.decide(gpu, policy, path),
        device_type=passthrough.device_type(gpu),
    )


def _role(class_code: str) -> str:
    return {"0300": "gpu", "0302": "gpu", "0403": "audio", "0c03": "usb"}.get(class_code[:4], "other")
