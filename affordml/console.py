"""The one place that talks to Rich: every table, line and progress view the CLI shows."""

from __future__ import annotations

import json
import os
import sys
import unicodedata

from rich.console import Console
from rich.table import Table
from rich.text import Text

NOT_A_TERMINAL_WIDTH = 1000  # logs, CI, pipes: no wrapping at Rich's default of 80 columns


def _console(stderr: bool = False) -> Console:
    """A terminal gets its own width; anything else gets lines as long as they are (COLUMNS still wins)."""
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = Console(stderr=stderr, highlight=False, width=NOT_A_TERMINAL_WIDTH)
    return console


out = _console()
err = _console(stderr=True)

STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skipped": "dim"}


def _visible(char: str) -> str:
    """A control character as its escape (ESC -> \\x1b), so it shows instead of acting on the terminal."""
    if unicodedata.category(char) not in ("Cc", "Cf"):
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plain(text, style: str | None = None) -> Text:
    """Any text (names from facts, a remote host's output, an error) as Rich text: no markup is interpreted
    and no escape sequence reaches the terminal."""
    return Text("".join(map(_visible, str(text))), style=style or "")


def styled(*parts) -> Text:
    """Text from pieces: a (literal markup-free label, style) pair, or any value shown as plain text."""
    return Text.assemble(*(part if isinstance(part, tuple) else plain(part) for part in parts))


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def line(text: str, style: str | None = None) -> None:
    out.print(plain(text, style))


def error_line(label: str, text: str) -> None:
    err.print(styled(("error", "bold red"), f" ({label}): ", text), highlight=False, soft_wrap=True)


def print_checks(results) -> None:
    """kubeadm-style preflight lines: [status] name: finding, then the fix indented below."""
    width = max(len(r.name) for r in results) if results else 0
    for r in results:
        out.print(styled((f"{r.status:>7}", STATUS_STYLE[r.status]), f" {r.name:<{width}}  ", r.message))
        if r.fix:
            out.print(styled((f"{'':>8} {'':<{width}}  fix: ", "bold"), r.fix))
    from affordml.plan.checks import summary

    out.print(plain(summary(results)))


def print_facts(facts) -> None:
    table = Table(title=plain(f"facts: {facts.hostname} ({facts.source})"), show_header=False)
    table.add_column("fact", style="bold")
    table.add_column("value", overflow="fold")
    rows = [
        ("OS", f"{facts.os.pretty_name}, kernel {facts.kernel}, {facts.arch}"),
        ("CPU", f"{facts.cpu.model}: {facts.cpu.threads} threads, virtualization {facts.cpu.virt_flag or 'none'}"),
        ("RAM", f"{facts.memory_bytes / 1024**3:.1f} GiB"),
        ("disk free", _gib(facts.varlib_free_bytes or facts.root_free_bytes) + " in /var/lib"),
        ("virtualization", f"{facts.virtualization}; /dev/kvm {'present' if facts.kvm_device else 'missing'}"),
        ("IOMMU", _iommu_line(facts)),
        ("vfio-pci", "loaded" if facts.vfio.loaded else "available" if facts.vfio.available else "missing"),
        ("Secure Boot", {True: "on", False: "off", None: "unknown"}[facts.secure_boot]),
    ]
    for nic in facts.nics:
        rows.append(
            (
                f"NIC {nic.name}",
                f"{nic.operstate}{' default route' if nic.default_route else ''} "
                f"{' '.join(nic.addresses)}{' (bridge)' if nic.bridge else ''}",
            )
        )
    for gpu in facts.gpus:
        rows.append(
            (
                f"GPU {gpu.address}",
                f"{gpu.name} [{gpu.ids}] {_memory(gpu.memory_mib, gpu.memory_source)}, "
                f"{gpu.architecture or 'architecture unknown'}, driver "
                f"{gpu.driver or 'none'}, IOMMU group {gpu.iommu_group}, MIG "
                f"{'capable' if gpu.mig_capable else 'no'}"
                + (f", {len(gpu.mig_instances)} MIG instance(s) now" if gpu.mig_instances else ""),
            )
        )
    for key, value in rows:
        table.add_row(plain(key), plain(value))
    out.print(table)


def _iommu_line(facts) -> str:
    from affordml.plan.iommu import read_iommu

    mode = f", default domain {facts.iommu.default_domain}" if facts.iommu.default_domain else ""
    acs = f"; pcie_acs_override={facts.iommu.acs_override} (groups not real)" if facts.iommu.acs_override else ""
    return f"{read_iommu(facts).why}{mode}{acs}"


def _gib(value: int | None) -> str:
    return "unknown" if value is None else f"{value / 1024**3:.0f} GiB"


def _memory(mib: int | None, source: str) -> str:
    if not mib:
        return "memory unknown"
    return f"{mib} MiB" + (" (affordml's catalog)" if source == "catalog" else "")


def sample_note(sample: str) -> str:
    return (
        f"SAMPLE PC: this plan is for {sample}, a sample PC shipped with affordml (--example), not this machine; "
        "run `affordml plan` on your PC for its own plan"
    )


def print_plan(plan, sample: str | None = None) -> None:
    if sample:
        out.print(sample_note(sample), style="bold yellow", markup=False)
    what = f"the sample PC {plan.host}" if sample else plan.host
    out.print(
        styled(
            (f"Plan for {plain(what)}", "bold"),
            f": {plan.host_vcpus} threads, {plan.host_ram_gib} GiB RAM, {plan.host_disk_free_gib} GiB free disk",
        )
    )
    table = Table(title="how the PC is carved")
    for col, justify in (
        ("what", "left"),
        ("vCPU", "right"),
        ("RAM GiB", "right"),
        ("disk GiB", "right"),
        ("notes", "left"),
    ):
        table.add_column(col, justify=justify, overflow="fold")
    for r in plan.reservations:
        table.add_row(*map(plain, (r.name, r.vcpus, r.ram_gib, r.disk_gib, r.why)))
    for vm in plan.vms:
        gpu = f"; GPU {', '.join(vm.gpus)}" if vm.gpus else ""
        cells = (f"VM {vm.name} ({vm.role})", vm.vcpus, vm.ram_gib, vm.disk_gib, f"flavor {vm.flavor}{gpu}")
        table.add_row(*map(plain, cells))
    out.print(table)
    for g in plan.gpus:
        memory = f", {_memory(g.memory_mib, g.memory_source)}"
        out.print(
            styled(
                (f"GPU {g.address}", "bold"),
                f" {g.name} [{g.ids}{memory}] -> VM {g.vm}, nova alias {g.nova_alias} ({g.device_type})",
            )
        )
        out.print(plain("  functions: " + ", ".join(f"{f.address} {f.ids} ({f.role})" for f in g.functions)))
        mode = g.sharing.mode + (
            f" {g.sharing.mig_layout} {list(g.sharing.mig_instances)}" if g.sharing.mig_layout else ""
        )
        out.print(plain(f"  sharing: {mode}, {share_summary(g)}. Why: {g.sharing.reason}"))
        if g.mig_existing:
            out.print(plain(f"  MIG instances on the card now: {', '.join(g.mig_existing)}"))
    if plan.vfio_ids:
        out.print(plain(f"vfio-pci ids: {','.join(plan.vfio_ids)}"))
    if plan.vfio_addresses:
        out.print(plain(f"vfio-pci by address (an identical card stays on the host): {', '.join(plan.vfio_addresses)}"))
    out.print(plain("network: " + ", ".join(f"{k} {v}" for k, v in plan.network.items())))
    out.print(plain("  " + network_note(plan.network)))
    out.print(plain("  " + vip_note(plan.network)))
    totals = plan.totals()
    out.print(
        f"[bold]Platform overhead[/]: {totals['platform_vcpus']} vCPU, {totals['platform_ram_gib']} GiB RAM "
        f"({totals['platform_ram_share']:.0%} of the host), {totals['platform_disk_gib']} GiB disk.  "
        f"[bold]For ML work[/]: {totals['ml_vcpus']} vCPU, {totals['ml_ram_gib']} GiB RAM, "
        f"{totals['ml_gpu_slots']} GPU job slot(s)"
    )
    out.print(plain("versions: " + ", ".join(f"{k} {v}" for k, v in plan.versions.items())))
    for w in plan.warnings:
        out.print(styled(("warning", "yellow"), f" ({w.code}): {w.message}"))


def network_note(network: dict[str, str]) -> str:
    """What the external network layout means for the user, in one line."""
    floating = network.get("floating_range", "")
    if network.get("external_nat") == "yes":
        return (
            f"floating IPs {floating} are reachable from this PC only; the VMs reach the network through NAT on "
            f"{network.get('management_interface')} ({network.get('external_gateway')} on the host is their gateway)"
        )
    return (
        f"floating IPs {floating} are addresses on your LAN: keep them out of your router's DHCP pool; "
        f"the VMs reach the network through {network.get('external_gateway')}"
    )


def vip_note(network: dict[str, str]) -> str:
    """Why OpenStack's API gets an address of its own, and what the user must keep free for it."""
    return (
        f"OpenStack's APIs answer on {network.get('internal_vip')}, a second address on "
        f"{network.get('management_interface')} held by keepalived for haproxy (the all-in-one layout kolla-ansible "
        "tests); keep it out of your router's DHCP pool, or choose one with network.internal_vip"
    )


class _RunView:
    """Live progress while a playbook runs: a status line on a terminal, one line per task otherwise."""

    def __init__(self, progress) -> None:
        self.progress = progress
        self.live = None
        self.last_task = None

    def __enter__(self):
        if out.is_terminal:
            from rich.live import Live

            self.live = Live(self._render(), console=out, refresh_per_second=4, transient=True)
            self.live.__enter__()
        return self.on_event

    def __exit__(self, *exc) -> None:
        if self.live:
            self.live.__exit__(*exc)

    def _render(self) -> Text:
        p = self.progress
        t = p.totals()
        return styled(
            (f"[{p.phase}]", "bold"),
            f" {p.task or 'starting'}  ok {t.ok} changed {t.changed} "
            f"failed {t.failed} unreachable {t.unreachable}  {p.elapsed:.0f}s",
        )

    def on_event(self, progress, event: dict) -> None:
        if self.live:
            self.live.update(self._render())
        elif progress.task != self.last_task:
            self.last_task = progress.task
            out.print(plain(f"[{progress.phase}] {progress.task}"))


def run_view(progress) -> _RunView:
    return _RunView(progress)


def _size(row: dict) -> str:
    if row["size"] is not None:
        return f"{row['size'] / 1024**2:.1f} MiB"
    return f"unknown ({row['size_note']})" if row.get("size_note") else "unknown"


def print_downloads(downloads: dict) -> None:
    out.print("[bold]Downloads[/] (artifacts of the version lock; each is checked before use):")
    for row in downloads["artifacts"]:
        style = "bold red" if row["source"] == "missing" else None
        out.print(
            f"  {row['name']} {row['version']}: {row['source']} {row['where']}, size {_size(row)}, "
            f"checked by {row['verify']}",
            markup=False,
            style=style,
        )
    t = downloads["totals"]
    unknown = f" + {t['unknown_sizes']} of unknown size" if t["unknown_sizes"] else ""
    out.print(
        f"  to fetch: {t['to_fetch']} artifact(s), {t['known_bytes'] / 1024**2:.1f} MiB known{unknown}", markup=False
    )
    if downloads.get("warning"):
        out.print(f"[yellow]warning[/] (mirror): {downloads['warning']}")


def share_summary(gpu) -> str:
    """How many shares, of what memory each, and what the node's device plugin advertises for this GPU."""
    from affordml.plan.sharing import advertised_resources

    s = gpu.sharing
    if s.mode == "mig":
        each = "memory as each MIG profile says"
    elif s.memory_per_slot_mib:
        each = f"~{s.memory_per_slot_mib} MiB each" + (" (enforced)" if s.mode == "mps" else " (not enforced)")
    elif s.mode == "hami" and s.hami_memory_percent:
        each = f"{s.hami_memory_percent} % of memory each by default (enforced)"
    elif s.mode == "exclusive" and gpu.memory_mib:
        each = f"{gpu.memory_mib} MiB"
    else:
        each = "memory not known"
    advertised = ", ".join(f"{k}: {v}" for k, v in advertised_resources(s).items())
    return f"{s.slots} share(s), {each}; the node advertises {advertised}"
