"""Carving the host's CPU, RAM and disk into reservations and VMs (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from affordml.config.model import NodeGroup, Vms
from affordml.errors import PlanError
from affordml.plan.model import Reservation


@dataclass(frozen=True)
class Minimum:
    vcpus: int
    ram_gib: int
    disk_gib: int


CONTROL_PLANE_MIN = Minimum(2, 4, 40)  # kubeadm needs 2 CPUs; etcd, the API server and the platform's controllers
WORKER_MIN = Minimum(2, 4, 50)
GPU_WORKER_MIN = Minimum(2, 8, 80)  # CUDA images are large, and data loading wants RAM beside the GPU
CONTROL_PLANE_TARGET = Minimum(4, 8, 60)
WORKER_DISK_CAP_GIB = 400


def reservations(vm_count: int) -> list[Reservation]:
    """What the host keeps before any Kubernetes VM is carved."""
    return [
        Reservation("host OS", 1, 2, 20, "the PC's own system, SSH and updates"),
        Reservation(
            "OpenStack (kolla-ansible all-in-one)",
            2,
            6,
            60,
            "MariaDB, RabbitMQ, keystone, glance, placement, nova, neutron and their images",
        ),
        Reservation("hypervisor overhead", 0, max(1, (vm_count + 1) // 2), 0, "QEMU's own memory per VM"),
    ]


@dataclass(frozen=True)
class Budget:
    vcpus: int
    ram_gib: int
    disk_gib: int


def budget_after(host_vcpus: int, host_ram_gib: int, host_disk_gib: int, reserved: list[Reservation]) -> Budget:
    return Budget(
        host_vcpus - sum(r.vcpus for r in reserved),
        host_ram_gib - sum(r.ram_gib for r in reserved),
        host_disk_gib - sum(r.disk_gib for r in reserved),
    )


@dataclass(frozen=True)
class Size:
    vcpus: int
    ram_gib: int
    disk_gib: int


def carve(budget: Budget, vms: Vms, gpu_worker_flags: list[bool]) -> tuple[Size, list[Size]]:
    """Sizes of the control-plane VM and of each worker (gpu_worker_flags[i]: worker i holds a GPU)."""
    for resource, label, unit, fix in (
        ("vcpus", "CPU", "thread(s)", "use a PC with more cores"),
        ("ram_gib", "RAM", "GiB", "add RAM"),
        ("disk_gib", "disk", "GiB of free space in /var/lib", "free disk space or add a disk"),
    ):
        left = getattr(budget, resource)
        if left <= 0:
            short = f"{-left} {unit} short of even those" if left < 0 else "they take all of it"
            raise PlanError(
                f"{label}: nothing is left for VMs after the host OS and OpenStack's reservations ({short})", fix
            )
    mins = [GPU_WORKER_MIN if g else WORKER_MIN for g in gpu_worker_flags]
    cp = _control_plane(budget, vms.control_plane, mins)
    rest = Budget(budget.vcpus - cp.vcpus, budget.ram_gib - cp.ram_gib, budget.disk_gib - cp.disk_gib)
    workers = _workers(rest, vms.workers, gpu_worker_flags, mins)
    _check_fits(budget, cp, workers)
    check_worker_minimums(workers, gpu_worker_flags)
    return cp, workers


def carve_workers(budget: Budget, group: NodeGroup, gpu_worker_flags: list[bool], host: str) -> list[Size]:
    """Sizes of the worker VMs on a PC that runs no control plane (a node added with `affordml add-node`)."""
    for resource, label in (("vcpus", "CPU"), ("ram_gib", "RAM"), ("disk_gib", "disk")):
        if getattr(budget, resource) <= 0:
            raise PlanError(
                f"hosts.{host}: {label}: nothing is left for a VM after the host OS and nova-compute's reservations",
                "add a PC with more CPU, RAM or free disk in /var/lib",
            )
    mins = [GPU_WORKER_MIN if g else WORKER_MIN for g in gpu_worker_flags]
    workers = _workers(budget, group, gpu_worker_flags, mins)
    empty = Size(0, 0, 0)
    _check_fits(budget, empty, workers, check_control_plane=False)
    check_worker_minimums(workers, gpu_worker_flags)
    return workers


def _control_plane(budget: Budget, group: NodeGroup, worker_mins: list[Minimum]) -> Size:
    need = Minimum(*(sum(getattr(m, f) for m in worker_mins) for f in ("vcpus", "ram_gib", "disk_gib")))
    return Size(
        _explicit_or(
            group.vcpus, _target(budget.vcpus, need.vcpus, CONTROL_PLANE_MIN.vcpus, CONTROL_PLANE_TARGET.vcpus)
        ),
        _explicit_or(
            group.ram_gib,
            _target(budget.ram_gib, need.ram_gib, CONTROL_PLANE_MIN.ram_gib, CONTROL_PLANE_TARGET.ram_gib),
        ),
        _explicit_or(
            group.disk_gib,
            _target(budget.disk_gib, need.disk_gib, CONTROL_PLANE_MIN.disk_gib, CONTROL_PLANE_TARGET.disk_gib),
        ),
    )


def _target(available: int, workers_need: int, minimum: int, target: int) -> int:
    """The control plane gets its target where the workers' minimums still fit, else its minimum."""
    return max(minimum, min(target, available - workers_need))


def _explicit_or(value, auto: int) -> int:
    return auto if value == "auto" else int(value)


def _workers(rest: Budget, group: NodeGroup, gpu_flags: list[bool], mins: list[Minimum]) -> list[Size]:
    weights = [2 if g else 1 for g in gpu_flags]
    return [
        Size(
            _explicit_or(group.vcpus, _share(rest.vcpus, weights, i, m.vcpus)),
            _explicit_or(group.ram_gib, _share(rest.ram_gib, weights, i, m.ram_gib)),
            _explicit_or(group.disk_gib, min(WORKER_DISK_CAP_GIB, _share(rest.disk_gib, weights, i, m.disk_gib))),
        )
        for i, m in enumerate(mins)
    ]


def _share(total: int, weights: list[int], index: int, minimum: int) -> int:
    """Worker index's weighted share of total (floored, so the shares never exceed it), at least minimum."""
    return max(minimum, total * weights[index] // sum(weights)) if total > 0 else minimum


def _check_fits(budget: Budget, cp: Size, workers: list[Size], check_control_plane: bool = True) -> None:
    for resource, label, key in (
        ("vcpus", "vCPUs", "vcpus"),
        ("ram_gib", "GiB RAM", "ram_gib"),
        ("disk_gib", "GiB disk", "disk_gib"),
    ):
        used = getattr(cp, resource) + sum(getattr(w, resource) for w in workers)
        have = getattr(budget, resource)
        if used > have:
            raise PlanError(
                f"the VMs need {used} {label} but the host has {have} after its reservations "
                f"(control plane {getattr(cp, resource)}, workers {[getattr(w, resource) for w in workers]})",
                f"lower vms.*.{key}, use fewer workers (vms.workers.count), or give the PC more",
            )
    for name, size, minimum in [("control plane", cp, CONTROL_PLANE_MIN)] if check_control_plane else []:
        _check_minimum(name, size, minimum, "vms.control_plane")


def _check_minimum(name: str, size: Size, minimum: Minimum, field: str) -> None:
    for resource in ("vcpus", "ram_gib", "disk_gib"):
        if getattr(size, resource) < getattr(minimum, resource):
            raise PlanError(
                f"{field}.{resource}: the {name} VM needs at least {getattr(minimum, resource)}, "
                f"configured {getattr(size, resource)}",
                f'raise {field}.{resource} or set it to "auto"',
            )


def check_worker_minimums(workers: list[Size], gpu_flags: list[bool]) -> None:
    for i, (size, gpu) in enumerate(zip(workers, gpu_flags, strict=True)):
        _check_minimum(
            f"{'GPU ' if gpu else ''}worker-{i + 1}", size, GPU_WORKER_MIN if gpu else WORKER_MIN, "vms.workers"
        )
