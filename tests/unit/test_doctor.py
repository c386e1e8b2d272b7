"""The doctor's named checks on each hardware fixture, --ignore-check, and unknown check names."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from affordml.config.model import Config
from affordml.errors import PlanError
from affordml.facts.parse import facts_from_snapshot
from affordml.facts.sources import load_snapshot_file
from affordml.plan.build import make_plan
from affordml.plan.checks import CHECKS, plan_feasibility, run_checks
from affordml.plan.model import GIB
from affordml.versions import load_lock, version_table

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hardware"
VERSIONS = version_table(load_lock())


def facts_of(name: str):
    return facts_from_snapshot(load_snapshot_file(FIXTURES / f"{name}.json"))


def doctor(facts, config: Config | None = None, ignore: set[str] = frozenset()):
    config = config or Config()
    return run_checks(facts, config, set(ignore), plan_feasibility(lambda: make_plan(facts, config, VERSIONS)))


def not_passing(results) -> dict[str, str]:
    return {r.name: r.status for r in results if r.status != "pass"}


# fixture -> every check that does not pass (the rest pass); the fixtures were captured as a normal user without
# password-less sudo, which the privileges check refuses; none has a free second wired NIC (nic-external warns)
EXPECTED = {
    "a100-mig-enabled": {
        "gpu-driver:0000:43:00.0": "warn",
        "nic-external": "warn",
    },
    "acs-override": {
        "privileges": "fail",
        "gpu-isolatable:0000:04:00.0": "fail",
        "gpu-driver:0000:04:00.0": "warn",
        "secure-boot": "warn",
        "nic-external": "warn",
        "plan": "fail",
        "supported-os": "warn",
    },
    "ci-machine": {
        "bare-metal": "fail",
        "cpu-virtualization": "skipped",
        "kvm": "skipped",
        "iommu-cmdline": "skipped",
        "iommu-active": "skipped",
        "gpu-present": "warn",
        "vfio-pci": "fail",
        "nic-external": "warn",
        "cpu-enough": "fail",
        "disk-enough": "fail",
        "plan": "fail",
        "supported-os": "warn",
    },
    "desktop-rtx4090": {
        "privileges": "fail",
        "gpu-driver:0000:01:00.0": "warn",
        "nic-external": "warn",
    },
    "h200-vm": {
        "bare-metal": "fail",
        "cpu-virtualization": "skipped",
        "kvm": "skipped",
        "iommu-cmdline": "skipped",
        "iommu-active": "skipped",
        "gpu-isolatable:0000:00:06.0": "skipped",
        "vfio-pci": "fail",
        "gpu-driver:0000:00:06.0": "warn",
        "nic-external": "warn",
        "disk-enough": "fail",
        "plan": "fail",
    },
    "intel-default-off": {
        "privileges": "fail",
        "iommu-cmdline": "warn",
        "iommu-active": "warn",
        "gpu-isolatable:0000:01:00.0": "warn",
        "gpu-driver:0000:01:00.0": "warn",
        "nic-external": "warn",
        "supported-os": "warn",
    },
    "iommu-noncanonical": {
        "privileges": "fail",
        "gpu-driver:0000:17:00.0": "warn",
        "gpu-driver:0000:31:00.0": "warn",
        "nic-external": "warn",
    },
    "iommu-off": {
        "privileges": "fail",
        "iommu-active": "fail",
        "gpu-isolatable:0000:01:00.0": "skipped",
        "gpu-driver:0000:01:00.0": "warn",
        "nic-external": "warn",
        "plan": "fail",
    },
    "nvidia-smi-no-driver": {
        "privileges": "fail",
        "gpu-driver:0000:01:00.0": "warn",
        "nvidia-smi": "warn",
        "nic-external": "warn",
    },
    "one-nic-pc": {
        "privileges": "fail",
        "gpu-driver:0000:01:00.0": "warn",
        "nic-external": "warn",
        "supported-os": "warn",
    },
    "pascal-gtx1080ti": {
        "privileges": "fail",
        "guest-driver:0000:01:00.0": "fail",
        "gpu-driver:0000:01:00.0": "warn",
        "nic-external": "warn",
        "plan": "fail",
        "supported-os": "warn",
    },
    "server-a100-mig": {
        "nic-external": "warn",
    },
    "shared-iommu-group": {
        "privileges": "fail",
        "gpu-isolatable:0000:04:00.0": "fail",
        "gpu-driver:0000:04:00.0": "warn",
        "secure-boot": "warn",
        "nic-external": "warn",
        "plan": "fail",
        "supported-os": "warn",
    },
    "too-small": {
        "privileges": "fail",
        "gpu-driver:0000:01:00.0": "warn",
        "nic-external": "warn",
        "cpu-enough": "fail",
        "ram-enough": "fail",
        "disk-enough": "fail",
        "plan": "fail",
    },
    "two-gpus-one-group": {
        "privileges": "fail",
        "gpu-isolatable:0000:17:00.0": "warn",
        "gpu-isolatable:0000:31:00.0": "warn",
        "gpu-driver:0000:17:00.0": "warn",
        "gpu-driver:0000:31:00.0": "warn",
        "nic-external": "warn",
    },
    "ubuntu-iommu-default-on": {
        "privileges": "fail",
        "gpu-driver:0000:01:00.0": "warn",
        "nic-external": "warn",
        "cpu-enough": "fail",
        "ram-enough": "fail",
        "disk-enough": "fail",
        "plan": "fail",
    },
    "unknown-card": {
        "privileges": "fail",
        "gpu-driver:0000:01:00.0": "warn",
        "nic-external": "warn",
        "supported-os": "warn",
    },
    "vfio-ids-typo": {
        "privileges": "fail",
        "vfio-cmdline": "warn",
        "gpu-driver:0000:01:00.0": "warn",
        "nic-external": "warn",
    },
    "workstation-2gpu": {
        "privileges": "fail",
        "gpu-driver:0000:17:00.0": "warn",
        "gpu-driver:0000:31:00.0": "warn",
        "nic-external": "warn",
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_checks_per_fixture(name):
    results = doctor(facts_of(name))
    assert not_passing(results) == EXPECTED[name]
    for r in results:
        assert r.message.strip()
        assert bool(r.fix) == (r.status in ("warn", "fail")), r  # every problem comes with its fix
    names = [r.name for r in results]
    assert len(names) == len(set(names))
    assert names[-1] == "plan"


def test_every_registered_check_reports():
    results = doctor(facts_of("workstation-2gpu"))
    reported = {r.name.split(":")[0] for r in results}
    assert set(CHECKS) - {"resources"} <= reported
    assert {"cpu-enough", "ram-enough", "disk-enough"} <= reported


def test_the_a100_server_is_ready():
    results = doctor(facts_of("server-a100-mig"))
    assert all(r.status == "pass" for r in results if r.name != "nic-external")  # eno2 has an address
    by_name = {r.name: r for r in results}
    assert "vfio-pci holds every function" in by_name["gpu-driver:0000:43:00.0"].message
    assert "IOMMU group 29" in by_name["gpu-isolatable:0000:43:00.0"].message


def test_fixes_name_the_firmware_and_kernel_settings():
    by_name = {r.name: r for r in doctor(facts_of("iommu-off"))}  # no ACPI DMAR table: VT-d off in the firmware
    assert "VT-d" in by_name["iommu-active"].fix and "DMAR" in by_name["iommu-active"].message
    by_name = {r.name: r for r in doctor(facts_of("intel-default-off"))}
    assert "intel_iommu=on iommu=pt" in by_name["iommu-cmdline"].fix
    amd = dataclasses.replace(facts_of("ci-machine"), virtualization="none")
    amd = dataclasses.replace(amd, cpu=dataclasses.replace(amd.cpu, hypervisor=False))
    assert amd.cpu.vendor == "amd"
    by_name = {r.name: r for r in doctor(amd)}
    assert "SVM Mode" in by_name["cpu-virtualization"].fix
    assert "AMD-Vi" in by_name["iommu-active"].fix  # AMD's IOMMU is on by default: only the firmware can be off
    shared = {r.name: r for r in doctor(facts_of("shared-iommu-group"))}
    assert "0000:05:00.0, 0000:06:00.0" in shared["gpu-isolatable:0000:04:00.0"].message
    assert "gpu.exclude" in shared["gpu-isolatable:0000:04:00.0"].fix


def test_ignore_check_skips_it():
    results = doctor(facts_of("desktop-rtx4090"), ignore={"privileges"})
    by_name = {r.name: r for r in results}
    assert by_name["privileges"].status == "skipped" and "ignored" in by_name["privileges"].message
    assert not any(r.status == "fail" for r in results)


def test_ignore_check_of_a_per_gpu_check_skips_every_gpu():
    results = doctor(facts_of("workstation-2gpu"), ignore={"privileges", "gpu-driver"})
    assert [r.name for r in results if r.status == "skipped"] == ["privileges", "gpu-driver"]
    assert not any(r.name.startswith("gpu-driver:") for r in results)


def test_ignoring_resources_still_leaves_the_plan_check():
    results = doctor(facts_of("too-small"), ignore={"resources", "privileges"})
    assert not_passing(results) == {
        "resources": "skipped",
        "privileges": "skipped",
        "gpu-driver:0000:01:00.0": "warn",
        "nic-external": "warn",
        "plan": "fail",
    }


def test_unknown_check_name_is_refused():
    with pytest.raises(PlanError) as exc:
        run_checks(facts_of("desktop-rtx4090"), Config(), {"no-such-check"})
    assert "'no-such-check'" in exc.value.problem
    assert "gpu-isolatable" in exc.value.fix and "supported-os" in exc.value.fix


def test_excluded_gpu_is_skipped_and_needs_no_gpu_worker():
    facts = facts_of("shared-iommu-group")
    config = Config.model_validate({"gpu": {"exclude": ["0000:04:00.0"]}})
    by_name = {r.name: r for r in doctor(facts, config)}
    assert by_name["gpu-isolatable:0000:04:00.0"].status == "skipped"
    assert by_name["plan"].status == "pass"
    assert "at least 22" in by_name["ram-enough"].message  # CPU-only minimum, like the planner


def test_full_var_lib_is_counted_as_full():
    """0 bytes free in /var/lib is full, not unknown: the doctor must not fall back to /."""
    facts = dataclasses.replace(facts_of("desktop-rtx4090"), varlib_free_bytes=0, root_free_bytes=500 * GIB)
    by_name = {r.name: r for r in doctor(facts)}
    assert by_name["disk-enough"].status == "fail"
    assert by_name["plan"].status == "fail"


def test_wireless_management_nic_warns():
    facts = facts_of("one-nic-pc")
    nics = [dataclasses.replace(n, wireless=True) if n.default_route else n for n in facts.nics]
    by_name = {r.name: r for r in doctor(dataclasses.replace(facts, nics=nics))}
    assert by_name["nic-management"].status == "warn"


def test_no_default_route_fails_nic_management_and_plan():
    facts = facts_of("one-nic-pc")
    nics = [dataclasses.replace(n, default_route=False) for n in facts.nics]
    by_name = {r.name: r for r in doctor(dataclasses.replace(facts, nics=nics))}
    assert by_name["nic-management"].status == "fail"
    assert by_name["plan"].status == "fail" and "management_interface" in by_name["plan"].message


def test_secure_boot_unknown_warns_with_mokutil():
    facts = dataclasses.replace(facts_of("one-nic-pc"), secure_boot=None)
    by_name = {r.name: r for r in doctor(facts)}
    assert by_name["secure-boot"].status == "warn" and "mokutil" in by_name["secure-boot"].fix


def test_debian_12_warns_that_kolla_2026_1_left_it_out():
    """Debian 12 is not in kolla-ansible 2026.1's support matrix (Debian 13 and Ubuntu 24.04 are)."""
    by_name = {r.name: r for r in doctor(facts_of("one-nic-pc"))}
    assert facts_of("one-nic-pc").os.version_id == "12"
    assert by_name["supported-os"].status == "warn"
    assert "support matrix" in by_name["supported-os"].message
    assert "Debian 13" in by_name["supported-os"].fix
    assert {r.name: r.status for r in doctor(facts_of("workstation-2gpu"))}.get("supported-os", "pass") == "pass"


def test_unsupported_os_warns():
    facts = facts_of("one-nic-pc")
    facts = dataclasses.replace(facts, os=dataclasses.replace(facts.os, id="fedora", version_id="41"))
    assert {r.name: r.status for r in doctor(facts)}["supported-os"] == "warn"


def test_other_architecture_fails():
    facts = dataclasses.replace(facts_of("one-nic-pc"), arch="aarch64")
    assert {r.name: r.status for r in doctor(facts)}["architecture"] == "fail"


def test_one_nic_pc_warns_that_floating_ips_stay_on_this_pc():
    by_name = {r.name: r for r in doctor(facts_of("one-nic-pc"))}
    check = by_name["nic-external"]
    assert check.status == "warn"
    assert check.message == (
        "no free wired NIC: the VMs reach the network through NAT on this PC; "
        "floating IPs are reachable from this PC only"
    )
    assert check.fix == (
        "connect a second wired NIC to the same network (a USB 3 gigabit adapter will do) "
        "for floating IPs reachable from the LAN"
    )


def test_a_free_second_nic_passes_nic_external():
    facts = facts_of("desktop-rtx4090")
    nics = [dataclasses.replace(n, operstate="up") if n.name == "enp6s0" else n for n in facts.nics]
    facts = dataclasses.replace(facts, nics=nics)
    check = {r.name: r for r in doctor(facts)}["nic-external"]
    assert check.status == "pass" and "enp6s0" in check.message and "the LAN" in check.message
    create = Config.model_validate({"network": {"external_interface": "create"}})
    check = {r.name: r for r in doctor(facts, create)}["nic-external"]
    assert check.status == "warn" and "enp6s0" in check.fix


# ---------------------------------------------------------------------------------------- real-PC classes


def by_name_of(fixture: str, config: Config | None = None) -> dict:
    return {r.name: r for r in doctor(facts_of(fixture), config)}


def test_a_kernel_without_iommu_by_default_is_left_to_the_host_phase():
    """Finding 10: no groups yet, VT-d on in the firmware (DMAR table): init's host phase adds intel_iommu=on, so
    the doctor warns (not fails) and the plan is made, with the isolation check left to after the reboot."""
    checks = by_name_of("intel-default-off")
    assert checks["iommu-cmdline"].status == "warn" and "host phase adds" in checks["iommu-cmdline"].message
    assert checks["iommu-active"].status == "warn" and "after the host phase's reboot" in checks["iommu-active"].message
    assert checks["plan"].status == "pass"
    plan = make_plan(facts_of("intel-default-off"), Config(), VERSIONS)
    assert [g.address for g in plan.gpus] == ["0000:01:00.0"]
    assert "iommu-after-reboot" in {w.code for w in plan.warnings}


def test_ubuntu_iommu_on_by_default_passes_without_a_flag():
    """Finding 10: Ubuntu enables the Intel IOMMU by default: groups exist with no word on the command line."""
    facts = facts_of("ubuntu-iommu-default-on")
    assert "iommu" not in facts.cmdline
    checks = {r.name: r for r in doctor(facts)}
    assert checks["iommu-cmdline"].status == "pass" and "DMA-FQ" in checks["iommu-cmdline"].message
    assert checks["iommu-active"].status == "pass"


def test_the_iommu_mode_is_what_the_kernel_reports():
    """Finding 14: intel_iommu=sm_on,on iommu.passthrough=1 is passthrough mode: the groups' type says identity."""
    checks = by_name_of("iommu-noncanonical")
    assert checks["iommu-cmdline"].status == "pass" and "identity" in checks["iommu-cmdline"].message


def test_one_iommu_verdict_per_report():
    """Finding 21: never "IOMMU is on" and "IOMMU is off" in one report; dependent checks say what they depend on."""
    for fixture in ("ci-machine", "h200-vm", "iommu-off", "intel-default-off", "desktop-rtx4090"):
        text = " ".join(r.message for r in doctor(facts_of(fixture)) if r.name.startswith("iommu"))
        assert not ("IOMMU is on" in text and "IOMMU is off" in text), (fixture, text)
    checks = by_name_of("ci-machine")
    assert checks["kvm"].status == "skipped" and "depends on cpu-virtualization" in checks["kvm"].message
    assert (
        checks["cpu-virtualization"].status == "skipped"
        and "depends on bare-metal" in checks["cpu-virtualization"].message
    )
    assert "a container (docker)" in checks["bare-metal"].message
    assert "a virtual machine (kvm)" in by_name_of("h200-vm")["bare-metal"].message


def test_acs_override_isolation_is_fake():
    """Finding 12: with pcie_acs_override the GPU looks alone in group 21; the doctor and the planner refuse it."""
    facts = facts_of("acs-override")
    gpu = facts.nvidia_gpus[0]
    assert gpu.isolatable and facts.iommu.acs_override == "downstream,multifunction"
    check = by_name_of("acs-override")["gpu-isolatable:0000:04:00.0"]
    assert check.status == "fail" and "pretend" in check.message and "pcie_acs_override" in check.fix
    with pytest.raises(PlanError) as exc:
        make_plan(facts, Config(), VERSIONS)
    assert "pcie_acs_override" in exc.value.problem


def test_a_vfio_ids_typo_is_named():
    """Finding 13: vfio-pci.ids=10de:2684,10de:22bb leaves the audio function (10de:22ba) on snd_hda_intel."""
    checks = by_name_of("vfio-ids-typo")
    assert checks["vfio-cmdline"].status == "warn"
    assert (
        "'10de:22bb'" in checks["vfio-cmdline"].message and "0000:01:00.1 [10de:22ba]" in checks["vfio-cmdline"].message
    )
    assert "0000:01:00.1 on snd_hda_intel" in checks["gpu-driver:0000:01:00.0"].message
    assert by_name_of("server-a100-mig")["vfio-cmdline"].status == "pass"  # a right one passes


def test_two_gpus_in_one_group_go_together():
    """Finding 16: two cards behind one root port share group 14: one VM gets both, not "no GPU"."""
    checks = by_name_of("two-gpus-one-group")
    assert checks["gpu-isolatable:0000:17:00.0"].status == "warn"
    assert "go together" in checks["gpu-isolatable:0000:17:00.0"].message
    plan = make_plan(facts_of("two-gpus-one-group"), Config(), VERSIONS)
    assert {g.vm for g in plan.gpus} == {"worker-1"} and len(plan.gpus) == 2
    assert "gpus-share-group" in {w.code for w in plan.warnings}
    excluded = Config.model_validate({"gpu": {"exclude": ["0000:31:00.0"]}})
    with pytest.raises(PlanError) as exc:  # half a group cannot go
        make_plan(facts_of("two-gpus-one-group"), excluded, VERSIONS)
    assert "a group goes to a VM only as a whole" in exc.value.problem


def test_a_gpu_the_pinned_driver_dropped_is_refused():
    """Finding 17: a Pascal card on the 595 branch: a failed check and no plan, never an MPS plan."""
    check = by_name_of("pascal-gtx1080ti")["guest-driver:0000:01:00.0"]
    assert check.status == "fail" and "Pascal" in check.message and "580" in check.message
    with pytest.raises(PlanError) as exc:
        make_plan(facts_of("pascal-gtx1080ti"), Config(), VERSIONS)
    assert "Pascal" in exc.value.problem and "gpu.exclude" in exc.value.fix
    from affordml.facts.gpu_catalog import architecture_from_device_id

    assert architecture_from_device_id("1b06") == "Volta or older"  # without nvidia-smi, the PCI id tells
    assert architecture_from_device_id("1f82") is None  # GTX 1650 is Turing


def test_nvidia_smi_without_a_driver_loads_and_is_named():
    """Finding 19: nvidia-smi's "failed to communicate" text: facts load, the doctor names it."""
    facts = facts_of("nvidia-smi-no-driver")
    assert facts.nvidia_gpus[0].name == "NVIDIA GeForce RTX 4090" and facts.nvidia_gpus[0].memory_source == "catalog"
    check = by_name_of("nvidia-smi-no-driver")["nvidia-smi"]
    assert check.status == "warn" and "couldn't communicate with the NVIDIA driver" in check.message


def test_doctor_and_preflight_count_the_same(monkeypatch):
    """Finding 21: init's preflight prints the doctor's own count line (same checks, plan included)."""
    import affordml.facts.gather as gather
    from affordml.errors import RunError
    from affordml.phases.steps import preflight
    from affordml.phases.workflow import PhaseContext
    from affordml.plan.checks import doctor_results, summary

    facts = facts_of("ci-machine")
    monkeypatch.setattr(gather, "gather_facts", lambda *args, **kwargs: facts)
    lines: list[str] = []
    config = Config()
    with pytest.raises(RunError):
        preflight(PhaseContext(None, config, None, load_lock(), None, lines.append))
    doctor_line = summary(doctor_results(facts, config, VERSIONS))
    assert lines == [f"[preflight] {config.hosts[0].name}: {doctor_line} (the same checks as `affordml doctor`)"]
    assert "5 failed" in doctor_line
