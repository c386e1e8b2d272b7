"""The pure fact parsers: every hardware fixture parses to the facts its README describes; each parser alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affordml.errors import FactsError
from affordml.facts.collect import MARKER, collect_local, parse_records
from affordml.facts.model import HostFacts
from affordml.facts.nvidia_smi import (
    normalise_bus_id,
    nvidia_smi_failure,
    parse_mig_gpu_instances,
    parse_mig_profiles,
    parse_nvidia_smi,
)
from affordml.facts.parse import (
    bar1_mib,
    cmdline_disables_iommu,
    cmdline_vfio_ids,
    facts_from_snapshot,
    parse_cpuinfo,
    parse_default_gateway,
    parse_default_route_devices,
    parse_df_available,
    parse_gateway,
    parse_iommu_cmdline,
    parse_ip_addresses,
    parse_lsblk,
    parse_meminfo_total,
    parse_os_release,
    parse_proc_net_route,
    parse_proc_net_route_gateway,
    parse_secure_boot,
    parse_vfio,
)
from affordml.facts.snapshot import Snapshot
from affordml.facts.sources import load_snapshot_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hardware"
FIXTURE_NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))
GIB = 1024**3


def load(name: str) -> HostFacts:
    return facts_from_snapshot(load_snapshot_file(FIXTURES / f"{name}.json"))


# ------------------------------------------------------------------------------------------ every fixture


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_fixture_parses_and_dumps_as_json(name):
    facts = load(name)
    data = json.loads(json.dumps(facts.to_dict()))
    assert data["hostname"] == facts.hostname != "unknown"
    assert data["is_vm"] == facts.is_vm
    assert facts.cpu.threads >= 1
    assert facts.memory_bytes > GIB
    assert facts.arch == "x86_64"
    assert [g["isolatable"] for g in data["gpus"]] == [g.isolatable for g in facts.gpus]


def test_the_fixture_set_is_the_one_described():
    expected = {
        "ci-machine",
        "h200-vm",
        "desktop-rtx4090",
        "shared-iommu-group",
        "iommu-off",
        "server-a100-mig",
        "workstation-2gpu",
        "one-nic-pc",
        "too-small",
    }
    assert expected <= set(FIXTURE_NAMES)


# name -> the facts each fixture holds (tests/fixtures/hardware/README.md)
GPU = tuple  # (address, name, ids, memory MiB, MIG capable, driver, IOMMU group, functions, isolatable)
EXPECTED: dict[str, dict] = {
    "ci-machine": {
        "os": ("debian", "12"),
        "cpu": ("amd", 2, None, True),
        "ram_gib": 23,
        "gpus": [],
        "driver": None,
        "nics": {"eth0": ("up", True, ("192.0.2.2/24",)), "ifb0": ("down", False, ()), "ifb1": ("down", False, ())},
        "iommu": (True, False, False, 0),  # AMD: on unless turned off; no groups (a VM)
        "secure_boot": False,
        "vfio": (False, False),
        "kvm": True,
        "virt": "docker",
        "is_vm": True,
        "root": True,
    },
    "h200-vm": {
        "os": ("ubuntu", "24.04"),
        "cpu": ("amd", 16, None, True),
        "ram_gib": 125,
        "gpus": [("0000:00:06.0", "NVIDIA H200", "10de:2335", 143771, True, "nvidia", None, ["0000:00:06.0"], False)],
        "driver": "580.159.04",
        "nics": {"eth0": ("up", True, ("192.0.2.2/24",))},
        "iommu": (True, False, False, 0),
        "secure_boot": False,
        "vfio": (False, False),
        "kvm": False,
        "virt": "kvm",
        "is_vm": True,
        "root": True,
    },
    "desktop-rtx4090": {
        "os": ("ubuntu", "24.04"),
        "cpu": ("amd", 32, "svm", False),
        "ram_gib": 62,
        "gpus": [
            (
                "0000:01:00.0",
                "NVIDIA GeForce RTX 4090",
                "10de:2684",
                24564,
                False,
                "nvidia",
                12,
                ["0000:01:00.0", "0000:01:00.1"],
                True,
            )
        ],
        "driver": "580.95.05",
        "nics": {"enp5s0": ("up", True, ("192.168.1.42/24",)), "enp6s0": ("down", False, ())},
        "iommu": (True, True, True, 30),
        "secure_boot": False,
        "vfio": (True, True),
        "kvm": True,
        "virt": "none",
        "is_vm": False,
        "root": False,
    },
    "shared-iommu-group": {
        "os": ("debian", "12"),
        "cpu": ("intel", 20, "vmx", False),
        "ram_gib": 31,
        "gpus": [
            (
                "0000:04:00.0",
                "NVIDIA GeForce RTX 3060",
                "10de:2504",
                12288,
                False,
                "nvidia",
                8,
                ["0000:04:00.0", "0000:04:00.1"],
                False,
            )
        ],
        "driver": "580.95.05",
        "nics": {"enp0s31f6": ("up", True, ("192.168.10.23/24",))},
        "iommu": (True, False, True, 11),
        "secure_boot": True,
        "vfio": (True, False),
        "kvm": True,
        "virt": "none",
        "is_vm": False,
        "root": False,
    },
    "iommu-off": {
        "os": ("ubuntu", "24.04"),
        "cpu": ("intel", 12, "vmx", False),
        "ram_gib": 31,
        "gpus": [
            (
                "0000:01:00.0",
                "NVIDIA GeForce RTX 3090",
                "10de:2204",
                24576,
                False,
                "nouveau",
                None,
                ["0000:01:00.0", "0000:01:00.1"],
                False,
            )
        ],
        "driver": None,  # no nvidia-smi: name and memory come from the PCI id table
        "nics": {"enp3s0": ("up", True, ("192.168.0.117/24",))},
        "iommu": (False, False, False, 0),
        "secure_boot": False,
        "vfio": (True, True),
        "kvm": True,
        "virt": "none",
        "is_vm": False,
        "root": False,
    },
    "server-a100-mig": {
        "os": ("ubuntu", "24.04"),
        "cpu": ("amd", 64, "svm", False),
        "ram_gib": 503,
        "gpus": [
            (
                "0000:43:00.0",
                "NVIDIA A100 80GB PCIe",
                "10de:20b5",
                81920,
                True,
                "vfio-pci",
                29,
                ["0000:43:00.0"],
                True,  # group 29 also holds the PEX switch ports: bridges do not count
            )
        ],
        "driver": None,
        "nics": {"eno1": ("up", True, ("10.20.0.15/24",)), "eno2": ("up", False, ("10.30.0.15/24",))},
        "iommu": (True, True, True, 45),
        "secure_boot": False,
        "vfio": (True, True),
        "kvm": True,
        "virt": "none",
        "is_vm": False,
        "root": True,
    },
    "workstation-2gpu": {
        "os": ("debian", "13"),
        "cpu": ("intel", 32, "vmx", False),
        "ram_gib": 125,
        "gpus": [
            (
                "0000:17:00.0",
                "NVIDIA RTX A6000",
                "10de:2230",
                49140,
                False,
                "nvidia",
                14,
                ["0000:17:00.0", "0000:17:00.1"],
                True,
            ),
            (
                "0000:31:00.0",
                "NVIDIA RTX A6000",
                "10de:2230",
                49140,
                False,
                "nvidia",
                17,
                ["0000:31:00.0", "0000:31:00.1"],
                True,
            ),
        ],
        "driver": "580.95.05",
        "nics": {"enp5s0": ("up", True, ("192.168.50.10/24",)), "enp6s0": ("up", False, ("10.0.0.5/24",))},
        "iommu": (True, True, True, 18),
        "secure_boot": False,
        "vfio": (True, False),
        "kvm": True,
        "virt": "none",
        "is_vm": False,
        "root": False,
    },
    "one-nic-pc": {
        "os": ("debian", "12"),
        "cpu": ("intel", 24, "vmx", False),
        "ram_gib": 62,
        "gpus": [
            (
                "0000:01:00.0",
                "NVIDIA GeForce RTX 4070",
                "10de:2786",
                12282,
                False,
                "nvidia",
                11,
                ["0000:01:00.0", "0000:01:00.1"],
                True,
            )
        ],
        "driver": "580.95.05",
        "nics": {"enp3s0": ("up", True, ("192.168.1.77/24",)), "docker0": ("down", False, ("172.17.0.1/16",))},
        "iommu": (True, True, True, 14),
        "secure_boot": False,
        "vfio": (True, False),
        "kvm": True,
        "virt": "none",
        "is_vm": False,
        "root": False,
    },
    "too-small": {
        "os": ("ubuntu", "24.04"),
        "cpu": ("intel", 4, "vmx", False),
        "ram_gib": 7,
        "gpus": [
            (
                "0000:01:00.0",
                "NVIDIA GeForce GTX 1650",
                "10de:1f82",
                4096,
                False,
                "nvidia",
                1,
                ["0000:01:00.0", "0000:01:00.1"],
                True,  # its group holds its root port too, which is a bridge
            )
        ],
        "driver": "580.95.05",
        "nics": {"eno1": ("up", True, ("192.168.1.61/24",))},
        "iommu": (True, False, True, 7),
        "secure_boot": False,
        "vfio": (True, True),
        "kvm": True,
        "virt": "none",
        "is_vm": False,
        "root": False,
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_facts(name):
    want = EXPECTED[name]
    facts = load(name)
    assert (facts.os.id, facts.os.version_id) == want["os"]
    assert (facts.cpu.vendor, facts.cpu.threads, facts.cpu.virt_flag, facts.cpu.hypervisor) == want["cpu"]
    assert facts.memory_bytes // GIB == want["ram_gib"]
    got_gpus = [
        (
            g.address,
            g.name,
            g.ids,
            g.memory_mib,
            g.mig_capable,
            g.driver,
            g.iommu_group,
            [f.address for f in g.functions],
            g.isolatable,
        )
        for g in facts.gpus
    ]
    assert got_gpus == [tuple(g) for g in want["gpus"]]
    assert facts.nvidia_driver_version == want["driver"]
    nics = {n.name: n for n in facts.nics}
    assert set(nics) == set(want["nics"])
    assert "lo" not in nics
    for nic_name, (state, default, ipv4) in want["nics"].items():
        nic = nics[nic_name]
        assert nic.operstate == state
        assert nic.default_route is default
        assert tuple(a for a in nic.addresses if ":" not in a) == ipv4
    defaults = [n.name for n in facts.nics if n.default_route]
    assert len(defaults) == 1 and facts.default_nic.name == defaults[0]
    iommu = facts.iommu
    assert (iommu.cmdline_enabled, iommu.passthrough_mode, iommu.active, iommu.group_count) == want["iommu"]
    assert facts.secure_boot is want["secure_boot"]
    assert (facts.vfio.available, facts.vfio.loaded) == want["vfio"]
    assert facts.kvm_device is want["kvm"]
    assert facts.virtualization == want["virt"]
    assert facts.is_vm is want["is_vm"]
    assert facts.is_root is want["root"]


def test_shared_group_names_the_strangers():
    gpu = load("shared-iommu-group").gpus[0]
    assert gpu.group_others == ("0000:05:00.0", "0000:06:00.0")  # USB and SATA controllers; root ports left out


def test_gpu_functions_carry_their_class_and_ids():
    gpu = load("desktop-rtx4090").gpus[0]
    assert [(f.ids, f.class_code[:4]) for f in gpu.functions] == [("10de:2684", "0300"), ("10de:22ba", "0403")]
    assert all(f.iommu_group == 12 for f in gpu.functions)


def test_bmc_vga_is_not_an_nvidia_gpu():
    facts = load("server-a100-mig")
    vga = [d for d in facts.pci_devices if d.is_gpu]
    assert {d.vendor_id for d in vga} == {"1a03", "10de"}  # ASPEED BMC and the A100
    assert [g.address for g in facts.nvidia_gpus] == ["0000:43:00.0"]


def test_server_keeps_var_lib_on_its_own_disk():
    facts = load("server-a100-mig")
    assert facts.varlib_free_bytes > facts.root_free_bytes
    assert any(d.mountpoint == "/var/lib" for d in facts.disks)


def test_h200_mig_disabled_but_capable():
    gpu = load("h200-vm").gpus[0]
    assert gpu.mig_capable and not gpu.mig_enabled


def test_h200_device_fixture_without_ip_command():
    """The real lent machine had no `ip`: NICs come from sysfs, without addresses or a default route."""
    if "h200-device" not in FIXTURE_NAMES:
        pytest.skip("no h200-device fixture")
    facts = load("h200-device")
    assert facts.is_vm and facts.cpu.hypervisor and facts.virtualization == "unknown"
    assert [g.name for g in facts.gpus] == ["NVIDIA H200"]
    assert all(not n.addresses for n in facts.nics)


# ---------------------------------------------------------------------------------------- pure parsers


def test_os_release():
    text = 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\nID=ubuntu\n'
    assert parse_os_release(text) == parse_os_release(text.replace('"', "'"))
    osr = parse_os_release(text)
    assert (osr.id, osr.version_id, osr.pretty_name, osr.codename) == ("ubuntu", "24.04", "Ubuntu 24.04.1 LTS", "noble")
    assert parse_os_release(None).id == "unknown"
    assert parse_os_release("NAME=Foo\n").pretty_name == "Foo"
    assert parse_os_release("# comment\n\nID=debian\n").id == "debian"


CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Core(TM) i7-13700
flags\t\t: fpu vme sse vmx ept

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Core(TM) i7-13700
flags\t\t: fpu vme sse vmx ept
"""


def test_cpuinfo_intel_and_amd():
    cpu = parse_cpuinfo(CPUINFO)
    assert (cpu.model, cpu.vendor, cpu.threads, cpu.virt_flag, cpu.hypervisor) == (
        "Intel(R) Core(TM) i7-13700",
        "intel",
        2,
        "vmx",
        False,
    )
    amd = parse_cpuinfo(CPUINFO.replace("GenuineIntel", "AuthenticAMD").replace("vmx", "svm hypervisor"))
    assert (amd.vendor, amd.virt_flag, amd.hypervisor) == ("amd", "svm", True)
    none = parse_cpuinfo(CPUINFO.replace(" vmx", ""))
    assert none.virt_flag is None
    assert parse_cpuinfo("").threads == 0
    assert parse_cpuinfo("vendor_id: HygonGenuine\nprocessor: 0\n").vendor == "unknown"


def test_meminfo():
    assert parse_meminfo_total("MemTotal:       65536000 kB\nMemFree: 1 kB\n") == 65536000 * 1024
    assert parse_meminfo_total("MemFree: 1 kB\nMemTotal: 1024 kB") == 1024 * 1024
    for bad in (None, "", "MemFree: 5 kB\n", "MemTotal: lots\n"):
        with pytest.raises(FactsError) as exc:
            parse_meminfo_total(bad)
        assert "MemTotal" in exc.value.problem and exc.value.fix


def test_df_available():
    text = "Filesystem 1-blocks Used Available Capacity Mounted on\n/dev/nvme0n1p2 1000 200 800 20% /\n"
    assert parse_df_available(text) == 800
    assert parse_df_available(text + "\n\n") == 800
    assert parse_df_available(None) is None
    assert parse_df_available("Filesystem 1-blocks Used Available Capacity Mounted on\n") is None
    assert parse_df_available("header\n/dev/x 1 2 - 3% /\n") is None


def test_lsblk_walks_children():
    text = json.dumps(
        {
            "blockdevices": [
                {
                    "name": "nvme0n1",
                    "size": 2000398934016,
                    "type": "disk",
                    "rota": False,
                    "mountpoint": None,
                    "children": [
                        {
                            "name": "nvme0n1p1",
                            "size": 536870912,
                            "type": "part",
                            "rota": "0",
                            "mountpoint": "/boot/efi",
                        },
                        {"name": "nvme0n1p2", "size": "1999000000000", "type": "part", "rota": "1", "mountpoint": "/"},
                    ],
                }
            ]
        }
    )
    disks = parse_lsblk(text)
    assert [(d.name, d.kind, d.rotational, d.mountpoint) for d in disks] == [
        ("nvme0n1", "disk", False, None),
        ("nvme0n1p1", "part", False, "/boot/efi"),
        ("nvme0n1p2", "part", True, "/"),
    ]
    assert disks[2].size_bytes == 1999000000000
    assert parse_lsblk(None) == [] and parse_lsblk('{"blockdevices": []}') == []


@pytest.mark.parametrize(
    "text",
    ["{not json", "[1, 2]", '{"blockdevices": [{"name": "sda", "size": "big"}]}', '{"blockdevices": [3]}'],
)
def test_lsblk_garbage_is_a_facts_error(text):
    with pytest.raises(FactsError) as exc:
        parse_lsblk(text)
    assert "lsblk" in exc.value.problem and exc.value.fix


IP_ADDR = json.dumps(
    [
        {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
        {
            "ifname": "enp5s0",
            "addr_info": [
                {"family": "inet", "local": "192.168.1.42", "prefixlen": 24},
                {"family": "inet6", "local": "fe80::1", "prefixlen": 64},
            ],
        },
        {"ifname": "enp6s0", "addr_info": []},
    ]
)


def test_ip_addresses_and_default_route():
    assert parse_ip_addresses(IP_ADDR) == {
        "lo": ("127.0.0.1/8",),
        "enp5s0": ("192.168.1.42/24", "fe80::1/64"),
        "enp6s0": (),
    }
    routes = json.dumps([{"dst": "default", "gateway": "192.168.1.1", "dev": "enp5s0"}, {"dst": "default"}])
    assert parse_default_route_devices(routes) == {"enp5s0"}
    assert parse_default_route_devices("[]") == set() and parse_default_route_devices(None) == set()
    assert parse_ip_addresses(None) == {}


@pytest.mark.parametrize(
    "what,text",
    [
        ("ip -j addr", "[{"),
        ("ip -j addr", '{"ifname": "x"}'),
        ("ip -j addr", '[{"ifname": "x", "addr_info": [{"local": "10.0.0.1"}]}]'),
        ("ip -j route show default", "[1]"),
        ("ip -j route show default", "not json"),
    ],
)
def test_ip_garbage_is_a_facts_error(what, text):
    parser = parse_ip_addresses if what == "ip -j addr" else parse_default_route_devices
    with pytest.raises(FactsError) as exc:
        parser(text)
    assert f"`{what}`" in exc.value.problem and exc.value.fix


def test_proc_net_route_fallback():
    text = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
        "eth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\n"
        "eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"
        "eth1\t0003000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"
    )
    assert parse_proc_net_route(text) == {"eth0"}
    assert parse_proc_net_route(None) == set()
    assert parse_proc_net_route_gateway(text) == "10.0.2.1"  # little-endian hex
    assert parse_proc_net_route_gateway(None) is None
    no_gateway = "Iface\tDestination\tGateway \tFlags\nwg0\t00000000\t00000000\t0001\n"
    assert parse_proc_net_route_gateway(no_gateway) is None  # a default route straight onto a link
    assert parse_proc_net_route_gateway("Iface Destination Gateway\neth0 00000000 zz\n") is None


def test_default_gateway_from_ip_route():
    routes = json.dumps(
        [
            {"dst": "default", "dev": "wg0"},
            {"dst": "default", "gateway": "fe80::1", "dev": "enp5s0"},
            {"dst": "default", "gateway": "192.168.1.1", "dev": "enp5s0"},
        ]
    )
    assert parse_default_gateway(routes) == "192.168.1.1"
    assert parse_default_gateway("[]") is None and parse_default_gateway(None) is None
    with pytest.raises(FactsError):
        parse_default_gateway("[1]")


@pytest.mark.parametrize(
    "name,gateway",
    [("desktop-rtx4090", "192.168.1.1"), ("one-nic-pc", "192.168.1.1"), ("server-a100-mig", "10.20.0.1")],
)
def test_fixture_default_gateway(name, gateway):
    assert load(name).default_gateway == gateway


def test_default_gateway_from_proc_net_route_where_ip_is_missing():
    snap = Snapshot(
        source="test",
        files={"/proc/net/route": "Iface\tDestination\tGateway\neth0\t00000000\t0101A8C0\n"},
    )
    assert parse_gateway(snap) == "192.168.1.1"
    snap.commands["ip -j route show default"] = "[]"  # `ip` ran and found no default route: it wins
    assert parse_gateway(snap) is None


SMI = """<?xml version="1.0" ?>
<nvidia_smi_log>
  <driver_version>580.95.05</driver_version>
  <gpu id="00000000:01:00.0">
    <product_name>NVIDIA GeForce RTX 4090</product_name>
    <mig_mode><current_mig>N/A</current_mig><pending_mig>N/A</pending_mig></mig_mode>
    <fb_memory_usage><total>24564 MiB</total><used>1 MiB</used></fb_memory_usage>
  </gpu>
  <gpu id="00000000:43:00.0">
    <product_name>NVIDIA A100 80GB PCIe</product_name>
    <mig_mode><current_mig>Enabled</current_mig></mig_mode>
    <fb_memory_usage><total>81920 MiB</total></fb_memory_usage>
  </gpu>
  <gpu id="00000000:81:00.0">
    <mig_mode><current_mig>Disabled</current_mig></mig_mode>
    <fb_memory_usage><total>N/A</total></fb_memory_usage>
  </gpu>
</nvidia_smi_log>
"""


def test_nvidia_smi_xml():
    driver, gpus = parse_nvidia_smi(SMI)
    assert driver == "580.95.05"
    assert [(g.bus_id, g.name, g.memory_mib, g.mig_mode) for g in gpus] == [
        ("0000:01:00.0", "NVIDIA GeForce RTX 4090", 24564, "N/A"),
        ("0000:43:00.0", "NVIDIA A100 80GB PCIe", 81920, "Enabled"),
        ("0000:81:00.0", "NVIDIA GPU", None, "Disabled"),
    ]
    assert parse_nvidia_smi(None) == (None, []) and parse_nvidia_smi("  \n") == (None, [])
    assert parse_nvidia_smi("<nvidia_smi_log></nvidia_smi_log>") == (None, [])


@pytest.mark.parametrize("xml", ["<nvidia_smi_log><gpu>", "<?xml version='1.0'?><nvidia_smi_log"])
def test_nvidia_smi_bad_xml_is_a_facts_error(xml):
    with pytest.raises(FactsError) as exc:
        parse_nvidia_smi(xml)
    assert "nvidia-smi" in exc.value.problem and exc.value.fix


def test_nvidia_smi_that_cannot_reach_a_driver_is_a_fact_not_an_error():
    """Finding 19: its own complaint (not XML) means no driver answers: no GPUs from it, the text kept."""
    text = (
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest "
        "NVIDIA driver is installed and running.\n"
    )
    assert parse_nvidia_smi(text) == (None, [])
    assert nvidia_smi_failure(text).startswith("NVIDIA-SMI has failed because it couldn't communicate")
    assert nvidia_smi_failure(SMI) is None and nvidia_smi_failure(None) is None
    facts = facts_from_snapshot(load_snapshot_file(FIXTURES / "nvidia-smi-no-driver.json"))
    assert facts.nvidia_smi_error and facts.nvidia_driver_version is None
    assert facts.nvidia_gpus[0].driver is None and facts.nvidia_gpus[0].memory_mib == 24564  # from the catalog


def test_mig_instances_and_profiles_from_nvidia_smi():
    """Finding 15: existing MIG instances (XML + `mig -lgi` names) and the card's own profiles (`mig -lgip`)."""
    gpu = facts_from_snapshot(load_snapshot_file(FIXTURES / "a100-mig-enabled.json")).nvidia_gpus[0]
    assert gpu.mig_enabled
    assert [(i.gpu_instance_id, i.profile, i.memory_mib) for i in gpu.mig_instances] == [
        (1, "3g.40gb", 40192),
        (2, "3g.40gb", 40192),
    ]
    assert [(p.name, p.profile_id, p.total) for p in gpu.mig_profiles] == [
        ("1g.10gb", 19, 7),
        ("1g.10gb+me", 20, 1),
        ("1g.20gb", 15, 4),
        ("2g.20gb", 14, 3),
        ("3g.40gb", 9, 2),
        ("4g.40gb", 5, 1),
        ("7g.80gb", 0, 1),
    ]
    assert parse_mig_profiles("No MIG-enabled devices found.") == {}
    assert parse_mig_gpu_instances("No GPU instances found: Not Found") == {}


def test_iommu_as_the_kernel_reports_it():
    """Findings 10, 12, 14: groups' type, ACPI tables, ACS override and vfio-pci.ids come from the snapshot."""
    iommu = facts_from_snapshot(load_snapshot_file(FIXTURES / "iommu-noncanonical.json")).iommu
    assert iommu.passthrough_mode and iommu.default_domain == "identity" and iommu.firmware_table is True
    off = facts_from_snapshot(load_snapshot_file(FIXTURES / "iommu-off.json")).iommu
    assert not off.active and off.firmware_table is False
    acs = facts_from_snapshot(load_snapshot_file(FIXTURES / "acs-override.json")).iommu
    assert acs.acs_override == "downstream,multifunction"
    typo = facts_from_snapshot(load_snapshot_file(FIXTURES / "vfio-ids-typo.json")).iommu
    assert typo.cmdline_vfio_ids == ("10de:2684", "10de:22bb")
    assert cmdline_vfio_ids("ro vfio_pci.ids=10de:2204") == ("10de:2204",)
    assert cmdline_disables_iommu("ro intel_iommu=igfx_off,off", "intel") == "intel_iommu=igfx_off,off"
    assert cmdline_disables_iommu("ro amd_iommu=off", "intel") is None


def test_bar1_size_and_unknown_memory():
    """Finding 18: a card missing from the catalog, no nvidia-smi: memory unknown, BAR1 read from sysfs."""
    gpu = facts_from_snapshot(load_snapshot_file(FIXTURES / "unknown-card.json")).nvidia_gpus[0]
    assert gpu.memory_mib is None and gpu.memory_source == "unknown" and gpu.bar1_mib == 16384
    assert bar1_mib("0x1 0x2 0x0") is None and bar1_mib(None) is None


def test_bus_id_normalised():
    assert normalise_bus_id("00000000:01:00.0") == "0000:01:00.0"
    assert normalise_bus_id("0000:0A:00.1 ") == "0000:0a:00.1"
    assert normalise_bus_id("junk") == "junk"


@pytest.mark.parametrize(
    "cmdline,vendor,expected",
    [
        ("ro quiet intel_iommu=on iommu=pt", "intel", (True, True)),
        ("ro quiet intel_iommu=on", "intel", (True, False)),
        ("ro quiet intel_iommu=on,sm_on", "intel", (True, False)),
        ("ro quiet intel_iommu=sm_on,on", "intel", (True, False)),
        ("ro quiet", "intel", (False, False)),
        ("ro quiet intel_iommu=off", "intel", (False, False)),
        ("ro quiet amd_iommu=on iommu=pt", "amd", (True, True)),
        ("ro quiet intel_iommu=on iommu.passthrough=1", "intel", (True, True)),
        ("ro quiet intel_iommu=on iommu=pt iommu.passthrough=0", "intel", (True, False)),
        ("ro intel_iommu=off intel_iommu=on", "intel", (True, False)),  # the last word wins, as in the kernel
        ("ro quiet", "amd", (True, False)),  # AMD kernels turn the IOMMU on by default
        ("ro quiet amd_iommu=off", "amd", (False, False)),
        ("ro quiet iommu=off", "amd", (False, False)),
        ("", "unknown", (False, False)),
    ],
)
def test_iommu_cmdline(cmdline, vendor, expected):
    assert parse_iommu_cmdline(cmdline, vendor) == expected


def test_secure_boot_sources():
    assert parse_secure_boot(Snapshot(commands={"mokutil --sb-state": "SecureBoot enabled\n"})) is True
    assert parse_secure_boot(Snapshot(commands={"mokutil --sb-state": "SecureBoot disabled\n"})) is False
    assert parse_secure_boot(Snapshot()) is False  # no EFI: legacy boot has no Secure Boot
    assert parse_secure_boot(Snapshot(dirs={"/sys/firmware/efi": ["efivars"]})) is None  # EFI, no mokutil


@pytest.mark.parametrize(
    "files,dirs,expected",
    [
        ({"/lib/modules/KERNEL/modules.builtin": "kernel/drivers/vfio/pci/vfio-pci.ko\n"}, {}, (True, False)),
        ({"/lib/modules/KERNEL/modules.dep": "kernel/drivers/vfio/pci/vfio-pci.ko.xz: x.ko\n"}, {}, (True, False)),
        ({"/sys/module/vfio_pci/initstate": "live"}, {}, (True, True)),
        ({}, {"/dev/vfio": ["vfio"]}, (True, True)),
        ({}, {}, (False, False)),
        # only vendor variants (mlx5-vfio-pci, virtio-vfio-pci) are not the vfio-pci driver itself
        (
            {
                "/lib/modules/KERNEL/modules.dep": "kernel/drivers/vfio/pci/mlx5/mlx5-vfio-pci.ko.zst: a.ko\n"
                "kernel/drivers/vfio/pci/virtio/virtio-vfio-pci.ko.zst:\n"
            },
            {},
            (False, False),
        ),
    ],
)
def test_vfio(files, dirs, expected):
    vfio = parse_vfio(Snapshot(files=files, dirs=dirs))
    assert (vfio.available, vfio.loaded) == expected


def test_malformed_pci_address_is_a_facts_error():
    snap = load_snapshot_file(FIXTURES / "desktop-rtx4090.json")
    snap.dirs["/sys/bus/pci/devices"] = [*snap.dirs["/sys/bus/pci/devices"], "01:00.0"]
    with pytest.raises(FactsError) as exc:
        facts_from_snapshot(snap)
    assert "01:00.0" in exc.value.problem


# ------------------------------------------------------------------------------------- record stream


def record(kind: str, key: str, body: str) -> str:
    return f"{MARKER} {kind} {key}\n{body}{MARKER} end\n"


def test_parse_records_all_kinds():
    text = (
        record("file", "/etc/hostname", "box\n\n")  # collect.sh: cat, then one newline of its own
        + record("file", "/proc/cmdline", "ro quiet\n")  # a file without a trailing newline: cat, then the newline
        + record("link", "/sys/bus/pci/devices/0000:01:00.0/driver", "../../../bus/pci/drivers/nvidia\n")
        + record("dir", "/sys/kernel/iommu_groups", "0\n1\n12\n")
        + record("dir", "/dev/vfio", "")
        + record("cmd", "id -u", "1000\n\n")
        + record("cmd", "nvidia-smi -q -x", "<a>\n  <b/>\n</a>\n\n")
    )
    snap = parse_records(text, source="test")
    assert snap.source == "test" and snap.captured
    assert snap.files == {"/etc/hostname": "box\n", "/proc/cmdline": "ro quiet"}
    assert snap.links == {"/sys/bus/pci/devices/0000:01:00.0/driver": "../../../bus/pci/drivers/nvidia"}
    assert snap.dirs == {"/sys/kernel/iommu_groups": ["0", "1", "12"], "/dev/vfio": []}
    assert snap.commands == {"id -u": "1000\n", "nvidia-smi -q -x": "<a>\n  <b/>\n</a>\n"}


def test_parse_records_stream_without_trailing_newline():
    text = record("file", "/etc/hostname", "box\n").rstrip("\n")
    assert text.endswith(f"{MARKER} end")
    assert parse_records(text).files == {"/etc/hostname": "box"}


def test_parse_records_drops_a_cut_off_record_and_keeps_marker_like_text():
    text = (
        record("file", "/etc/motd", f"say {MARKER} here\n{MARKER} bogus line\n")
        + f"{MARKER} file /proc/cpuinfo\nprocessor : 0\n"  # the stream was cut here
    )
    snap = parse_records(text)
    assert snap.files == {"/etc/motd": f"say {MARKER} here\n{MARKER} bogus line"}
    assert "/proc/cpuinfo" not in snap.files


def test_parse_records_ignores_noise_outside_records():
    text = "sh: 1: warning\n" + record("cmd", "uname -m", "x86_64\n\n") + "trailing noise\n"
    assert parse_records(text).commands == {"uname -m": "x86_64\n"}


def test_parse_records_of_empty_output():
    snap = parse_records("")
    assert (snap.files, snap.links, snap.dirs, snap.commands) == ({}, {}, {}, {})


def test_collector_on_this_machine_round_trips():
    """The real read-only collector script runs here and its snapshot parses."""
    snap = collect_local()
    for path in ("/etc/hostname", "/etc/os-release", "/proc/cmdline"):  # byte for byte, trailing newline included
        if Path(path).exists():
            assert snap.files[path] == Path(path).read_text()
    facts = facts_from_snapshot(snap)
    assert facts.cpu.threads >= 1 and facts.memory_bytes > 0
    assert facts.hostname == Path("/etc/hostname").read_text().strip() or not Path("/etc/hostname").exists()
    again = Snapshot.from_dict(json.loads(json.dumps(snap.to_dict())))
    assert facts_from_snapshot(again).to_dict() == facts.to_dict()


def test_ssh_facts_output_is_read_bounded():
    """A remote host that sends endless output is cut off at the facts size limit, with a one-line error."""
    import io

    from affordml.errors import FactsError
    from affordml.facts import sources

    small = io.BytesIO(b"x" * 100)
    assert sources._read_bounded(small, "pc") == "x" * 100
    endless = io.BytesIO(b"y" * (sources.FACTS_LIMIT + 10))
    with pytest.raises(FactsError, match="more than 32 MiB"):
        sources._read_bounded(endless, "pc")


def test_collector_reads_what_the_kernel_reports_about_the_iommu_here():
    """The new read-only records of collect.sh, on this machine: the ACPI table names and each group's type."""
    import os
    import shutil

    snap = collect_local()
    tables = Path("/sys/firmware/acpi/tables")
    if tables.is_dir() and os.access(tables, os.R_OK):
        assert snap.dirs["/sys/firmware/acpi/tables"] == sorted(os.listdir(tables))
    for group in Path("/sys/kernel/iommu_groups").glob("*"):
        if (group / "type").is_file():
            assert snap.files[f"{group}/type"].strip() == (group / "type").read_text().strip()
    if shutil.which("nvidia-smi") is None:
        assert "nvidia-smi -q -x" not in snap.commands  # absent, not sh's "not found"
