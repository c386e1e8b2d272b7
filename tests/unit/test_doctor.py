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
    "ci-machine": {
        "cpu-virtualization": "fail",
        "bare-metal": "fail",
        "iommu-cmdline": "warn",
        "iommu-active": "fail",
        "gpu-present": "warn",
        "vfio-pci": "fail",
        "cpu-enough": "fail",
        "disk-enough": "fail",
        "plan": "fail",
        "nic-external": "warn",
        "supported-os": "warn",
    },
    "h200-vm": {
        "cpu-virtualization": "fail",
        "kvm": "fail",
        "bare-metal": "fail",
        "iommu-cmdline": "warn",
        "iommu-active": "fail",
        "gpu-isolatable:0000:00:06.0": "fail",
        "vfio-pci": "fail",
        "gpu-driver:0000:00:06.0": "warn",
        "disk-enough": "fail",
        "plan": "fail",
        "nic-external": "warn",
    },
    "desktop-rtx4090": {"privileges": "fail", "gpu-driver:0000:01:00.0": "warn", "nic-external": "warn"},
    "shared-iommu-group": {
        "privileges": "fail",
        "iommu-cmdline": "warn",
        "gpu-isolatable:0000:04:00.0": "fail",
        "gpu-driver:0000:04:00.0": "warn",
        "secure-boot": "warn",
        "plan": "fail",
        "nic-external": "warn",
        "supported-os": "warn",
    },
    "iommu-off": {
        "privileges": "fail",
        "iommu-cmdline": "fail",
        "iommu-active": "fail",
        "gpu-isolatable:0000:01:00.0": "fail",
        "gpu-driver:0000:01:00.0": "warn",
        "plan": "fail",
        "nic-external": "warn",
    },
    "server-a100-mig": {"nic-external": "warn"},
    "workstation-2gpu": {
        "privileges": "fail",
        "gpu-driver:0000:17:00.0": "warn",
        "gpu-driver:0000:31:00.0": "warn",
        "nic-external": "warn",
    },
    "one-nic-pc": {
        "privileges": "fail",
        "gpu-driver:0000:01:00.0": "warn",
        "nic-external": "warn",
        "supported-os": "warn",
    },
    "too-small": {
        "privileges": "fail",
        "iommu-cmdline": "warn",
        "gpu-driver:0000:01:00.0": "warn",
        "cpu-enough": "fail",
        "ram-enough": "fail",
        "disk-enough": "fail",
        "plan": "fail",
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
    assert "vfio-pci holds it" in by_name["gpu-driver:0000:43:00.0"].message
    assert "IOMMU group 29" in by_name["gpu-isolatable:0000:43:00.0"].message


def test_fixes_name_the_firmware_and_kernel_settings():
    by_name = {r.name: r for r in doctor(facts_of("iommu-off"))}
    assert "intel_iommu=on iommu=pt" in by_name["iommu-cmdline"].fix
    assert "VT-d" in by_name["iommu-active"].fix
    amd = facts_of("ci-machine")
    assert amd.cpu.vendor == "amd"
    by_name = {r.name: r for r in doctor(amd)}
    assert "SVM Mode" in by_name["cpu-virtualization"].fix
    assert "amd_iommu=on iommu=pt" in by_name["iommu-cmdline"].fix
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
        "iommu-cmdline": "warn",
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
