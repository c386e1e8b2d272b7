"""The one place that talks to Rich: every table, line and progress view the CLI shows."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skipped": "dim"}


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def line(text: str, style: str | None = None) -> None:
    out.print(text, style=style, markup=False)


def error_line(label: str, text: str) -> None:
    err.print(f"[bold red]error[/] ({label}): ", end="")
    err.print(text, markup=False, highlight=False, soft_wrap=True)


def print_checks(results) -> None:
    """kubeadm-style preflight lines: [status] name: finding, then the fix indented below."""
    width = max(len(r.name) for r in results) if results else 0
    for r in results:
        out.print(f"[{STATUS_STYLE[r.status]}]{r.status:>7}[/] {r.name:<{width}}  ", end="")
        out.print(r.message, markup=False)
        if r.fix:
            out.print(f"{'':>8} {'':<{width}}  fix: ", end="", style="bold")
            out.print(r.fix, markup=False)
    counts = {s: sum(1 for r in results if r.status == s) for s in STATUS_STYLE}
    out.print(
        f"{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed, {counts['skipped']} skipped"
    )


def print_facts(facts) -> None:
    table = Table(title=f"facts: {facts.hostname} ({facts.source})", show_header=False)
    table.add_column("fact", style="bold")
    table.add_column("value", overflow="fold")
    rows = [
        ("OS", f"{facts.os.pretty_name}, kernel {facts.kernel}, {facts.arch}"),
        ("CPU", f"{facts.cpu.model}: {facts.cpu.threads} threads, virtualization {facts.cpu.virt_flag or 'none'}"),
        ("RAM", f"{facts.memory_bytes / 1024**3:.1f} GiB"),
        ("disk free", _gib(facts.varlib_free_bytes or facts.root_free_bytes) + " in /var/lib"),
        ("virtualization", f"{facts.virtualization}; /dev/kvm {'present' if facts.kvm_device else 'missing'}"),
        ("IOMMU", f"cmdline {'on' if facts.iommu.cmdline_enabled else 'off'}, {facts.iommu.group_count} groups"),
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
                f"{gpu.name} [{gpu.ids}] {gpu.memory_mib or '?'} MiB, driver "
                f"{gpu.driver or 'none'}, IOMMU group {gpu.iommu_group}, MIG "
                f"{'capable' if gpu.mig_capable else 'no'}",
            )
        )
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)


def _gib(value: int | None) -> str:
    return "unknown" if value is None else f"{value / 1024**3:.0f} GiB"


def print_plan(plan) -> None:
    out.print(
        f"[bold]Plan for {plan.host}[/]: {plan.host_vcpus} threads, {plan.host_ram_gib} GiB RAM, "
        f"{plan.host_disk_free_gib} GiB free disk"
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
        table.add_row(r.name, str(r.vcpus), str(r.ram_gib), str(r.disk_gib), r.why)
    for vm in plan.vms:
        gpu = f"; GPU {', '.join(vm.gpus)}" if vm.gpus else ""
        table.add_row(
            f"VM {vm.name} ({vm.role})", str(vm.vcpus), str(vm.ram_gib), str(vm.disk_gib), f"flavor {vm.flavor}{gpu}"
        )
    out.print(table)
    for g in plan.gpus:
        memory = f", {g.memory_mib} MiB" if g.memory_mib else ""
        out.print(
            f"[bold]GPU {g.address}[/] {g.name} [{g.ids}{memory}] -> VM {g.vm}, "
            f"nova alias {g.nova_alias} ({g.device_type})",
            markup=True,
            highlight=False,
        )
        out.print("  functions: " + ", ".join(f"{f.address} {f.ids} ({f.role})" for f in g.functions), markup=False)
        mode = g.sharing.mode + (
            f" {g.sharing.mig_layout} {list(g.sharing.mig_instances)}" if g.sharing.mig_layout else ""
        )
        out.print(f"  sharing: {mode}, {share_summary(g)}. Why: {g.sharing.reason}", markup=False)
    if plan.vfio_ids:
        out.print(f"vfio-pci ids: {','.join(plan.vfio_ids)}", markup=False)
    if plan.vfio_addresses:
        out.print(
            f"vfio-pci by address (an identical card stays on the host): {', '.join(plan.vfio_addresses)}",
            markup=False,
        )
    out.print("network: " + ", ".join(f"{k} {v}" for k, v in plan.network.items()), markup=False)
    out.print("  " + network_note(plan.network), markup=False)
    totals = plan.totals()
    out.print(
        f"[bold]Platform overhead[/]: {totals['platform_vcpus']} vCPU, {totals['platform_ram_gib']} GiB RAM "
        f"({totals['platform_ram_share']:.0%} of the host), {totals['platform_disk_gib']} GiB disk.  "
        f"[bold]For ML work[/]: {totals['ml_vcpus']} vCPU, {totals['ml_ram_gib']} GiB RAM, "
        f"{totals['ml_gpu_slots']} GPU job slot(s)"
    )
    out.print("versions: " + ", ".join(f"{k} {v}" for k, v in plan.versions.items()), markup=False)
    for w in plan.warnings:
        out.print(f"[yellow]warning[/] ({w.code}): {w.message}")


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

    def _render(self) -> str:
        p = self.progress
        t = p.totals()
        return (
            f"[bold][{p.phase}][/] {p.task or 'starting'}  ok {t.ok} changed {t.changed} "
            f"failed {t.failed} unreachable {t.unreachable}  {p.elapsed:.0f}s"
        )

    def on_event(self, progress, event: dict) -> None:
        if self.live:
            self.live.update(self._render())
        elif progress.task != self.last_task:
            self.last_task = progress.task
            out.print(f"[{progress.phase}] {progress.task}", markup=False)


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
