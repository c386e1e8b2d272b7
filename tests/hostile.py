"""Hostile values for every string field of affordml.yaml and of a facts snapshot: Jinja payloads that would
run a command on the Ansible controller if templated, and shell payloads that would run one if a shell saw them.
Each payload touches its own marker file, so a test proves that none ran by finding no marker.

Shared by tests/unit/test_values_inert.py (render + Ansible's loader), tests/cli/test_hostile_values.py (the real
CLI), and tests/integration/hosts/test_hostile_values_host_phase.py (the real host phase on a test host)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hardware"
DESKTOP = FIXTURES / "desktop-rtx4090.json"


def payloads(marker: str) -> dict[str, str]:
    """kind -> a value that creates `marker` (a path) if anything evaluates it."""
    return {
        "jinja": f"x{{{{ lookup('pipe', 'touch {marker}-jinja') }}}}",
        "jinja-stmt": f"x{{% set _ = lookup('pipe', 'touch {marker}-stmt') %}}",
        "subshell": f"$(touch {marker}-subshell)",
        "backticks": f"`touch {marker}-backticks`",
        "semicolon": f"a; touch {marker}-semicolon",
    }


# --------------------------------------------------------------------------------------------- affordml.yaml

# Fields that take free text: the payload must be carried through as data.
CONFIG_FREE_TEXT = ("hosts[0].ssh_key", "cloud.guest_image", "cloud.external_network")
# Fields with a shape (address, user, name, interface, PCI address, layout): the payload must be refused.
CONFIG_SHAPED = (
    "hosts[0].name",
    "hosts[0].address",
    "hosts[0].user",
    "network.management_interface",
    "network.external_interface",
    "network.vm_subnet",
    "network.external_subnet",
    "gpu.exclude[0]",
    "gpu.per_gpu.<key>",
    "gpu.sharing.layout",
)


def set_config_field(config: dict, field: str, value: str) -> dict:
    """A copy of config with `field` (as named above) set to value."""
    data = copy.deepcopy(config)
    if field == "gpu.exclude[0]":
        data.setdefault("gpu", {})["exclude"] = [value]
    elif field == "gpu.per_gpu.<key>":
        data.setdefault("gpu", {})["per_gpu"] = {value: "exclusive"}
    elif field == "gpu.sharing.layout":
        data.setdefault("gpu", {})["sharing"] = {"mode": "mig", "layout": value}
    elif field.startswith("hosts[0]."):
        hosts = data.setdefault("hosts", [{"name": "main", "address": "192.0.2.10"}])
        if hosts[0].get("address", "local") == "local" and field != "hosts[0].address":
            hosts[0]["address"] = "192.0.2.10"
        hosts[0][field.removeprefix("hosts[0].")] = value
    else:
        section, key = field.split(".")
        data.setdefault(section, {})[key] = value
    return data


# --------------------------------------------------------------------------------------------- facts snapshot


@dataclass(frozen=True)
class FactsField:
    name: str
    free_text: bool  # True: carried through as data; False: the facts are refused
    put: Callable[[dict, str], None]  # writes the value into a snapshot dict


def _os_release(key: str):
    def put(snap: dict, value: str) -> None:
        text = snap["files"]["/etc/os-release"]
        snap["files"]["/etc/os-release"] = re.sub(rf"^{key}=.*$", f"{key}={value}", text, flags=re.MULTILINE)

    return put


def _file(path: str, suffix: str = "\n"):
    def put(snap: dict, value: str) -> None:
        snap["files"][path] = value + suffix

    return put


def _command(name: str):
    def put(snap: dict, value: str) -> None:
        snap["commands"][name] = value + "\n"

    return put


def _gpu_name(snap: dict, value: str) -> None:
    xml = snap["commands"]["nvidia-smi -q -x"]
    snap["commands"]["nvidia-smi -q -x"] = re.sub(
        r"<product_name>[^<]*</product_name>", f"<product_name>{escape(value)}</product_name>", xml, count=1
    )


def _driver_version(snap: dict, value: str) -> None:
    xml = snap["commands"]["nvidia-smi -q -x"]
    snap["commands"]["nvidia-smi -q -x"] = re.sub(
        r"<driver_version>[^<]*</driver_version>", f"<driver_version>{escape(value)}</driver_version>", xml, count=1
    )


def _cpu_model(snap: dict, value: str) -> None:
    text = snap["files"]["/proc/cpuinfo"]
    snap["files"]["/proc/cpuinfo"] = re.sub(r"^model name\s*:.*$", f"model name\t: {value}", text, flags=re.M)


def _lsblk(key: str):
    def put(snap: dict, value: str) -> None:
        data = json.loads(snap["commands"]["lsblk -J -b"])
        data["blockdevices"][0][key] = value
        snap["commands"]["lsblk -J -b"] = json.dumps(data)

    return put


def _rename_nic(old: str):
    def put(snap: dict, value: str) -> None:
        snap["dirs"]["/sys/class/net"] = [value if n == old else n for n in snap["dirs"]["/sys/class/net"]]
        prefix = f"/sys/class/net/{old}"
        for table in ("files", "links"):
            snap[table] = {
                (f"/sys/class/net/{value}" + k[len(prefix) :] if k.startswith(prefix + "/") else k): v
                for k, v in snap[table].items()
            }
        addrs = json.loads(snap["commands"]["ip -j addr"])
        for link in addrs:
            if link.get("ifname") == old:
                link["ifname"] = value
        snap["commands"]["ip -j addr"] = json.dumps(addrs)
        routes = json.loads(snap["commands"]["ip -j route show default"])
        for route in routes:
            if route.get("dev") == old:
                route["dev"] = value
        snap["commands"]["ip -j route show default"] = json.dumps(routes)

    return put


def _nic_address(snap: dict, value: str) -> None:
    addrs = json.loads(snap["commands"]["ip -j addr"])
    for link in addrs:
        for info in link.get("addr_info", []):
            if link.get("ifname") == "enp5s0" and info.get("family") == "inet":
                info["local"] = value
    snap["commands"]["ip -j addr"] = json.dumps(addrs)


def _pci_link(path: str):
    def put(snap: dict, value: str) -> None:
        snap["links"][path] = f"../../../../bus/pci/drivers/{value}"

    return put


GPU = "/sys/bus/pci/devices/0000:01:00.0"
FACTS_FIELDS = (
    FactsField("gpus[].name (nvidia-smi product_name)", True, _gpu_name),
    FactsField("nvidia_driver_version", True, _driver_version),
    FactsField("cpu.model", True, _cpu_model),
    FactsField("os.pretty_name", True, _os_release("PRETTY_NAME")),
    FactsField("os.id", True, _os_release("ID")),
    FactsField("os.version_id", True, _os_release("VERSION_ID")),
    FactsField("os.codename", True, _os_release("VERSION_CODENAME")),
    FactsField("hostname", True, _file("/etc/hostname")),
    FactsField("kernel", True, _file("/proc/sys/kernel/osrelease")),
    FactsField("arch (uname -m)", True, _command("uname -m")),
    FactsField("virtualization", True, _command("systemd-detect-virt")),
    FactsField("disks[0].name", True, _lsblk("name")),
    FactsField("disks[0].mountpoint", True, _lsblk("mountpoint")),
    FactsField("nics[enp6s0].mac", True, _file("/sys/class/net/enp6s0/address")),
    FactsField("pci_devices[gpu].driver", True, _pci_link(f"{GPU}/driver")),
    FactsField("nics[].name (default-route NIC)", False, _rename_nic("enp5s0")),
    FactsField("nics[].addresses", False, _nic_address),
    FactsField("pci_devices[gpu].vendor_id", False, _file(f"{GPU}/vendor")),
    FactsField("pci_devices[gpu].device_id", False, _file(f"{GPU}/device")),
    FactsField("pci_devices[gpu].class_code", False, _file(f"{GPU}/class")),
)


def desktop_snapshot() -> dict:
    return json.loads(DESKTOP.read_text())


def hostile_snapshot(fields, value_for: Callable[[FactsField], str], base: dict | None = None) -> dict:
    """The desktop fixture with each of `fields` set to value_for(field)."""
    snap = copy.deepcopy(base or desktop_snapshot())
    for field in fields:
        field.put(snap, value_for(field))
    snap["source"] = "fixture: hostile values"
    return snap


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]
