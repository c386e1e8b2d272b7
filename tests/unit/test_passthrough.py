"""GPU passthrough on real PCs (issue 9, findings 5-8 and 20): device types, selection by address, no companion
functions asked of nova, the guest address space of large-BAR cards, and the VMs' reachable addresses.

The PC is the test cloud's (tests/testbed/openstack/fake_host.py): two identical RTX A6000 cards with HDMI audio, an
SR-IOV-capable H200 with a 256 GiB BAR1, and a third identical A6000 that the configuration keeps on the host.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from affordml.cloud.reachable import NotCarved, vm_addresses
from affordml.cloud.spec import MAXPHYSADDR_BITS_SPEC, MAXPHYSADDR_MODE_SPEC, PCI_ALIAS_SPEC, cloud_spec
from affordml.facts.parse import parse_bar_sizes, parse_cpuinfo
from affordml.plan import passthrough
from affordml.plan.model import GIB
from tests.testbed.openstack import fake_host

ROLE_TEMPLATES = Path(__file__).resolve().parents[2] / "playbooks" / "roles" / "host" / "templates"


@pytest.fixture(scope="module")
def plan():
    return fake_host.plan()


def test_facts_read_sriov_bars_and_address_bits():
    facts = fake_host.facts()
    gpus = {g.address: g for g in facts.nvidia_gpus}
    h200 = gpus[fake_host.H200_ADDRESS]
    assert h200.sriov_capable and h200.functions[0].sriov_totalvfs == 16
    assert h200.bar_bytes == sum(fake_host.H200_BARS)
    assert not gpus["0000:17:00.0"].sriov_capable and gpus["0000:17:00.0"].bar_bytes == 0  # no resource file
    assert facts.cpu.phys_address_bits == 46


def test_parsers_of_resource_and_address_sizes():
    text = "0x00000000fb000000 0x00000000fbffffff 0x0000000000040200\n" + "0x0 0x0 0x0\n" * 12
    assert parse_bar_sizes(text) == (16 * 1024**2, 0, 0, 0, 0, 0)
    assert parse_bar_sizes("garbage") == ()
    assert parse_cpuinfo("processor\t: 0\naddress sizes\t: 39 bits physical, 48 bits virtual\n").phys_address_bits == 39
    assert parse_cpuinfo("processor\t: 0\n").phys_address_bits is None


def test_sriov_gpu_is_type_pf_and_others_type_pci(plan):
    """Finding 5: nova tracks an SR-IOV-capable GPU as type-PF; a type-PCI alias would never match it."""
    assert plan.nova_aliases == [
        {"name": "gpu-2230", "vendor_id": "10de", "product_id": "2230", "device_type": "type-PCI"},
        {"name": "gpu-2335", "vendor_id": "10de", "product_id": "2335", "device_type": "type-PF"},
    ]
    assert {g.address: g.device_type for g in plan.gpus} == {
        "0000:17:00.0": "type-PCI",
        "0000:31:00.0": "type-PCI",
        "0000:81:00.0": "type-PF",
    }


def test_identical_cards_go_by_address(plan):
    """Finding 6: the excluded third A6000 has the same ids: vfio-pci binds the planned ones by address, and
    nova's device_spec names each planned GPU by address, so the excluded card is neither bound nor offered."""
    assert plan.vfio_ids == ["10de:2335"]  # no other H200 on the host: ids are exact
    assert plan.vfio_addresses == ["0000:17:00.0", "0000:17:00.1", "0000:31:00.0", "0000:31:00.1"]
    assert [s["address"] for s in plan.nova_device_specs] == ["0000:17:00.0", "0000:31:00.0", "0000:81:00.0"]
    assert fake_host.EXCLUDED_ADDRESS not in str(plan.nova_device_specs) + str(plan.vfio_addresses)


def test_without_an_identical_card_on_the_host_ids_suffice():
    facts = fake_host.facts()
    kept = [d for d in facts.pci_devices if not d.address.startswith(fake_host.EXCLUDED_ADDRESS[:-1])]
    gpus = [g for g in facts.nvidia_gpus if g.address != fake_host.EXCLUDED_ADDRESS]
    assert passthrough.vfio_binding(gpus, kept) == (["10de:1aef", "10de:2230", "10de:2335"], [])


def test_companion_functions_are_never_asked_of_nova(plan):
    """Finding 7: nova pools functions one by one, so the flavors ask for whole GPUs only; the audio functions
    are bound to vfio-pci (the IOMMU group stays viable) and cannot end up with another card's GPU."""
    spec = cloud_spec(plan)
    aliases = {s.vm: s.pci_spec for s in spec.servers}
    assert aliases == {"cp-1": None, "worker-1": "gpu-2230:1", "worker-2": "gpu-2230:1", "worker-3": "gpu-2335:1"}
    assert "1aef" not in str(plan.nova_aliases) + str(plan.nova_device_specs)
    assert {"0000:17:00.1", "0000:31:00.1"} <= set(plan.vfio_addresses)


def test_large_bar_gpu_gets_a_wider_guest_address_space(plan):
    """Finding 8: the H200's 256 GiB BAR1 does not fit a default 40-bit guest: its flavor asks nova for more."""
    spec = cloud_spec(plan)
    h200_vm = next(s for s in spec.servers if s.vm == "worker-3")
    specs = spec.flavor(h200_vm.flavor).extra_specs
    assert specs == {PCI_ALIAS_SPEC: "gpu-2335:1", MAXPHYSADDR_MODE_SPEC: "emulate", MAXPHYSADDR_BITS_SPEC: "41"}
    assert all(MAXPHYSADDR_BITS_SPEC not in spec.flavor(s.flavor).extra_specs for s in spec.servers if s != h200_vm)


@pytest.mark.parametrize(
    ("ram_gib", "bars", "host_bits", "expected"),
    [
        (35, [sum(fake_host.H200_BARS)], 46, 41),  # 35 + 4 + 2 x 512 GiB > 1 TiB
        (35, [32 * GIB + 96 * 1024**2], 46, None),  # a 32 GiB resizable BAR fits in 40 bits
        (200, [sum(fake_host.H200_BARS)] * 2, 46, 42),
        (200, [sum(fake_host.H200_BARS)] * 2, 41, 41),  # never more than the host CPU has
        (35, [], 46, None),
    ],
)
def test_guest_phys_bits(ram_gib, bars, host_bits, expected):
    assert passthrough.guest_phys_bits(ram_gib, bars, host_bits) == expected


def test_address_space_warning_when_the_host_cpu_is_too_narrow():
    facts = fake_host.facts()
    vm = next(v for v in fake_host.plan().vms if v.gpus == (fake_host.H200_ADDRESS,))
    assert passthrough.address_space_warnings([vm], facts.nvidia_gpus, 46) == []
    [warning] = passthrough.address_space_warnings([vm], facts.nvidia_gpus, 40)
    assert warning.code == "guest-address-space" and "need 41 physical address bits" in warning.message


def _role_template(name: str, **values) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLE_TEMPLATES), undefined=jinja2.StrictUndefined)
    return env.get_template(name).render(ansible_managed="managed", **values)


def test_host_role_binds_by_address_and_ids(plan):
    rules = _role_template("udev-affordml-vfio.rules.j2", affordml_vfio_addresses=plan.vfio_addresses)
    lines = [line for line in rules.splitlines() if line.startswith("ACTION")]
    assert len(lines) == 4
    assert lines[0] == (
        'ACTION=="add", SUBSYSTEM=="pci", KERNEL=="0000:17:00.0", ATTR{driver_override}="vfio-pci", '
        "RUN+=\"/bin/sh -c 'echo 0000:17:00.0 > /sys/bus/pci/drivers_probe'\""
    )
    modprobe = _role_template(
        "modprobe-affordml-vfio.conf.j2", affordml_vfio_ids=plan.vfio_ids, affordml_vfio_roles=["audio", "gpu"]
    )
    assert "options vfio-pci ids=10de:2335\n" in modprobe
    no_ids = _role_template("modprobe-affordml-vfio.conf.j2", affordml_vfio_ids=[], affordml_vfio_roles=["gpu"])
    assert "ids=" not in no_ids and "softdep nvidia pre: vfio-pci" in no_ids


def test_vm_addresses_are_the_recorded_floating_ips():
    """Finding 20: later phases reach the VMs by the floating IPs the cloud phase recorded."""
    data = {
        "cloud": {
            "servers": {
                "cp-1": {"address": "10.42.0.10", "floating_ip": "203.0.113.21"},
                "worker-1": {"address": "10.42.0.11", "floating_ip": "203.0.113.22"},
            }
        }
    }
    assert vm_addresses(data) == {"cp-1": "203.0.113.21", "worker-1": "203.0.113.22"}
    del data["cloud"]["servers"]["worker-1"]["floating_ip"]
    with pytest.raises(NotCarved, match="no floating IP recorded for worker-1"):
        vm_addresses(data)
    with pytest.raises(NotCarved, match="recorded no VMs"):
        vm_addresses({})


# nova's major version per OpenStack release (https://releases.openstack.org): the test cloud must run the nova
# that kolla-ansible deploys for the locked release, or the production [pci] behaviour is never exercised.
NOVA_MAJOR = {"2025.1": 31, "2025.2": 32, "2026.1": 33, "2026.2": 34}
COMPANIONS = {"keystone": 29, "glance": 32, "openstack-placement": 15, "neutron": 28}  # 2026.1


def test_the_test_cloud_runs_the_locked_openstack_release():
    from affordml.versions import load_lock
    from tests.testbed.openstack.settings import CONSTRAINTS_FILE, SERVICE_RELEASES

    release = load_lock()["kolla_ansible"]["openstack_release"]
    majors = {name: int(version.split(".")[0]) for name, version in SERVICE_RELEASES.items()}
    assert majors["nova"] == NOVA_MAJOR[release]
    if release == "2026.1":
        assert {k: v for k, v in majors.items() if k != "nova"} == COMPANIONS
    pins = CONSTRAINTS_FILE.read_text()
    assert all(f"\n{name}=={version}\n" in pins for name, version in SERVICE_RELEASES.items())
