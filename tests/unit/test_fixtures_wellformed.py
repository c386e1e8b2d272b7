"""The host snapshot fixtures under tests/fixtures/hardware/ are well formed and consistent with themselves."""

from __future__ import annotations

import importlib.util
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from affordml.facts.snapshot import SNAPSHOT_FORMAT, Snapshot

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "hardware"
FIXTURES = sorted(FIXTURE_DIR.glob("*.json"))
HAND_MADE = [
    "h200-vm",
    "desktop-rtx4090",
    "shared-iommu-group",
    "iommu-off",
    "server-a100-mig",
    "workstation-2gpu",
    "one-nic-pc",
    "too-small",
    "intel-default-off",
    "ubuntu-iommu-default-on",
    "iommu-noncanonical",
    "acs-override",
    "vfio-ids-typo",
    "a100-mig-enabled",
    "two-gpus-one-group",
    "pascal-gtx1080ti",
    "unknown-card",
    "nvidia-smi-no-driver",
]
PCI = "/sys/bus/pci/devices"
GROUPS = "/sys/kernel/iommu_groups"
ADDR = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")


def _load(path: Path) -> tuple[dict, Snapshot]:
    data = json.loads(path.read_text())
    return data, Snapshot.from_dict(data)


@pytest.fixture(params=FIXTURES, ids=lambda p: p.stem)
def fixture(request) -> tuple[dict, Snapshot]:
    return _load(request.param)


def test_all_hand_made_fixtures_exist():
    names = {p.stem for p in FIXTURES}
    assert set(HAND_MADE) <= names
    assert "ci-machine" in names


def test_loads_with_the_snapshot_format(fixture):
    data, snap = fixture
    assert data["format"] == SNAPSHOT_FORMAT
    assert snap.source and snap.source != "unknown"
    assert snap.to_dict() == data  # nothing outside the format, nothing lost
    for section in ("files", "links", "commands"):
        assert all(isinstance(v, str) for v in data[section].values()), section
    assert all(isinstance(v, list) for v in data["dirs"].values())


def test_pci_devices_have_id_files(fixture):
    _, snap = fixture
    devices = snap.listdir(PCI)
    assert devices
    for addr in devices:
        assert ADDR.match(addr), addr
        for attr, pattern in (("vendor", r"0x[0-9a-f]{4}"), ("device", r"0x[0-9a-f]{4}"), ("class", r"0x[0-9a-f]{6}")):
            value = snap.file(f"{PCI}/{addr}/{attr}")
            assert value is not None, f"{addr}/{attr} missing"
            assert re.fullmatch(pattern, value), f"{addr}/{attr} = {value!r}"  # the collector strips the newline


def test_pci_links_point_where_sysfs_links_point(fixture):
    data, snap = fixture
    devices = set(snap.listdir(PCI))
    for key, target in data["links"].items():
        if not key.startswith(PCI + "/"):
            continue
        addr, _, name = key[len(PCI) + 1 :].partition("/")
        assert addr in devices, key
        if name == "driver":
            assert re.fullmatch(r"(\.\./){3,}bus/pci/drivers/[\w.-]+", target), (key, target)
        else:
            assert name == "iommu_group", key
            assert re.fullmatch(r"(\.\./){3,}kernel/iommu_groups/\d+", target), (key, target)
        other = data["links"].get(f"{PCI}/{addr}/{'iommu_group' if name == 'driver' else 'driver'}")
        if other:  # both links climb from the same sysfs dir to /sys
            assert other.count("../") == target.count("../"), addr


def test_iommu_group_links_match_group_dirs(fixture):
    data, snap = fixture
    groups = set(snap.listdir(GROUPS))
    for key, target in data["links"].items():
        if not key.endswith("/iommu_group"):
            continue
        addr = key.split("/")[-2]
        group = target.rsplit("/", 1)[1]
        assert group in groups, key
        assert addr in snap.listdir(f"{GROUPS}/{group}/devices"), f"{addr} not listed in group {group}"
    for group in groups:
        members = snap.listdir(f"{GROUPS}/{group}/devices")
        assert members, f"group {group} is empty"
        for addr in members:
            assert addr in snap.listdir(PCI), addr
            link = snap.link(f"{PCI}/{addr}/iommu_group")
            assert link is not None and link.endswith(f"/iommu_groups/{group}"), (addr, link)


def _gpu_addr(gpu_id: str) -> str:
    """nvidia-smi writes an 8-digit domain ("00000000:01:00.0"); sysfs a 4-digit one."""
    domain, rest = gpu_id.split(":", 1)
    return f"{int(domain, 16):04x}:{rest.lower()}"


def test_nvidia_smi_xml_parses_and_matches_the_pci_devices(fixture):
    data, snap = fixture
    xml = snap.command("nvidia-smi -q -x")
    if xml is None:
        pytest.skip("no nvidia-smi output in this snapshot")
    if xml.startswith("NVIDIA-SMI has failed"):
        pytest.skip("nvidia-smi could not reach a driver: its complaint, not XML (test_parse covers it)")
    root = ET.fromstring(xml)
    assert root.tag == "nvidia_smi_log"
    gpus = root.findall("gpu")
    assert gpus and int(root.findtext("attached_gpus")) == len(gpus)
    addrs = []
    for gpu in gpus:
        addr = _gpu_addr(gpu.get("id"))
        assert addr in snap.listdir(PCI), addr
        assert snap.file(f"{PCI}/{addr}/vendor") == "0x10de"
        assert snap.link(f"{PCI}/{addr}/driver").endswith("/nvidia")
        assert _gpu_addr(gpu.findtext("pci/pci_bus_id")) == addr
        device = snap.file(f"{PCI}/{addr}/device")[2:].upper()
        assert gpu.findtext("pci/pci_device_id") == f"{device}10DE"
        assert gpu.findtext("product_name").startswith("NVIDIA")
        assert re.fullmatch(r"\d+ MiB", gpu.findtext("fb_memory_usage/total"))
        assert gpu.findtext("mig_mode/current_mig") in ("Enabled", "Disabled", "N/A")
        addrs.append(addr)
    on_nvidia = [a for a in snap.listdir(PCI) if (snap.link(f"{PCI}/{a}/driver") or "").endswith("/nvidia")]
    assert sorted(addrs) == on_nvidia


def test_command_outputs_parse(fixture):
    data, snap = fixture
    if snap.command("ip -j addr") is not None:  # absent where the host has no `ip` (the lent H200 machine)
        links = json.loads(snap.command("ip -j addr"))
        names = {link["ifname"] for link in links}
        assert set(snap.listdir("/sys/class/net")) == names
        routes = json.loads(snap.command("ip -j route show default"))
        assert all(r["dev"] in names for r in routes)
    assert json.loads(snap.command("lsblk -J -b"))["blockdevices"]
    for where in ("/", "/var/lib"):
        lines = snap.command(f"df -B1 -P {where}").splitlines()
        assert lines[0].startswith("Filesystem") and len(lines) == 2
        assert len(lines[1].split()) == 6
    for name in snap.listdir("/sys/class/net"):
        device = snap.link(f"/sys/class/net/{name}/device")
        if device and ADDR.match(device.rsplit("/", 1)[1]):
            assert device.rsplit("/", 1)[1] in snap.listdir(PCI), name


def test_h200_fixture_keeps_the_real_record_verbatim():
    _, snap = _load(FIXTURE_DIR / "h200-vm.json")
    assert snap.command("nvidia-smi -q -x") == (FIXTURE_DIR / "h200-vm" / "nvidia-smi-q.xml").read_text()
    record = json.loads((FIXTURE_DIR / "h200-vm" / "sysfs-pci.json").read_text())
    for addr, attrs in record["pci_devices"].items():
        for attr in ("vendor", "device", "class", "subsystem_vendor", "subsystem_device", "numa_node"):
            assert snap.file(f"{PCI}/{addr}/{attr}") == attrs[attr]
        assert snap.link(f"{PCI}/{addr}/driver").endswith("/" + attrs["driver"])
        assert attrs["iommu_group"] is None and snap.link(f"{PCI}/{addr}/iommu_group") is None


def test_generator_reproduces_the_committed_json():
    spec = importlib.util.spec_from_file_location("_make_fixtures", FIXTURE_DIR / "_make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert sorted(module.FIXTURES) == sorted(HAND_MADE)
    for name, make in module.FIXTURES.items():
        assert make() == json.loads((FIXTURE_DIR / f"{name}.json").read_text()), name
