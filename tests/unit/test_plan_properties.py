"""Property tests of the planner over generated hosts and configs, and example-based plans per hardware fixture.

The generated hosts go through the real fact-building code (`build_gpus` computes each GPU's functions and
IOMMU-group neighbours from PCI devices and groups), so the properties test the planner on the same kind of
facts a real snapshot gives.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from affordml.config.model import Config
from affordml.errors import PlanError
from affordml.facts.gpu_catalog import CATALOG
from affordml.facts.model import Cpu, HostFacts, Iommu, Nic, OsRelease, PciDevice, Vfio
from affordml.facts.parse import SmiGpu, build_gpus, facts_from_snapshot
from affordml.facts.sources import load_snapshot_file
from affordml.plan import carve
from affordml.plan.build import disk_free_gib, make_plan
from affordml.plan.checks import run_checks
from affordml.plan.model import GIB
from affordml.versions import load_lock, version_table

VERSIONS = version_table(load_lock())
MIG_IDS = sorted(k for k, v in CATALOG.items() if v.mig_capable)
PLAIN_IDS = sorted(k for k, v in CATALOG.items() if not v.mig_capable)

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)


# ------------------------------------------------------------------------------------------------ generators


@dataclass(frozen=True)
class GeneratedHost:
    facts: HostFacts
    slots: dict[str, list[PciDevice]]  # GPU address -> every PCI function in its slot (the ground truth)


@st.composite
def gpu_cards(draw, bus: int, roomy: bool) -> tuple[list[PciDevice], str, str, SmiGpu | None]:
    """One NVIDIA card in PCI bus `bus`: the GPU function, maybe HDMI audio, maybe a USB-C controller."""
    mig = draw(st.booleans())
    device_id = draw(st.sampled_from(MIG_IDS if mig else PLAIN_IDS + ["abcd"]))  # abcd: not in the catalog
    slot = f"0000:{bus:02x}:00"
    functions = [PciDevice(f"{slot}.0", "10de", device_id, draw(st.sampled_from(["030000", "030200"])), "nvidia")]
    if draw(st.booleans()):
        functions.append(PciDevice(f"{slot}.1", "10de", draw(st.sampled_from(["22ba", "1aef", "228b"])), "040300"))
    if draw(st.booleans()):
        functions.append(PciDevice(f"{slot}.2", "10de", "1ad6", "0c0330", "xhci_hcd"))
    smi = None
    if draw(st.booleans()):  # nvidia-smi answered: its memory and MIG mode win over the catalog
        smi = SmiGpu(
            bus_id=functions[0].address,
            name=f"card {device_id}",
            memory_mib=draw(st.one_of(st.none(), st.integers(2048, 200_000))),
            mig_mode=draw(st.sampled_from(["Enabled", "Disabled"])) if mig else "N/A",
        )
    layouts = ["alone", "alone", "alone", "with-bridge", "with-sata"] + ([] if roomy else ["no-group"])
    layout = draw(st.sampled_from(layouts))
    return functions, slot, layout, smi


@st.composite
def hosts(draw, roomy: bool) -> GeneratedHost:
    """Any host; a roomy one has resources, a wired NIC and the IOMMU on, so that most configs fit it."""
    threads = draw(st.integers(24, 128) if roomy else st.integers(1, 128))
    ram_gib = draw(st.integers(96, 1024) if roomy else st.integers(1, 1024))
    disk_gib = draw(st.integers(1500, 8000) if roomy else st.integers(0, 8000))
    vendor = draw(st.sampled_from(["intel", "amd"]))
    iommu_on = roomy or draw(st.booleans())
    host_bridge = PciDevice("0000:00:00.0", "8086", "1234", "060000")
    root_port = PciDevice("0000:00:01.0", "8086", "1901", "060400", "pcieport")
    sata = PciDevice("0000:00:17.0", "8086", "a352", "010601", "ahci")
    devices = [host_bridge, root_port, sata]
    group_of: dict[str, int] = {host_bridge.address: 0, sata.address: 1, root_port.address: 2}
    next_group = 3
    smi: list[SmiGpu] = []
    slots: dict[str, list[PciDevice]] = {}
    n_gpus = draw(st.integers(0, 4))
    shared_pair = n_gpus >= 2 and draw(st.booleans())  # the first two cards share one IOMMU group
    for i in range(n_gpus):
        functions, _, layout, answer = draw(gpu_cards(bus=i + 1, roomy=roomy))
        slots[functions[0].address] = functions
        devices += functions
        if answer:
            smi.append(answer)
        if layout == "no-group":
            continue
        first_gpu = next(iter(slots))
        if shared_pair and i == 1 and first_gpu in group_of:
            group = group_of[first_gpu]
        elif layout == "with-sata":
            group = group_of[sata.address]
        else:
            group, next_group = next_group, next_group + 1
            if layout == "with-bridge":
                group_of[root_port.address] = group
        for fn in functions:
            group_of[fn.address] = group
    if iommu_on:
        devices = [
            PciDevice(d.address, d.vendor_id, d.device_id, d.class_code, d.driver, group_of.get(d.address))
            for d in devices
        ]
        groups: dict[int, list[str]] = {}
        for d in devices:
            if d.iommu_group is not None:
                groups.setdefault(d.iommu_group, []).append(d.address)
    else:
        groups = {}
    gpus = build_gpus(devices, groups, smi)
    facts = HostFacts(
        hostname="gen",
        source="hypothesis",
        arch="x86_64",
        os=OsRelease("ubuntu", "24.04", "Ubuntu 24.04 LTS", "noble"),
        kernel="6.8.0",
        cmdline="intel_iommu=on iommu=pt" if iommu_on else "",
        cpu=Cpu("generated", vendor, threads, "vmx" if vendor == "intel" else "svm"),
        memory_bytes=ram_gib * GIB + draw(st.integers(0, GIB - 1)),
        disks=[],
        root_free_bytes=disk_gib * GIB + draw(st.integers(0, GIB - 1)),
        varlib_free_bytes=draw(st.one_of(st.none(), st.just(disk_gib * GIB))),
        nics=draw(nic_layouts(roomy)),
        pci_devices=devices,
        gpus=gpus,
        iommu=Iommu(iommu_on, iommu_on, bool(groups), len(groups)),
        vfio=Vfio(True, False),
        kvm_device=True,
        virtualization="none",
        secure_boot=False,
        is_root=True,
        sudo_without_password=None,
    )
    return GeneratedHost(facts, slots)


@st.composite
def nic_layouts(draw, roomy: bool) -> list[Nic]:
    prefix = draw(st.integers(16, 24) if roomy else st.integers(8, 32))
    third = draw(st.integers(0, 255))
    choices = [(f"192.168.{third}.10/{prefix}",), (f"10.{third}.0.5/{prefix}", "fd00::5/64")]
    if not roomy:
        choices.append(("fe80::1/64",))  # IPv6 only: no IPv4 for management
    mgmt_addresses = draw(st.sampled_from(choices))
    nics = [
        Nic(
            "enp3s0",
            "aa:bb:cc:00:00:01",
            "up",
            1000,
            physical=True,
            wireless=not roomy and draw(st.booleans()) and draw(st.booleans()),
            addresses=mgmt_addresses,
            default_route=roomy or draw(st.integers(0, 9)) > 0,
        )
    ]
    if draw(st.booleans()):
        nics.append(Nic("enp4s0", "aa:bb:cc:00:00:02", draw(st.sampled_from(["up", "down"])), None, physical=True))
    if draw(st.booleans()):
        nics.append(Nic("br0", "aa:bb:cc:00:00:03", "up", None, bridge=True, addresses=("172.16.0.1/24",)))
    if draw(st.booleans()):
        nics.append(Nic("wlp2s0", "aa:bb:cc:00:00:04", "up", None, physical=True, wireless=True))
    return nics


SIZES = st.one_of(st.just("auto"), st.integers(1, 64))
POLICIES = st.one_of(
    st.just({"mode": "auto"}),
    st.just({"mode": "exclusive"}),
    st.builds(lambda n: {"mode": "time-slicing", "replicas": n}, st.integers(2, 64)),
    st.builds(lambda n: {"mode": "mps", "clients": n}, st.integers(2, 48)),
    st.builds(lambda name: {"mode": "mig", "layout": name}, st.sampled_from(["all-balanced", "all-1g.10gb", "x"])),
    st.builds(
        lambda s, m, c: {"mode": "hami", "split": s, "memory_percent": m, "cores_percent": c},
        st.integers(2, 64),
        st.integers(1, 100),
        st.integers(1, 100),
    ),
)


@st.composite
def configs(draw, gpus: list[tuple[str, bool]], roomy: bool) -> Config:
    """Any config; a roomy one keeps to sizes and policies a roomy host can carry (MIG only on MIG cards)."""
    workers = {"count": draw(st.integers(1, 4) if roomy else st.integers(0, 6))}
    for key in ("vcpus", "ram_gib", "disk_gib"):
        explicit = st.integers(*ROOMY_WORKER[key]) if roomy else st.integers(1, 500 if key == "disk_gib" else 64)
        workers[key] = draw(st.one_of(st.just("auto"), explicit))
    control_plane = {"count": 1}
    for key in ("vcpus", "ram_gib", "disk_gib"):
        control_plane[key] = draw(st.one_of(st.just("auto"), st.integers(*ROOMY_CP[key]) if roomy else SIZES))

    def policy(mig_capable: bool):
        if not roomy:
            return POLICIES
        return st.one_of(NON_MIG_POLICIES, VALID_MIG) if mig_capable else NON_MIG_POLICIES

    addresses = [a for a, _ in gpus]
    per_gpu = {a: draw(policy(mig)) for a, mig in gpus if draw(st.booleans()) and draw(st.booleans())}
    exclude = [a for a in addresses if draw(st.integers(0, 4)) == 0]
    all_mig = bool(gpus) and all(mig for _, mig in gpus)
    if roomy:
        network = {
            "management_interface": draw(st.sampled_from(["auto", "enp3s0"])),
            "external_interface": draw(st.sampled_from(["auto", "create"])),
            "floating_ip_count": draw(st.integers(1, 12)),
            "external_subnet": draw(st.sampled_from([None, "203.0.113.0/24", "198.51.100.0/28"])),
        }
    else:
        network = {
            "management_interface": draw(st.sampled_from(["auto", "auto", "enp3s0", "enp4s0", "eth9"])),
            "external_interface": draw(st.sampled_from(["auto", "auto", "create", "enp4s0", "enp3s0", "br0", "eth9"])),
            "floating_ip_count": draw(st.integers(1, 254)),
            "external_subnet": draw(st.sampled_from([None, None, "203.0.113.0/24", "198.51.100.0/28"])),
        }
    data = {
        "vms": {"control_plane": control_plane, "workers": workers},
        "gpu": {"sharing": draw(policy(all_mig)), "per_gpu": per_gpu, "exclude": exclude},
        "network": network,
    }
    return Config.model_validate(data)


ROOMY_CP = {"vcpus": (2, 6), "ram_gib": (4, 12), "disk_gib": (40, 100)}
ROOMY_WORKER = {"vcpus": (2, 24), "ram_gib": (8, 160), "disk_gib": (80, 1200)}  # big ones overfill
NON_MIG_POLICIES = st.one_of(
    st.just({"mode": "auto"}),
    st.just({"mode": "exclusive"}),
    st.builds(lambda n: {"mode": "time-slicing", "replicas": n}, st.integers(2, 64)),
    st.builds(lambda n: {"mode": "mps", "clients": n}, st.integers(2, 48)),
    st.builds(
        lambda s, m, c: {"mode": "hami", "split": s, "memory_percent": m, "cores_percent": c},
        st.integers(2, 64),
        st.integers(1, 100),
        st.integers(1, 100),
    ),
)
VALID_MIG = st.just({"mode": "mig", "layout": "all-balanced"})


@st.composite
def cases(draw, roomy: bool | None = None) -> tuple[GeneratedHost, Config]:
    """A host and a config: roomy (most get a plan), wide (anything, most are refused), or either."""
    if roomy is None:
        roomy = draw(st.booleans())
    host = draw(hosts(roomy))
    gpus = [(g.address, g.mig_capable) for g in host.facts.gpus]
    return host, draw(configs(gpus, roomy))


def plan_or_error(facts: HostFacts, config: Config):
    try:
        return make_plan(facts, config, VERSIONS)
    except PlanError as exc:
        return exc


# ------------------------------------------------------------------------------------------------ properties


@PROPERTY_SETTINGS
@given(cases())
def test_plan_or_plan_error_with_problem_and_fix(case):
    """(d) Any host and config give a plan or a PlanError that names the problem and the fix, nothing else."""
    host, config = case
    result = plan_or_error(host.facts, config)  # any other exception fails the test
    if isinstance(result, PlanError):
        assert result.problem.strip()
        assert result.fix and result.fix.strip()
        assert "\n" not in result.one_line()


@PROPERTY_SETTINGS
@given(cases())
def test_never_gives_out_more_than_the_host_has(case):
    """(a) VMs plus reservations fit the host's threads, RAM and free disk."""
    host, config = case
    plan = plan_or_error(host.facts, config)
    assume(not isinstance(plan, PlanError))
    facts = host.facts
    assert plan.host_vcpus == facts.cpu.threads
    assert plan.host_ram_gib == facts.memory_bytes // GIB
    assert plan.host_disk_free_gib == disk_free_gib(facts)
    for resource, have in (
        ("vcpus", facts.cpu.threads),
        ("ram_gib", facts.memory_bytes // GIB),
        ("disk_gib", disk_free_gib(facts)),
    ):
        given_out = sum(getattr(v, resource) for v in plan.vms) + sum(getattr(r, resource) for r in plan.reservations)
        assert given_out <= have, f"{resource}: {given_out} given out, host has {have}"
    for vm in plan.vms:
        assert vm.vcpus >= 1 and vm.ram_gib >= 1 and vm.disk_gib >= 1
    assert [v.role for v in plan.vms] == ["control-plane"] + ["worker"] * config.vms.workers.count
    totals = plan.totals()
    assert totals["ml_ram_gib"] >= 0
    assert 0 <= totals["platform_ram_share"] <= 1


@PROPERTY_SETTINGS
@given(cases(roomy=True))
def test_every_passthrough_gpu_goes_to_exactly_one_vm_with_all_its_functions(case):
    """(b) Each GPU that is passed through goes to one VM, with every function of its slot."""
    host, config = case
    plan = plan_or_error(host.facts, config)
    assume(not isinstance(plan, PlanError))
    assigned = [g.address for g in plan.gpus]
    assert len(assigned) == len(set(assigned))
    expected = sorted(g.address for g in host.facts.nvidia_gpus if g.isolatable and g.address not in config.gpu.exclude)
    assert sorted(assigned) == expected
    for g in host.facts.nvidia_gpus:  # a GPU that shares its IOMMU group with a stranger never goes to a VM
        if g.address in assigned:
            assert g.iommu_group is not None and not g.group_others
    vm_names = [v.name for v in plan.vms]
    for gpu in plan.gpus:
        holders = [v.name for v in plan.vms if gpu.address in v.gpus]
        assert holders == [gpu.vm]
        assert gpu.vm in vm_names and gpu.vm != "cp-1"
        slot_functions = host.slots[gpu.address]
        assert sorted(f.address for f in gpu.functions) == sorted(f.address for f in slot_functions)
        assert gpu.functions[0].address == gpu.address and gpu.functions[0].role == "gpu"
        for fn in slot_functions:  # every function goes to vfio-pci, by ids or by address
            assert fn.ids in plan.vfio_ids or fn.address in plan.vfio_addresses
        assert gpu.nova_alias in {a["name"] for a in plan.nova_aliases}
        assert gpu.sharing.slots >= 1
    passed = {f.address for g in plan.gpus for f in g.functions}
    # ids= never catches a device the plan keeps on the host (an excluded or non-isolatable identical card)
    assert {d.address for d in host.facts.pci_devices if d.ids in plan.vfio_ids} <= passed
    assert set(plan.vfio_addresses) <= passed
    # nova is offered exactly the planned GPUs, by address, and asked only for whole GPUs (never a companion)
    assert sorted(s["address"] for s in plan.nova_device_specs) == sorted(assigned)
    assert {(a["vendor_id"], a["product_id"]) for a in plan.nova_aliases} == {
        tuple(g.ids.split(":")) for g in plan.gpus
    }
    for vm in plan.vms:
        assert set(vm.gpus) <= set(assigned)
        assert (f".gpu{len(vm.gpus)}" in vm.flavor) == bool(vm.gpus)


@PROPERTY_SETTINGS
@given(cases())
def test_same_input_same_plan(case):
    """(c) The planner is pure: the same facts and config give the same plan."""
    host, config = case
    first = plan_or_error(host.facts, config)
    second = plan_or_error(copy.deepcopy(host.facts), config.model_copy(deep=True))
    if isinstance(first, PlanError):
        assert isinstance(second, PlanError)
        assert first.one_line() == second.one_line()
    else:
        assert first.to_dict() == second.to_dict()


@PROPERTY_SETTINGS
@given(cases())
def test_floating_range_lies_in_the_external_subnet_and_spares_the_gateway(case):
    """NAT behind this PC exactly when neutron gets the veth; the floating IPs never take the gateway or this PC."""
    host, config = case
    plan = plan_or_error(host.facts, config)
    assume(not isinstance(plan, PlanError))
    net = plan.network
    subnet = ipaddress.ip_network(net["external_subnet"])
    first, last = (ipaddress.ip_address(a) for a in net["floating_range"].split("-"))
    gateway = ipaddress.ip_address(net["external_gateway"])
    assert subnet.network_address < first <= last < subnet.broadcast_address
    assert int(last) - int(first) + 1 == config.network.floating_ip_count
    assert gateway in subnet and not first <= gateway <= last
    assert not first <= ipaddress.ip_address(net["management_address"]) <= last
    assert not subnet.overlaps(ipaddress.ip_network(net["vm_subnet"]))
    assert net["external_nat"] == net["external_created"]
    assert net["floating_reachable_from"] == ("this PC only" if net["external_nat"] == "yes" else "the LAN")


@PROPERTY_SETTINGS
@given(cases(roomy=True))
def test_gpu_sharing_follows_the_policy(case):
    """MIG only on MIG-capable cards; configured counts are kept; auto picks MIG or MPS by the card."""
    host, config = case
    plan = plan_or_error(host.facts, config)
    assume(not isinstance(plan, PlanError))
    by_address = {g.address: g for g in host.facts.gpus}
    for gpu in plan.gpus:
        card = by_address[gpu.address]
        policy = config.gpu.per_gpu.get(gpu.address) or config.gpu.sharing
        if gpu.sharing.mode == "mig":
            assert card.mig_capable
            assert gpu.sharing.slots == len(gpu.sharing.mig_instances) >= 1
        if policy.mode == "auto":
            assert gpu.sharing.mode == ("mig" if card.mig_capable else "mps")
        else:
            assert gpu.sharing.mode == policy.mode
        if policy.mode == "time-slicing":
            assert gpu.sharing.slots == policy.replicas
        if policy.mode == "mps":
            assert gpu.sharing.slots == policy.clients
        if gpu.sharing.mode == "mps" and card.memory_mib:
            assert gpu.sharing.memory_per_slot_mib * gpu.sharing.slots <= card.memory_mib


@PROPERTY_SETTINGS
@given(cases(roomy=True))
def test_doctor_minimums_never_refuse_a_host_the_planner_accepts(case):
    """The doctor's cpu/ram/disk-enough checks state a lower bound: a host that gets a plan passes them."""
    host, config = case
    plan = plan_or_error(host.facts, config)
    assume(not isinstance(plan, PlanError))
    results = {r.name: r for r in run_checks(host.facts, config)}
    for name in ("cpu-enough", "ram-enough", "disk-enough"):
        assert results[name].status == "pass", results[name]


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 16), st.integers(0, 6))
def test_auto_carve_uses_targets_when_there_is_room(threads_extra, workers):
    """On a roomy host the control plane gets its target size and workers share the rest."""
    config = Config.model_validate({"vms": {"workers": {"count": workers}}})
    flags = [False] * workers
    budget = carve.Budget(64 + threads_extra, 256, 4000)
    cp, sizes = carve.carve(budget, config.vms, flags)
    assert (cp.vcpus, cp.ram_gib, cp.disk_gib) == (4, 8, 60)
    assert all(s.disk_gib <= carve.WORKER_DISK_CAP_GIB for s in sizes)
    assert len({(s.vcpus, s.ram_gib) for s in sizes}) <= 1  # equal shares for equal workers


# ------------------------------------------------------------------------------------------ per fixture

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hardware"


def fixture_facts(name: str) -> HostFacts:
    return facts_from_snapshot(load_snapshot_file(FIXTURES / f"{name}.json"))


def carve_of(plan) -> list[tuple]:
    return [(v.name, v.vcpus, v.ram_gib, v.disk_gib, v.gpus) for v in plan.vms]


def test_desktop_rtx4090_plan():
    """32 threads, 62 GiB, 1379 GiB free. Reservations 3 vCPU, 10 GiB (2 + 6 + 2 for three VMs), 80 GiB; the control
    plane takes its 4/8/60 target, and the GPU worker gets two shares of the rest to the other worker's one."""
    plan = make_plan(fixture_facts("desktop-rtx4090"), Config(), VERSIONS)
    assert carve_of(plan) == [
        ("cp-1", 4, 8, 60, ()),
        ("worker-1", 16, 29, 400, ("0000:01:00.0",)),
        ("worker-2", 8, 14, 400, ()),
    ]
    [gpu] = plan.gpus
    assert (gpu.vm, gpu.sharing.mode, gpu.sharing.slots) == ("worker-1", "mps", 5)  # 24564 MiB // 4096
    assert gpu.sharing.memory_per_slot_mib == 24564 // 5
    assert [(f.address, f.role) for f in gpu.functions] == [("0000:01:00.0", "gpu"), ("0000:01:00.1", "audio")]
    assert plan.vfio_ids == ["10de:22ba", "10de:2684"]
    # only the GPU is asked of nova; its audio function is bound to vfio-pci on the host and never split off
    assert plan.nova_aliases == [{"name": "gpu", "vendor_id": "10de", "product_id": "2684", "device_type": "type-PCI"}]
    assert plan.nova_device_specs == [{"vendor_id": "10de", "product_id": "2684", "address": "0000:01:00.0"}]
    assert plan.network["management_interface"] == "enp5s0"
    assert plan.network["external_interface"] == "affordml-ext0"  # enp6s0 has no carrier
    assert plan.network["floating_range"] == "172.24.4.2-172.24.4.9"  # behind this PC's NAT, not on the LAN
    assert plan.warnings == []


def test_server_a100_plan_uses_mig_all_balanced():
    plan = make_plan(fixture_facts("server-a100-mig"), Config(), VERSIONS)
    [gpu] = plan.gpus
    assert gpu.sharing.mode == "mig" and gpu.sharing.mig_layout == "all-balanced"
    assert gpu.sharing.mig_instances == ("1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb")
    assert gpu.sharing.slots == 4
    assert [f.address for f in gpu.functions] == ["0000:43:00.0"]
    assert plan.vfio_ids == ["10de:20b5"]
    assert plan.host_disk_free_gib == 3574778396672 // GIB  # /var/lib's own disk, not /
    assert [w.code for w in plan.warnings] == ["mig-reboot"]
    assert plan.network["external_interface"] == "affordml-ext0"  # eno2 carries an address: not free for neutron


def test_h200_class_card_gets_mig_all_balanced():
    """The H200 VM itself cannot pass its GPU through; the same card on a bare-metal host is planned with MIG."""
    facts = fixture_facts("h200-vm")
    with pytest.raises(PlanError) as exc:
        make_plan(facts, Config(), VERSIONS)
    assert "bare-metal" in exc.value.fix
    gpu = dataclasses.replace(facts.gpus[0], iommu_group=7)
    bare = dataclasses.replace(facts, gpus=[gpu], varlib_free_bytes=2000 * GIB, virtualization="none")
    plan = make_plan(bare, Config(), VERSIONS)
    [assignment] = plan.gpus
    assert assignment.sharing.mode == "mig"
    assert assignment.sharing.mig_instances == ("1g.18gb", "1g.18gb", "2g.35gb", "3g.71gb")


def test_workstation_two_gpus_one_per_worker():
    plan = make_plan(fixture_facts("workstation-2gpu"), Config(), VERSIONS)
    assert [(g.address, g.vm) for g in plan.gpus] == [("0000:17:00.0", "worker-1"), ("0000:31:00.0", "worker-2")]
    assert all(g.sharing.mode == "mps" and g.sharing.slots == 8 for g in plan.gpus)  # 49140 MiB: capped at 8
    assert [v.flavor.endswith(".gpu1") for v in plan.vms] == [False, True, True]
    one_worker = Config.model_validate({"vms": {"workers": {"count": 1}}})
    plan = make_plan(fixture_facts("workstation-2gpu"), one_worker, VERSIONS)
    assert plan.vms[1].gpus == ("0000:17:00.0", "0000:31:00.0")
    assert plan.vms[1].flavor.endswith(".gpu2")


def test_workstation_per_gpu_policy():
    config = Config.model_validate({"gpu": {"per_gpu": {"0000:31:00.0": {"mode": "time-slicing", "replicas": 6}}}})
    plan = make_plan(fixture_facts("workstation-2gpu"), config, VERSIONS)
    assert [(g.sharing.mode, g.sharing.slots) for g in plan.gpus] == [("mps", 8), ("time-slicing", 6)]


def test_one_nic_pc_creates_the_external_veth():
    plan = make_plan(fixture_facts("one-nic-pc"), Config(), VERSIONS)
    assert plan.network["external_interface"] == "affordml-ext0" and plan.network["external_created"] == "yes"
    assert plan.gpus[0].sharing.mode == "mps" and plan.gpus[0].sharing.slots == 2  # 12282 MiB // 4096


def test_one_nic_pc_puts_the_external_network_behind_nat():
    """One NIC: neutron's external network is a private subnet; this PC is its gateway and masquerades it."""
    network = make_plan(fixture_facts("one-nic-pc"), Config(), VERSIONS).network
    assert network == {
        "management_interface": "enp3s0",
        "management_address": "192.168.1.77",
        "external_interface": "affordml-ext0",
        "external_created": "yes",
        "vm_subnet": "10.42.0.0/24",
        "external_subnet": "172.24.4.0/24",
        "external_gateway": "172.24.4.1",
        "external_nat": "yes",
        "floating_range": "172.24.4.2-172.24.4.9",
        "floating_reachable_from": "this PC only",
    }
    config = Config.model_validate({"network": {"external_subnet": "192.168.77.0/28", "floating_ip_count": 13}})
    network = make_plan(fixture_facts("one-nic-pc"), config, VERSIONS).network
    assert (network["external_gateway"], network["floating_range"]) == ("192.168.77.1", "192.168.77.2-192.168.77.14")


@pytest.mark.parametrize(
    "subnet,overlaps",
    [("192.168.1.128/25", "the management subnet 192.168.1.0/24"), ("10.42.0.0/16", "network.vm_subnet")],
)
def test_nat_external_subnet_that_overlaps_is_refused(subnet, overlaps):
    config = Config.model_validate({"network": {"external_subnet": subnet}})
    with pytest.raises(PlanError) as exc:
        make_plan(fixture_facts("one-nic-pc"), config, VERSIONS)
    assert exc.value.problem.startswith(f"network.external_subnet: {subnet} overlaps {overlaps}")
    assert "\n" not in exc.value.one_line() and exc.value.fix


def test_floating_ips_that_do_not_fit_beside_the_gateway_are_refused():
    config = Config.model_validate({"network": {"external_subnet": "192.168.77.0/28", "floating_ip_count": 14}})
    with pytest.raises(PlanError, match="network.floating_ip_count: 14 does not fit"):
        make_plan(fixture_facts("one-nic-pc"), config, VERSIONS)


def with_second_nic(facts):
    """The desktop with its 1 GbE NIC cabled to the LAN: a link, no address."""
    nics = [dataclasses.replace(n, operstate="up") if n.name == "enp6s0" else n for n in facts.nics]
    return dataclasses.replace(facts, nics=nics)


def test_second_nic_with_link_puts_floating_ips_on_the_lan():
    facts = with_second_nic(fixture_facts("desktop-rtx4090"))
    assert facts.default_gateway == "192.168.1.1"
    network = make_plan(facts, Config(), VERSIONS).network
    assert network["external_interface"] == "enp6s0" and network["external_created"] == "no"
    assert network["external_subnet"] == "192.168.1.0/24"
    assert network["external_gateway"] == "192.168.1.1"  # the LAN's router
    assert network["external_nat"] == "no" and network["floating_reachable_from"] == "the LAN"
    assert network["floating_range"] == "192.168.1.247-192.168.1.254"


def test_lan_floating_range_skips_the_router_and_this_pc():
    facts = with_second_nic(fixture_facts("desktop-rtx4090"))
    nics = [dataclasses.replace(n, addresses=("192.168.1.252/24",)) if n.name == "enp5s0" else n for n in facts.nics]
    facts = dataclasses.replace(facts, nics=nics, default_gateway="192.168.1.254")
    network = make_plan(facts, Config(), VERSIONS).network
    assert network["external_gateway"] == "192.168.1.254"
    assert network["floating_range"] == "192.168.1.244-192.168.1.251"
    unknown = dataclasses.replace(facts, default_gateway=None)
    assert make_plan(unknown, Config(), VERSIONS).network["external_gateway"] == "192.168.1.1"


@pytest.mark.parametrize(
    "name,words",
    [
        ("ci-machine", ["CPU", "thread(s) short"]),
        ("too-small", ["RAM"]),
        ("shared-iommu-group", ["IOMMU group 8", "0000:05:00.0"]),
        ("iommu-off", ["no IOMMU group"]),
        ("h200-vm", ["no IOMMU group"]),
    ],
)
def test_fixtures_that_cannot_carry_the_platform(name, words):
    with pytest.raises(PlanError) as exc:
        make_plan(fixture_facts(name), Config(), VERSIONS)
    for word in words:
        assert word in exc.value.problem
    assert exc.value.fix


def test_excluding_the_shared_gpu_gives_a_cpu_only_plan():
    config = Config.model_validate({"gpu": {"exclude": ["0000:04:00.0"]}})
    plan = make_plan(fixture_facts("shared-iommu-group"), config, VERSIONS)
    assert plan.gpus == [] and plan.vfio_ids == [] and not plan.gpu_phases_apply
    assert [w.code for w in plan.warnings] == ["no-gpu"]


def test_mig_on_a_card_without_mig_is_refused():
    config = Config.model_validate({"gpu": {"sharing": "mig"}})
    with pytest.raises(PlanError) as exc:
        make_plan(fixture_facts("desktop-rtx4090"), config, VERSIONS)
    assert exc.value.problem.startswith("gpu.sharing:") and "mps" in exc.value.fix


def test_explicit_sizes_that_do_not_fit_are_refused():
    config = Config.model_validate({"vms": {"workers": {"ram_gib": 40}}})
    with pytest.raises(PlanError) as exc:
        make_plan(fixture_facts("desktop-rtx4090"), config, VERSIONS)
    assert "GiB RAM" in exc.value.problem and "vms.workers.count" in exc.value.fix


def test_setting_worker_sizes_keeps_the_default_worker_count():
    """Only the values the user sets are theirs: sizing the workers must not drop the second worker."""
    config = Config.model_validate({"vms": {"workers": {"vcpus": 4}}})
    assert config.vms.workers.count == Config().vms.workers.count == 2
    plan = make_plan(fixture_facts("desktop-rtx4090"), config, VERSIONS)
    assert [v.vcpus for v in plan.vms if v.role == "worker"] == [4, 4]
