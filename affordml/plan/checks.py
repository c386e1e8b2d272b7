"""The doctor: named preflight checks over facts and config, each with a severity, a message and the exact fix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from affordml.config.model import Config
from affordml.errors import PlanError
from affordml.facts.model import HostFacts
from affordml.plan import carve
from affordml.plan.model import GIB
from affordml.plan.network import spare_nics

# The hosts kolla-ansible 2026.1 supports (its support matrix), the OpenStack release the version lock pins.
SUPPORTED_OS = {("ubuntu", "24.04"), ("debian", "13")}
# Left out of that matrix, though 2026.1's prechecks still let it through (upstream removes it in 2026.2).
DROPPED_OS = {("debian", "12"): "Debian 13 (trixie)"}


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # pass | warn | fail | skipped
    message: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


Check = Callable[[HostFacts, Config], list[CheckResult]]
CHECKS: dict[str, tuple[str, Check]] = {}


def check(name: str, summary: str):
    """Register a check under its name; `--ignore-check NAME` skips it."""

    def register(fn: Check) -> Check:
        CHECKS[name] = (summary, fn)
        return fn

    return register


def ok(name: str, message: str) -> list[CheckResult]:
    return [CheckResult(name, "pass", message)]


def warn(name: str, message: str, fix: str) -> list[CheckResult]:
    return [CheckResult(name, "warn", message, fix)]


def fail(name: str, message: str, fix: str) -> list[CheckResult]:
    return [CheckResult(name, "fail", message, fix)]


@check("supported-os", "Ubuntu 24.04 or Debian 13")
def supported_os(facts: HostFacts, _: Config) -> list[CheckResult]:
    name = "supported-os"
    release = (facts.os.id, facts.os.version_id)
    if release in SUPPORTED_OS:
        return ok(name, facts.os.pretty_name)
    if release in DROPPED_OS:
        return warn(
            name,
            f"{facts.os.pretty_name} is not in kolla-ansible 2026.1's support matrix (Ubuntu 24.04, Debian 13); "
            "its prechecks still accept it, the next release refuses it",
            f"upgrade to {DROPPED_OS[release]} or install Ubuntu 24.04 LTS before `affordml init`",
        )
    return warn(
        name,
        f"{facts.os.pretty_name} is not a tested OS",
        "install Ubuntu 24.04 LTS or Debian 13; other systems may work but are not tested",
    )


@check("architecture", "an x86-64 PC")
def architecture(facts: HostFacts, _: Config) -> list[CheckResult]:
    if facts.arch in ("x86_64", "unknown"):
        return ok("architecture", facts.arch)
    return fail("architecture", f"{facts.arch} is not supported", "use an x86-64 PC")


@check("privileges", "root, or sudo without a password")
def privileges(facts: HostFacts, _: Config) -> list[CheckResult]:
    if facts.is_root or facts.sudo_without_password:
        return ok("privileges", "root" if facts.is_root else "sudo without a password")
    return fail(
        "privileges",
        "affordml needs root to prepare the host",
        "run as root, or allow your user sudo without a password: "
        '`echo "$USER ALL=(ALL) NOPASSWD:ALL" | sudo tee /etc/sudoers.d/affordml`',
    )


@check("cpu-virtualization", "VT-x / AMD-V exposed by the CPU")
def cpu_virtualization(facts: HostFacts, _: Config) -> list[CheckResult]:
    name = "cpu-virtualization"
    if facts.cpu.virt_flag:
        return ok(name, f"{facts.cpu.model}: {facts.cpu.virt_flag}")
    setting = "SVM Mode (AMD-V)" if facts.cpu.vendor == "amd" else "Intel Virtualization Technology (VT-x)"
    return fail(
        name,
        f"{facts.cpu.model} does not expose hardware virtualization",
        f"enable '{setting}' in the firmware (BIOS/UEFI) setup, then boot again",
    )


@check("kvm", "/dev/kvm present")
def kvm(facts: HostFacts, _: Config) -> list[CheckResult]:
    if facts.kvm_device:
        return ok("kvm", "/dev/kvm is present")
    module = "kvm_amd" if facts.cpu.vendor == "amd" else "kvm_intel"
    return fail(
        "kvm",
        "/dev/kvm is missing: VMs would run 50x slower under emulation",
        f"enable CPU virtualization in the firmware, then `sudo modprobe {module}`",
    )


@check("bare-metal", "affordml runs on the PC itself, not in a VM")
def bare_metal(facts: HostFacts, _: Config) -> list[CheckResult]:
    if not facts.is_vm:
        return ok("bare-metal", "not a virtual machine")
    kind = facts.virtualization if facts.virtualization not in ("none", "unknown") else "the CPU reports a hypervisor"
    return fail(
        "bare-metal",
        f"this host is a virtual machine ({kind}); GPU passthrough into nested VMs does not work",
        "run affordml on the physical PC",
    )


@check("iommu-cmdline", "the IOMMU is on in the kernel command line")
def iommu_cmdline(facts: HostFacts, _: Config) -> list[CheckResult]:
    name = "iommu-cmdline"
    arg = "amd_iommu=on iommu=pt" if facts.cpu.vendor == "amd" else "intel_iommu=on iommu=pt"
    fix = (
        f"add `{arg}` to GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub, run `sudo update-grub`, reboot "
        "(`affordml init` does this for you in its host phase)"
    )
    if not facts.iommu.cmdline_enabled:
        return fail(name, "the kernel command line does not turn the IOMMU on", fix)
    if not facts.iommu.passthrough_mode:
        return warn(name, "the IOMMU is on, without iommu=pt (slower host I/O)", fix)
    return ok(name, "the IOMMU is on, in passthrough mode")


@check("iommu-active", "the kernel created IOMMU groups")
def iommu_active(facts: HostFacts, _: Config) -> list[CheckResult]:
    if facts.iommu.active:
        return ok("iommu-active", f"{facts.iommu.group_count} IOMMU groups")
    setting = "AMD-Vi / IOMMU" if facts.cpu.vendor == "amd" else "VT-d"
    return fail(
        "iommu-active",
        "no IOMMU groups: the IOMMU is off",
        f"enable '{setting}' (and 'Above 4G decoding') in the firmware setup, and check iommu-cmdline",
    )


@check("gpu-present", "an NVIDIA GPU")
def gpu_present(facts: HostFacts, _: Config) -> list[CheckResult]:
    gpus = facts.nvidia_gpus
    if gpus:
        return ok("gpu-present", ", ".join(f"{g.name} at {g.address}" for g in gpus))
    return warn(
        "gpu-present",
        "no NVIDIA GPU found: the platform will run CPU-only and skip the GPU phases",
        "fit an NVIDIA GPU in a CPU-attached x16 slot",
    )


@check("gpu-isolatable", "each GPU is alone in its IOMMU group")
def gpu_isolatable(facts: HostFacts, config: Config) -> list[CheckResult]:
    results = []
    for gpu in facts.nvidia_gpus:
        name = f"gpu-isolatable:{gpu.address}"
        if gpu.address in config.gpu.exclude:
            results.append(CheckResult(name, "skipped", f"{gpu.name} is excluded in gpu.exclude"))
        elif gpu.isolatable:
            functions = ", ".join(f.address for f in gpu.functions)
            results.append(CheckResult(name, "pass", f"IOMMU group {gpu.iommu_group} holds only {functions}"))
        elif gpu.iommu_group is None:
            results += fail(name, f"{gpu.name} has no IOMMU group", "turn the IOMMU on (see iommu-active)")
        else:
            results += fail(
                name,
                f"{gpu.name}'s IOMMU group {gpu.iommu_group} also holds {', '.join(gpu.group_others)}",
                "move the GPU to the CPU-attached x16 slot, update the firmware, or list it in "
                "gpu.exclude; ACS-override kernel patches are unsafe and not supported",
            )
    return results


@check("vfio-pci", "the vfio-pci driver is available")
def vfio_pci(facts: HostFacts, _: Config) -> list[CheckResult]:
    if facts.vfio.available:
        return ok("vfio-pci", "loaded" if facts.vfio.loaded else "available")
    return fail(
        "vfio-pci",
        "the vfio-pci driver is not available in this kernel",
        "install the distribution kernel: `sudo apt install linux-image-generic` (Ubuntu) or "
        "`sudo apt install linux-image-amd64` (Debian), then reboot into it",
    )


@check("gpu-driver", "which driver holds each GPU now")
def gpu_driver(facts: HostFacts, _: Config) -> list[CheckResult]:
    results = []
    for gpu in facts.nvidia_gpus:
        name = f"gpu-driver:{gpu.address}"
        if gpu.driver == "vfio-pci":
            results += ok(name, "vfio-pci holds it: ready for passthrough")
        elif gpu.driver in ("nvidia", "nouveau"):
            results += warn(
                name,
                f"{gpu.driver} holds {gpu.name}; vfio-pci must take it at boot",
                "`affordml init` binds vfio-pci early and blacklists nouveau; then reboot. "
                "Don't use this GPU for the desktop display",
            )
        else:
            results += ok(name, f"no driver holds {gpu.name}")
    return results


@check("secure-boot", "Secure Boot vs unsigned kernel modules")
def secure_boot(facts: HostFacts, _: Config) -> list[CheckResult]:
    if facts.secure_boot is False:
        return ok("secure-boot", "off")
    if facts.secure_boot is None:
        return warn("secure-boot", "Secure Boot state unknown", "install mokutil: `sudo apt install mokutil`")
    dkms = [g for g in facts.nvidia_gpus if g.driver == "nvidia"]
    if dkms:
        return warn(
            "secure-boot",
            "Secure Boot is on and the host uses the (unsigned, DKMS) nvidia driver",
            "nothing to do for affordml (vfio-pci is signed); the host's nvidia module stops loading "
            "once vfio-pci takes the GPU",
        )
    return ok("secure-boot", "on; vfio-pci and KVM are signed in-tree modules")


@check("nic-management", "a NIC with the default route")
def nic_management(facts: HostFacts, config: Config) -> list[CheckResult]:
    wanted = config.network.management_interface
    nic = facts.default_nic if wanted == "auto" else next((n for n in facts.nics if n.name == wanted), None)
    if nic is None:
        return fail(
            "nic-management",
            "no NIC for management (none carries the default route)",
            "connect the PC to the network, or set network.management_interface",
        )
    if not any(":" not in a for a in nic.addresses):
        return fail("nic-management", f"{nic.name} has no IPv4 address", "configure DHCP or a static address")
    if nic.wireless:
        return warn(
            "nic-management", f"{nic.name} is wireless: neutron bridging over Wi-Fi does not work", "use a wired NIC"
        )
    return ok("nic-management", f"{nic.name} {', '.join(nic.addresses)}")


@check("nic-external", "a NIC for neutron's external network")
def nic_external(facts: HostFacts, config: Config) -> list[CheckResult]:
    spare = spare_nics(facts, facts.default_nic)
    wanted = config.network.external_interface
    if wanted not in ("auto", "create"):
        return ok("nic-external", f"configured: {wanted}; floating IPs are reachable from the LAN")
    if spare and wanted == "auto":
        return ok("nic-external", f"{spare[0].name} is free for neutron; floating IPs are reachable from the LAN")
    nat = "the VMs reach the network through NAT on this PC; floating IPs are reachable from this PC only"
    if spare:
        return warn(
            "nic-external",
            f'network.external_interface is "create": {nat}',
            f'set network.external_interface to "auto" to give neutron {spare[0].name} '
            "for floating IPs reachable from the LAN",
        )
    return warn(
        "nic-external",
        f"no free wired NIC: {nat}",
        "connect a second wired NIC to the same network (a USB 3 gigabit adapter will do) "
        "for floating IPs reachable from the LAN",
    )


@check("resources", "CPU, RAM and disk enough for the platform")
def resources(facts: HostFacts, config: Config) -> list[CheckResult]:
    workers = config.vms.workers.count
    gpu = any(g.address not in config.gpu.exclude for g in facts.nvidia_gpus)  # excluded GPUs get no worker
    need = _minimum_need(workers, gpu)
    free = facts.varlib_free_bytes if facts.varlib_free_bytes is not None else facts.root_free_bytes
    have = {
        "cpu": facts.cpu.threads,
        "ram": facts.memory_bytes // GIB,
        "disk": (free or 0) // GIB,  # /var/lib when known, as the planner counts it (0 free is full, not unknown)
    }
    units = {"cpu": "CPU threads", "ram": "GiB RAM", "disk": "GiB free disk in /var/lib"}
    fixes = {
        "cpu": "use a PC with more cores, or fewer workers (vms.workers.count)",
        "ram": "add RAM, or fewer workers (vms.workers.count)",
        "disk": "free disk space or add a disk",
    }
    return [
        CheckResult(
            f"{key}-enough",
            "pass" if have[key] >= need[key] else "fail",
            f"{have[key]} {units[key]} (the platform needs at least {need[key]})",
            "" if have[key] >= need[key] else fixes[key],
        )
        for key in ("cpu", "ram", "disk")
    ]


def _minimum_need(workers: int, gpu: bool) -> dict[str, int]:
    reserved = carve.reservations(1 + workers)
    mins = [carve.CONTROL_PLANE_MIN] + [
        carve.GPU_WORKER_MIN if gpu and i == 0 else carve.WORKER_MIN for i in range(workers)
    ]
    return {
        "cpu": sum(r.vcpus for r in reserved) + sum(m.vcpus for m in mins),
        "ram": sum(r.ram_gib for r in reserved) + sum(m.ram_gib for m in mins),
        "disk": sum(r.disk_gib for r in reserved) + sum(m.disk_gib for m in mins),
    }


def run_checks(facts: HostFacts, config: Config, ignore: set[str] = frozenset(), plan_check=None) -> list[CheckResult]:
    """Every registered check, in order; ignored ones are reported as skipped."""
    unknown = {i for i in ignore if i not in CHECKS}
    if unknown:
        raise PlanError(f"--ignore-check: unknown check {sorted(unknown)[0]!r}", f"use one of: {', '.join(CHECKS)}")
    results = []
    for name, (_, fn) in CHECKS.items():
        if name in ignore:
            results.append(CheckResult(name, "skipped", "ignored (--ignore-check)"))
            continue
        results += fn(facts, config)
    if plan_check is not None:
        results.append(plan_check())
    return results


def plan_feasibility(make) -> Callable[[], CheckResult]:
    """A check that builds the plan and reports the planner's own error."""

    def run() -> CheckResult:
        try:
            make()
        except PlanError as exc:
            return CheckResult("plan", "fail", exc.problem, exc.fix or "")
        return CheckResult("plan", "pass", "a plan fits this host (see `affordml plan`)")

    return run
