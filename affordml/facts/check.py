"""Every string of parsed facts checked by what it is, before anything plans with it, renders it or prints it.

A facts file may come from anywhere and a remote host may say anything: an interface name reaches `ip` and nft,
PCI ids reach the kernel command line, names reach the terminal. One bad field refuses the whole facts, with
the field's path in the error line."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from affordml import values
from affordml.errors import FactsError
from affordml.facts.model import HostFacts

LONG_TEXT = 8192  # the kernel command line, a disk's mount point


def _text(value: str | None) -> str | None:
    return None if value is None else values.text_problem(value)


def _long_text(value: str | None) -> str | None:
    return None if value is None else values.text_problem(value, LONG_TEXT)


def _hex(pattern, what: str):
    def problem(value: str | None) -> str | None:
        if value and pattern.fullmatch(value):
            return None
        return f"{value!r} is not {what}" if value else f"is missing (expected {what})"

    return problem


_pci_id = _hex(values.PCI_ID, "a PCI id of 4 hex digits")
_pci_class = _hex(values.PCI_CLASS, "a PCI class of 6 hex digits")


def _cidr(value: str) -> str | None:
    try:
        ipaddress.ip_interface(value)
        return None
    except ValueError:
        return f"{value!r} is not an address in CIDR form"


def _ip(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        return f"{value!r} is not an IP address"


def _fields(facts: HostFacts) -> Iterator[tuple[str, object, object]]:
    """(field path, value, problem function) for every string the facts hold."""
    for name in ("hostname", "source", "arch", "kernel", "virtualization", "nvidia_driver_version"):
        yield name, getattr(facts, name), _text
    yield "cmdline", facts.cmdline, _long_text
    yield "default_gateway", facts.default_gateway, _ip
    for name in ("id", "version_id", "pretty_name", "codename"):
        yield f"os.{name}", getattr(facts.os, name), _text
    for name in ("model", "vendor", "virt_flag"):
        yield f"cpu.{name}", getattr(facts.cpu, name), _text
    for i, disk in enumerate(facts.disks):
        yield f"disks[{i}].name", disk.name, _text
        yield f"disks[{i}].kind", disk.kind, _text
        yield f"disks[{i}].mountpoint", disk.mountpoint, _long_text
    for nic in facts.nics:
        yield f"nics[{nic.name!r}].name", nic.name, values.interface_problem
        for name in ("mac", "operstate"):
            yield f"nics[{nic.name}].{name}", getattr(nic, name), _text
        for address in nic.addresses:
            yield f"nics[{nic.name}].addresses", address, _cidr
    for dev in facts.pci_devices:
        where = f"pci_devices[{dev.address}]"
        yield f"{where}.address", dev.address, values.pci_address_problem
        yield f"{where}.vendor_id", dev.vendor_id, _pci_id
        yield f"{where}.device_id", dev.device_id, _pci_id
        yield f"{where}.class_code", dev.class_code, _pci_class
        yield f"{where}.driver", dev.driver, _text
    for gpu in facts.gpus:
        yield f"gpus[{gpu.address}].name", gpu.name, _text
        for other in gpu.group_others:
            yield f"gpus[{gpu.address}].iommu_group", other, values.pci_address_problem
    for i, note in enumerate(facts.notes):
        yield f"notes[{i}]", note, _long_text


def check_facts(facts: HostFacts) -> HostFacts:
    """The facts unchanged, or a FactsError naming the first bad field."""
    for path, value, problem in _fields(facts):
        if value is None:
            continue
        reason = problem(value)
        if reason:
            raise FactsError(
                f"facts of {_shown(facts.hostname)}: {path} {reason}",
                "collect the facts again on the host itself; a facts file must come from `affordml facts --save`",
            )
    return facts


def _shown(name: str) -> str:
    return name if not values.has_control(name) and len(name) <= 64 else repr(name[:64])
