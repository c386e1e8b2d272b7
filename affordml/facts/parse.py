"""Pure parsers: snapshot text in, typed facts out. No I/O here."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import NamedTuple

from affordml.errors import FactsError
from affordml.facts.check import check_facts
from affordml.facts.gpu_catalog import architecture_from_device_id, card_info
from affordml.facts.model import (
    NVIDIA_VENDOR,
    Cpu,
    Disk,
    Gpu,
    HostFacts,
    Iommu,
    MigInstance,
    MigProfile,
    Nic,
    OsRelease,
    PciDevice,
    Vfio,
)
from affordml.facts.nvidia_smi import (
    SmiGpu,
    nvidia_smi_failure,
    parse_mig_gpu_instances,
    parse_mig_profiles,
    parse_nvidia_smi,
)
from affordml.facts.snapshot import Snapshot

PCI_ROOT = "/sys/bus/pci/devices"
NET_ROOT = "/sys/class/net"
GROUPS_ROOT = "/sys/kernel/iommu_groups"
ACPI_TABLES = "/sys/firmware/acpi/tables"
_PCI_ADDRESS = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")


def parse_os_release(text: str | None) -> OsRelease:
    if not text:
        return OsRelease()
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"').strip("'")
    return OsRelease(
        id=values.get("ID", "unknown"),
        version_id=values.get("VERSION_ID", ""),
        pretty_name=values.get("PRETTY_NAME", values.get("NAME", "unknown")),
        codename=values.get("VERSION_CODENAME", ""),
    )


def parse_cpuinfo(text: str | None) -> Cpu:
    if not text:
        return Cpu()
    model, vendor_raw, flags, threads = "unknown", "", set(), 0
    phys_bits: int | None = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor":
            threads += 1
        elif key == "model name" and model == "unknown":
            model = value
        elif key == "vendor_id" and not vendor_raw:
            vendor_raw = value
        elif key == "flags" and not flags:
            flags = set(value.split())
        elif key == "address sizes" and phys_bits is None:
            phys_bits = _physical_bits(value)
    vendor = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}.get(vendor_raw, "unknown")
    virt = "vmx" if "vmx" in flags else "svm" if "svm" in flags else None
    return Cpu(
        model=model,
        vendor=vendor,
        threads=threads,
        virt_flag=virt,
        hypervisor="hypervisor" in flags,
        phys_address_bits=phys_bits,
    )


def _physical_bits(value: str) -> int | None:
    """ "46 bits physical, 57 bits virtual" -> 46."""
    first = value.split(",", 1)[0].split()
    return int(first[0]) if len(first) >= 3 and first[0].isdigit() and first[2] == "physical" else None


def parse_bar_sizes(text: str | None) -> tuple[int, ...]:
    """Sizes of BAR0..BAR5 from sysfs `resource` (one "start end flags" line per region, hex)."""
    sizes = []
    for line in (text or "").splitlines()[:6]:
        parts = line.split()
        try:
            start, end = int(parts[0], 16), int(parts[1], 16)
        except (IndexError, ValueError):
            return ()
        sizes.append(end - start + 1 if end > start else 0)
    return tuple(sizes)


def _count(text: str | None) -> int:
    value = (text or "").strip()
    return int(value) if value.isdigit() else 0


def parse_meminfo_total(text: str | None) -> int:
    """MemTotal in bytes."""
    match = re.search(r"^MemTotal:\s+(\d+)\s*kB", text or "", re.MULTILINE)
    if not match:
        raise FactsError("/proc/meminfo has no MemTotal line", "collect the facts again on the host itself")
    return int(match.group(1)) * 1024


def parse_df_available(text: str | None) -> int | None:
    """Available bytes from `df -B1 -P PATH` (second line, fourth column)."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    fields = lines[-1].split()
    return int(fields[3]) if len(fields) >= 4 and fields[3].isdigit() else None


def parse_lsblk(text: str | None) -> list[Disk]:
    data = _json(text, "lsblk -J -b")
    disks: list[Disk] = []

    def walk(devices: list[dict]) -> None:
        for dev in devices:
            disks.append(
                Disk(
                    name=str(dev.get("name")),
                    size_bytes=int(dev.get("size") or 0),
                    kind=str(dev.get("type")),
                    rotational=str(dev.get("rota")).lower() in ("1", "true"),
                    mountpoint=dev.get("mountpoint"),
                )
            )
            walk(dev.get("children") or [])

    try:
        walk((data or {}).get("blockdevices") or [])
    except (AttributeError, TypeError, ValueError) as exc:
        raise _shape_error("lsblk -J -b", exc) from None
    return disks


def parse_ip_addresses(text: str | None) -> dict[str, tuple[str, ...]]:
    """Interface name -> its addresses in CIDR form, from `ip -j addr`."""
    result: dict[str, tuple[str, ...]] = {}
    try:
        for link in _json(text, "ip -j addr") or []:
            addrs = tuple(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", []) if "local" in a)
            result[link.get("ifname", "?")] = addrs
    except (AttributeError, TypeError, KeyError) as exc:
        raise _shape_error("ip -j addr", exc) from None
    return result


def parse_default_route_devices(text: str | None) -> set[str]:
    try:
        return {route["dev"] for route in _json(text, "ip -j route show default") or [] if "dev" in route}
    except (TypeError, KeyError) as exc:
        raise _shape_error("ip -j route show default", exc) from None


def parse_default_gateway(text: str | None) -> str | None:
    """The IPv4 next hop of the first default route with one, from `ip -j route show default`."""
    try:
        for route in _json(text, "ip -j route show default") or []:
            gateway = route.get("gateway")
            if gateway and _is_ipv4(gateway):
                return gateway
    except (AttributeError, TypeError) as exc:
        raise _shape_error("ip -j route show default", exc) from None
    return None


def _is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def _shape_error(what: str, exc: Exception) -> FactsError:
    """JSON that parses but is not what the command prints (a list where a mapping belongs, a missing field)."""
    detail = f"{type(exc).__name__}: {exc}"
    return FactsError(f"the output of `{what}` does not have the expected fields ({detail})", "collect the facts again")


def parse_proc_net_route(text: str | None) -> set[str]:
    """Interfaces with a default route, from /proc/net/route (where `ip` is not installed)."""
    devices = set()
    for line in (text or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 2 and fields[1] == "00000000":
            devices.add(fields[0])
    return devices


def parse_proc_net_route_gateway(text: str | None) -> str | None:
    """The next hop of the first default route with one, from /proc/net/route (Gateway: little-endian hex)."""
    for line in (text or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and fields[1] == "00000000" and fields[2] != "00000000":
            try:
                raw = bytes.fromhex(fields[2])
            except ValueError:
                continue
            if len(raw) == 4:
                return str(ipaddress.IPv4Address(raw[::-1]))
    return None


def _json(text: str | None, what: str):
    if text is None or not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactsError(f"the output of `{what}` is not JSON ({exc.msg})", "collect the facts again") from None


def parse_iommu_cmdline(cmdline: str, cpu_vendor: str) -> tuple[bool, bool]:
    """(enabled, passthrough mode) as the kernel command line asks (the last word of each key wins, as in the
    kernel). AMD kernels turn the IOMMU on by default; `iommu.passthrough=1` is the generic spelling of iommu=pt.
    Only an explanation: what the running kernel did is in the IOMMU groups (see `iommu_from_snapshot`)."""
    args = dict(_kv(word) for word in cmdline.split())
    if cmdline_disables_iommu(cmdline, cpu_vendor):
        return False, False
    intel = args.get("intel_iommu", "").split(",")
    enabled = cpu_vendor == "amd" or "on" in intel
    passthrough = args.get("iommu") == "pt" or args.get("iommu.passthrough", "") in ("1", "y", "Y", "on")
    if args.get("iommu") == "nopt" or args.get("iommu.passthrough", "") in ("0", "n", "N", "off"):
        passthrough = False
    return enabled, passthrough


def cmdline_disables_iommu(cmdline: str, cpu_vendor: str) -> str | None:
    """The argument that turns the IOMMU off for this CPU's vendor, as written, or None."""
    args = dict(_kv(word) for word in cmdline.split())
    if args.get("iommu") == "off":
        return "iommu=off"
    if cpu_vendor == "amd" and "off" in args.get("amd_iommu", "").split(","):
        return f"amd_iommu={args['amd_iommu']}"
    if cpu_vendor != "amd" and "off" in args.get("intel_iommu", "").split(","):
        return f"intel_iommu={args['intel_iommu']}"
    return None


def cmdline_vfio_ids(cmdline: str) -> tuple[str, ...] | None:
    """The comma-separated words of `vfio-pci.ids=` (the kernel treats - and _ in module names alike)."""
    args = dict(_kv(word) for word in cmdline.split())
    raw = args.get("vfio-pci.ids", args.get("vfio_pci.ids"))
    return None if raw is None else tuple(w for w in raw.strip('"').split(",") if w)


def iommu_from_snapshot(snap: Snapshot, cmdline: str, cpu_vendor: str, groups: dict[int, list[str]]) -> Iommu:
    """The IOMMU as the running kernel reports it: groups exist, and each group's `type` says the default domain
    (identity = passthrough, DMA / DMA-FQ = translated), whatever spelling the command line used."""
    enabled, pt = parse_iommu_cmdline(cmdline, cpu_vendor)
    types = [(snap.file(f"{GROUPS_ROOT}/{g}/type") or "").strip() for g in groups]
    types = [t for t in types if t]
    domain = max(sorted(set(types)), key=types.count) if types else None
    tables = snap.dirs.get(ACPI_TABLES)
    wanted = "IVRS" if cpu_vendor == "amd" else "DMAR"
    args = dict(_kv(word) for word in cmdline.split())
    return Iommu(
        cmdline_enabled=enabled,
        passthrough_mode=domain == "identity" if domain else pt,
        active=bool(groups),
        group_count=len(groups),
        cmdline_disabled=cmdline_disables_iommu(cmdline, cpu_vendor),
        default_domain=domain,
        firmware_table=None if tables is None else any(t.startswith(wanted) for t in tables),
        acs_override=args.get("pcie_acs_override"),
        cmdline_vfio_ids=cmdline_vfio_ids(cmdline),
    )


def _kv(word: str) -> tuple[str, str]:
    key, _, value = word.partition("=")
    return key, value


def _hex_id(raw: str | None) -> str:
    return (raw or "").strip().lower().removeprefix("0x")


def _link_tail(target: str | None) -> str | None:
    return target.rstrip("/").rsplit("/", 1)[-1] if target else None


def parse_pci_devices(snap: Snapshot) -> list[PciDevice]:
    devices = []
    for address in snap.listdir(PCI_ROOT):
        if not _PCI_ADDRESS.fullmatch(address):
            raise FactsError(f"PCI address {address!r} in {PCI_ROOT} is malformed", "collect the facts again")
        base = f"{PCI_ROOT}/{address}"
        group = _link_tail(snap.link(f"{base}/iommu_group"))
        devices.append(
            PciDevice(
                address=address,
                vendor_id=_hex_id(snap.file(f"{base}/vendor")),
                device_id=_hex_id(snap.file(f"{base}/device")),
                class_code=_hex_id(snap.file(f"{base}/class")),
                driver=_link_tail(snap.link(f"{base}/driver")),
                iommu_group=int(group) if group and group.isdigit() else None,
                sriov_totalvfs=_count(snap.file(f"{base}/sriov_totalvfs")),
                bar_sizes=parse_bar_sizes(snap.file(f"{base}/resource")),
            )
        )
    return devices


def iommu_groups(snap: Snapshot) -> dict[int, list[str]]:
    groups = {}
    for name in snap.listdir(GROUPS_ROOT):
        if name.isdigit():
            groups[int(name)] = snap.listdir(f"{GROUPS_ROOT}/{name}/devices")
    return groups


class GpuExtras(NamedTuple):
    """What a GPU's record gets beyond its PCI functions: BAR1 size and nvidia-smi's MIG views."""

    bar1_mib: int | None = None
    mig_names: tuple[tuple[str, int], ...] = ()  # (profile, GPU instance id) from -lgi
    mig_profiles: tuple[MigProfile, ...] = ()


def build_gpus(
    devices: list[PciDevice],
    groups: dict[int, list[str]],
    smi: list[SmiGpu],
    extras: dict[str, GpuExtras] | None = None,
) -> list[Gpu]:
    """NVIDIA display/3D controllers, each with its slot's functions and the rest of its IOMMU group. Other NVIDIA
    GPUs' functions in the group are kept apart from the rest: those cards can go to one VM together."""
    by_address = {d.address: d for d in devices}
    smi_by_bus = {g.bus_id: g for g in smi}
    gpu_slots = {d.slot for d in devices if d.vendor_id == NVIDIA_VENDOR and d.is_gpu}
    gpus = []
    for dev in devices:
        if dev.vendor_id != NVIDIA_VENDOR or not dev.is_gpu:
            continue
        functions = tuple(sorted((d for d in devices if d.slot == dev.slot), key=lambda d: d.address != dev.address))
        own = {f.address for f in functions}
        members = groups.get(dev.iommu_group, []) if dev.iommu_group is not None else []
        rest = [m for m in members if m not in own and not (m in by_address and by_address[m].is_bridge)]
        mates = tuple(m for m in rest if m in by_address and by_address[m].slot in gpu_slots)
        others = tuple(m for m in rest if m not in mates)
        extra = (extras or {}).get(dev.address, GpuExtras())
        gpus.append(_gpu(dev, functions, others, smi_by_bus.get(dev.address), extra, mates))
    return gpus


def _gpu(
    dev: PciDevice, functions: tuple, others: tuple, smi: SmiGpu | None, extra: GpuExtras, mates: tuple = ()
) -> Gpu:
    known = card_info(dev.device_id)
    name = smi.name if smi else known.name if known else f"NVIDIA GPU {dev.ids}"
    memory, source = (
        (smi.memory_mib, "nvidia-smi")
        if smi and smi.memory_mib
        else (known.memory_mib, "catalog")
        if known
        else (None, "unknown")
    )
    mig_capable = smi.mig_mode in ("Enabled", "Disabled") if smi else bool(known and known.mig_capable)
    names = dict((gi, profile) for profile, gi in extra.mig_names)
    instances = tuple(
        MigInstance(i.gpu_instance_id, names.get(i.gpu_instance_id, ""), i.memory_mib)
        for i in (smi.mig_instances if smi else ())
    ) or tuple(MigInstance(gi, profile) for profile, gi in sorted(extra.mig_names, key=lambda n: n[1]))
    return Gpu(
        address=dev.address,
        vendor_id=dev.vendor_id,
        device_id=dev.device_id,
        name=name,
        memory_mib=memory,
        mig_capable=mig_capable,
        mig_enabled=bool(smi and smi.mig_mode == "Enabled"),
        driver=dev.driver,
        iommu_group=dev.iommu_group,
        functions=functions,
        group_others=others,
        architecture=(smi.architecture if smi else None) or architecture_from_device_id(dev.device_id),
        bar1_mib=extra.bar1_mib,
        memory_source=source,
        mig_instances=instances if smi is None or smi.mig_mode == "Enabled" else (),
        mig_profiles=extra.mig_profiles,
        group_gpus=mates,
    )


def bar1_mib(resource: str | None) -> int | None:
    """BAR1's size in MiB from a device's sysfs `resource` (NVIDIA's BAR1 is the framebuffer aperture: at most the
    card's memory on large-BAR cards, 256 MiB without resizable BAR)."""
    sizes = parse_bar_sizes(resource)
    return sizes[1] // (1024 * 1024) if len(sizes) > 1 and sizes[1] else None


def gpu_extras(snap: Snapshot, devices: list[PciDevice], smi: list[SmiGpu]) -> dict[str, GpuExtras]:
    """BAR1 per NVIDIA GPU, and the MIG tables by GPU index (nvidia-smi numbers GPUs in its XML's order)."""
    names = parse_mig_gpu_instances(snap.command("nvidia-smi mig -lgi"))
    profiles = parse_mig_profiles(snap.command("nvidia-smi mig -lgip"))
    index = {g.bus_id: i for i, g in enumerate(smi)}
    extras = {}
    for dev in devices:
        if dev.vendor_id == NVIDIA_VENDOR and dev.is_gpu:
            i = index.get(dev.address)
            extras[dev.address] = GpuExtras(
                bar1_mib=bar1_mib(snap.file(f"{PCI_ROOT}/{dev.address}/resource")),
                mig_names=tuple(names.get(i, ())) if i is not None else (),
                mig_profiles=tuple(profiles.get(i, ())) if i is not None else (),
            )
    return extras


def parse_nics(snap: Snapshot) -> list[Nic]:
    addresses = parse_ip_addresses(snap.command("ip -j addr"))
    routes = snap.command("ip -j route show default")
    defaults = (
        parse_default_route_devices(routes)
        if routes is not None
        else parse_proc_net_route(snap.file("/proc/net/route"))
    )
    nics = []
    for name in snap.listdir(NET_ROOT):
        if name == "lo":
            continue
        base = f"{NET_ROOT}/{name}"
        speed = (snap.file(f"{base}/speed") or "").strip()
        nics.append(
            Nic(
                name=name,
                mac=(snap.file(f"{base}/address") or "").strip(),
                operstate=(snap.file(f"{base}/operstate") or "unknown").strip(),
                speed_mbps=int(speed) if speed.isdigit() and int(speed) > 0 else None,
                physical=snap.link(f"{base}/device") is not None,
                bridge=f"{base}/bridge" in snap.dirs,
                wireless=f"{base}/wireless" in snap.dirs,
                addresses=addresses.get(name, ()),
                default_route=name in defaults,
            )
        )
    return nics


def parse_gateway(snap: Snapshot) -> str | None:
    """The default route's IPv4 next hop: from `ip` where it ran, else from /proc/net/route."""
    routes = snap.command("ip -j route show default")
    if routes is not None:
        return parse_default_gateway(routes)
    return parse_proc_net_route_gateway(snap.file("/proc/net/route"))


def parse_secure_boot(snap: Snapshot) -> bool | None:
    text = snap.command("mokutil --sb-state")
    if text:
        lowered = text.lower()
        if "secureboot enabled" in lowered:
            return True
        if "secureboot disabled" in lowered:
            return False
    if "/sys/firmware/efi" not in snap.dirs:
        return False  # legacy BIOS boot has no Secure Boot
    return None


_VFIO_PCI_MODULE = re.compile(r"(^|/)vfio[-_]pci\.ko", re.MULTILINE)


def parse_vfio(snap: Snapshot) -> Vfio:
    builtin = snap.file("/lib/modules/KERNEL/modules.builtin") or ""
    deps = snap.file("/lib/modules/KERNEL/modules.dep") or ""
    # the driver itself (…/vfio-pci.ko or vfio_pci.ko), not vendor variants such as mlx5-vfio-pci.ko
    available = bool(_VFIO_PCI_MODULE.search(builtin) or _VFIO_PCI_MODULE.search(deps))
    loaded = snap.file("/sys/module/vfio_pci/initstate") is not None or "/dev/vfio" in snap.dirs
    return Vfio(available=available or loaded, loaded=loaded)


def _yes_no(text: str | None) -> bool | None:
    return None if text is None else text.strip() == "yes"


def facts_from_snapshot(snap: Snapshot) -> HostFacts:
    """Every fact we use, parsed from one snapshot."""
    cpu = parse_cpuinfo(snap.file("/proc/cpuinfo"))
    cmdline = (snap.file("/proc/cmdline") or "").strip()
    smi_text = snap.command("nvidia-smi -q -x")
    driver_version, smi = parse_nvidia_smi(smi_text)
    devices = parse_pci_devices(snap)
    groups = iommu_groups(snap)
    uid = (snap.command("id -u") or "").strip()
    facts = HostFacts(
        hostname=(snap.file("/etc/hostname") or "unknown").strip() or "unknown",
        source=snap.source,
        arch=(snap.command("uname -m") or "unknown").strip(),
        os=parse_os_release(snap.file("/etc/os-release")),
        kernel=(snap.file("/proc/sys/kernel/osrelease") or "unknown").strip(),
        cmdline=cmdline,
        cpu=cpu,
        memory_bytes=parse_meminfo_total(snap.file("/proc/meminfo")),
        disks=parse_lsblk(snap.command("lsblk -J -b")),
        root_free_bytes=parse_df_available(snap.command("df -B1 -P /")),
        varlib_free_bytes=parse_df_available(snap.command("df -B1 -P /var/lib")),
        nics=parse_nics(snap),
        pci_devices=devices,
        gpus=build_gpus(devices, groups, smi, gpu_extras(snap, devices, smi)),
        iommu=iommu_from_snapshot(snap, cmdline, cpu.vendor, groups),
        vfio=parse_vfio(snap),
        kvm_device=snap.file("/dev/kvm") is not None,
        virtualization=(snap.command("systemd-detect-virt") or "").strip() or "unknown",
        secure_boot=parse_secure_boot(snap),
        is_root=(uid == "0") if uid else None,
        sudo_without_password=_yes_no(snap.command("sudo -n true")),
        nvidia_driver_version=driver_version,
        nvidia_smi_error=nvidia_smi_failure(smi_text),
        default_gateway=parse_gateway(snap),
    )
    return check_facts(facts)
