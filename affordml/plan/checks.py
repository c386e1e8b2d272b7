"""The doctor: named preflight checks over facts and config, each with a severity, a message and the exact fix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from affordml.config.model import Config
from affordml.errors import PlanError
from affordml.facts.model import HostFacts
from affordml.plan import carve, iommu
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


CONTAINERS = {
    "docker",
    "podman",
    "lxc",
    "lxc-libvirt",
    "systemd-nspawn",
    "rkt",
    "openvz",
    "wsl",
    "proot",
    "container-other",
}


def skipped(name: str, message: str) -> list[CheckResult]:
    return [CheckResult(name, "skipped", message)]


def _host_kind(facts: HostFacts) -> str:
    """What the host is, in words that are true: a container, a virtual machine, or both."""
    if facts.virtualization in CONTAINERS:
        inside = " inside a virtual machine" if facts.cpu.hypervisor else ""
        return f"a container ({facts.virtualization}){inside}"
    if facts.virtualization not in ("none", "unknown"):
        return f"a virtual machine ({facts.virtualization})"
    return "a virtual machine (the CPU reports a hypervisor)"


@check("bare-metal", "affordml runs on the PC itself, not in a VM or a container")
def bare_metal(facts: HostFacts, _: Config) -> list[CheckResult]:
    if not facts.is_vm:
        return ok("bare-metal", "not a virtual machine or container")
    return fail(
        "bare-metal",
        f"this host is {_host_kind(facts)}; GPU passthrough into nested VMs does not work",
        "run affordml on the physical PC",
    )


@check("cpu-virtualization", "VT-x / AMD-V exposed by the CPU")
def cpu_virtualization(facts: HostFacts, _: Config) -> list[CheckResult]:
    name = "cpu-virtualization"
    if facts.cpu.virt_flag:
        return ok(name, f"{facts.cpu.model}: {facts.cpu.virt_flag}")
    if facts.is_vm:
        return skipped(name, f"depends on bare-metal: {_host_kind(facts)} shows no VT-x / AMD-V flag to its guest")
    setting = "SVM Mode (AMD-V)" if facts.cpu.vendor == "amd" else "Intel Virtualization Technology (VT-x)"
    return fail(
        name,
        f"{facts.cpu.model} does not expose hardware virtualization",
        f"enable '{setting}' in the firmware (BIOS/UEFI) setup, then boot again",
    )


@check("kvm", "/dev/kvm present")
def kvm(facts: HostFacts, _: Config) -> list[CheckResult]:
    if not facts.cpu.virt_flag:
        where = "present" if facts.kvm_device else "missing"
        return skipped(
            "kvm", f"depends on cpu-virtualization: /dev/kvm is {where}, but KVM needs the CPU's VT-x / AMD-V"
        )
    if facts.kvm_device:
        return ok("kvm", "/dev/kvm is present")
    module = "kvm_amd" if facts.cpu.vendor == "amd" else "kvm_intel"
    return fail(
        "kvm",
        "/dev/kvm is missing: VMs would run 50x slower under emulation",
        f"`sudo modprobe {module}` (the CPU has {facts.cpu.virt_flag}, so only the module is missing)",
    )


def _grub_fix(args: list[str]) -> str:
    return (
        f"`affordml init` adds `{' '.join(args)}` in its host phase and asks for one reboot; by hand: add them to "
        "GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub, `sudo update-grub`, reboot"
    )


@check("iommu-cmdline", "the kernel command line leaves the IOMMU on, in passthrough mode")
def iommu_cmdline(facts: HostFacts, _: Config) -> list[CheckResult]:
    name = "iommu-cmdline"
    reading = iommu.read_iommu(facts)
    args = iommu.host_kernel_args(facts.cpu.vendor)
    if reading.state == iommu.IN_VM:
        return skipped(name, "depends on bare-metal: a VM's command line does not matter here")
    if reading.state == iommu.CMDLINE_OFF:
        off = facts.iommu.cmdline_disabled
        return fail(
            name,
            reading.why,
            f"remove `{off}` from /etc/default/grub (and /etc/default/grub.d/), `sudo update-grub`, reboot",
        )
    if reading.state == iommu.HOST_PHASE:
        return warn(name, reading.why, _grub_fix(args))
    if reading.state == iommu.FIRMWARE_OFF:
        return ok(name, "the command line does not keep the IOMMU off (see iommu-active)")
    domain = facts.iommu.default_domain
    if facts.iommu.passthrough_mode:
        seen = "the kernel reports identity domains" if domain else "iommu=pt on the command line"
        return ok(name, f"{reading.why}, in passthrough mode ({seen})")
    mode = f"translated mode ({domain})" if domain else "translated mode (no iommu=pt)"
    return ok(name, f"{reading.why}, in {mode}; the host phase adds iommu=pt (faster host I/O)")


@check("iommu-active", "the kernel created IOMMU groups")
def iommu_active(facts: HostFacts, _: Config) -> list[CheckResult]:
    name = "iommu-active"
    reading = iommu.read_iommu(facts)
    if reading.state == iommu.ACTIVE:
        return ok(name, f"{facts.iommu.group_count} IOMMU groups")
    if reading.state == iommu.IN_VM:
        return skipped(name, f"depends on bare-metal: {reading.why}")
    if reading.state == iommu.CMDLINE_OFF:
        return skipped(name, "depends on iommu-cmdline: no IOMMU groups while the command line turns it off")
    if reading.state == iommu.HOST_PHASE:
        return warn(
            name,
            "no IOMMU groups yet: they appear after the host phase's reboot (see iommu-cmdline)",
            f"if none appear then, enable '{iommu.firmware_setting(facts.cpu.vendor)}' in the firmware setup",
        )
    return fail(
        name,
        f"no IOMMU groups: {reading.why}",
        f"enable '{iommu.firmware_setting(facts.cpu.vendor)}' (and 'Above 4G decoding') in the firmware setup",
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


def _acs_fake(gpu_group: int | None, acs: str) -> str:
    return (
        f"IOMMU group {gpu_group} looks isolated only because `pcie_acs_override={acs}` is on the kernel command "
        "line: that patch makes the kernel pretend the devices behind one bridge are isolated; they are not, "
        "and a device in the VM could reach the others by peer-to-peer DMA"
    )


@check("gpu-isolatable", "each GPU is alone in its IOMMU group")
def gpu_isolatable(facts: HostFacts, config: Config) -> list[CheckResult]:
    results = []
    reading = iommu.read_iommu(facts)
    for gpu in facts.nvidia_gpus:
        name = f"gpu-isolatable:{gpu.address}"
        if gpu.address in config.gpu.exclude:
            results.append(CheckResult(name, "skipped", f"{gpu.name} is excluded in gpu.exclude"))
        elif gpu.iommu_group is None and reading.state == iommu.HOST_PHASE:
            results += warn(
                name,
                f"{gpu.name} has no IOMMU group yet: its isolation is known after the host phase's reboot",
                "run `affordml doctor` again after that reboot; `affordml init` checks it again when it resumes",
            )
        elif gpu.iommu_group is None:
            results += skipped(name, f"depends on iommu-active: {gpu.name} has no IOMMU group")
        elif facts.iommu.acs_override is not None:
            results += fail(
                name,
                _acs_fake(gpu.iommu_group, facts.iommu.acs_override),
                "remove pcie_acs_override from the kernel command line and move the GPU to a CPU-attached "
                "x16 slot (its real group must hold only the GPU), or list it in gpu.exclude",
            )
        elif gpu.isolatable:
            functions = ", ".join(f.address for f in gpu.functions)
            results.append(CheckResult(name, "pass", f"IOMMU group {gpu.iommu_group} holds only {functions}"))
        elif gpu.isolatable_with_group_gpus:
            results += warn(
                name,
                f"IOMMU group {gpu.iommu_group} holds {gpu.name} and another GPU ({', '.join(gpu.group_gpus)}), "
                "behind one root port: the cards can only go together, to one VM",
                "nothing to do: the plan gives them to one VM; for one card per VM, move one to a slot on "
                "another CPU root port",
            )
        else:
            results += fail(
                name,
                f"{gpu.name}'s IOMMU group {gpu.iommu_group} also holds {', '.join(gpu.group_others)}",
                "move the GPU to the CPU-attached x16 slot, update the firmware, or list it in "
                "gpu.exclude; ACS-override kernel patches are unsafe and not supported",
            )
    return results


@check("guest-driver", "the GPU phase's driver branch supports each GPU")
def guest_driver(facts: HostFacts, config: Config) -> list[CheckResult]:
    from affordml.plan.support import driver_branch, unsupported_reason
    from affordml.versions import load_lock, version_table

    branch = driver_branch(version_table(load_lock()))
    results = []
    for gpu in facts.nvidia_gpus:
        name = f"guest-driver:{gpu.address}"
        reason = unsupported_reason(gpu, branch)
        if gpu.address in config.gpu.exclude:
            results += skipped(name, f"{gpu.name} is excluded in gpu.exclude")
        elif reason:
            results += fail(name, f"{gpu.name}: {reason}", "use a Turing or newer card, or list it in gpu.exclude")
        else:
            arch = gpu.architecture or "architecture not reported"
            results += ok(name, f"{gpu.name} ({arch}) is supported by the {branch} driver branch")
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


@check("vfio-cmdline", "a vfio-pci.ids= on the command line names every function passed through")
def vfio_cmdline(facts: HostFacts, config: Config) -> list[CheckResult]:
    from affordml.plan.support import vfio_ids_problems

    words = facts.iommu.cmdline_vfio_ids
    if words is None:
        return ok("vfio-cmdline", "no vfio-pci.ids= on the command line (the host phase writes its own)")
    functions = [f for g in facts.nvidia_gpus if g.address not in config.gpu.exclude for f in g.functions]
    problems = vfio_ids_problems(words, functions, facts.pci_devices)
    if not problems:
        return ok("vfio-cmdline", f"vfio-pci.ids={','.join(words)} names every GPU function")
    return warn(
        "vfio-cmdline",
        "; ".join(problems),
        "fix or remove vfio-pci.ids= in /etc/default/grub, `sudo update-grub`, reboot (the host phase's own "
        "vfio-pci.ids=, later on the command line, wins meanwhile)",
    )


@check("gpu-driver", "which driver holds each GPU function now")
def gpu_driver(facts: HostFacts, _: Config) -> list[CheckResult]:
    results = []
    for gpu in facts.nvidia_gpus:
        name = f"gpu-driver:{gpu.address}"
        held = [f for f in gpu.functions if f.driver and f.driver != "vfio-pci"]
        if not held:
            on_vfio = all(f.driver == "vfio-pci" for f in gpu.functions)
            results += ok(
                name, "vfio-pci holds every function: ready for passthrough" if on_vfio else "no driver holds it"
            )
            continue
        which = ", ".join(f"{f.address} on {f.driver}" for f in held)
        results += warn(
            name,
            f"{gpu.name}: {which}; vfio-pci must take every function at boot",
            "`affordml init` binds vfio-pci early and blacklists nouveau; then reboot. "
            "Don't use this GPU for the desktop display",
        )
    return results


@check("nvidia-smi", "nvidia-smi answers (when it is installed)")
def nvidia_smi(facts: HostFacts, _: Config) -> list[CheckResult]:
    if facts.nvidia_smi_error:
        return warn(
            "nvidia-smi",
            f"nvidia-smi is installed but no NVIDIA driver answers it (it said: {facts.nvidia_smi_error!r}); "
            "GPU names and memory come from affordml's catalog instead",
            "nothing is needed for passthrough (vfio-pci takes the GPU); for the host's own use, load the driver "
            "(`sudo modprobe nvidia`, or rebuild it for this kernel: `sudo dkms autoinstall`)",
        )
    if facts.nvidia_driver_version:
        return ok("nvidia-smi", f"driver {facts.nvidia_driver_version}")
    return ok("nvidia-smi", "not installed on the host (not needed: the driver runs inside the GPU VM)")


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


def summary(results: list[CheckResult]) -> str:
    """The one count line that doctor and init's preflight both print."""
    counts = {s: sum(1 for r in results if r.status == s) for s in ("pass", "warn", "fail", "skipped")}
    return f"{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed, {counts['skipped']} skipped"


def doctor_results(facts: HostFacts, config: Config, versions: dict[str, str], ignore=frozenset()) -> list[CheckResult]:
    """Every check plus the planner's own verdict: what `affordml doctor` shows and init's preflight counts."""
    from affordml.plan.build import make_plan

    return run_checks(facts, config, set(ignore), plan_feasibility(lambda: make_plan(facts, config, versions)))


def plan_feasibility(make) -> Callable[[], CheckResult]:
    """A check that builds the plan and reports the planner's own error."""

    def run() -> CheckResult:
        try:
            make()
        except PlanError as exc:
            return CheckResult("plan", "fail", exc.problem, exc.fix or "")
        return CheckResult("plan", "pass", "a plan fits this host (see `affordml plan`)")

    return run
