"""`affordml init phase host` end to end: the real CLI, the real runner, real systemd test hosts.

The plan comes from the desktop-rtx4090 facts fixture (the test hosts are containers without GPUs; its only
cabled NIC makes the plan masquerade neutron's external network, and nft and addresses in a container touch only
its own network namespace); the project's extra-vars.yml routes ssh through the test bed's guard and keeps kernel
state untouched."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.integration.hosts.affordml_project import (
    DESKTOP_FACTS,
    DESKTOP_NAT,
    DESKTOP_VFIO_IDS,
    changed_count,
    run_affordml,
    write_project,
)
from tests.testbed.nspawn import Testbed

pytestmark = [pytest.mark.testbed, pytest.mark.slow]


def init_host(project: Path, bed: Testbed) -> tuple[str, float]:
    started = time.monotonic()
    result = run_affordml(project, bed, "init", "--facts", str(DESKTOP_FACTS), "phase", "host")
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output, elapsed


def job_event_changes(project: Path) -> dict[str, int]:
    """Changed results per host in the newest host run, from ansible-runner's job events."""
    artifacts = sorted(project.glob("runs/*-host/artifacts/*"))[-1]
    changed: dict[str, int] = {}
    for path in (artifacts / "job_events").glob("*.json"):
        event = json.loads(path.read_text())
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_ok" and (data.get("res") or {}).get("changed"):
            changed[data["host"]] = changed.get(data["host"], 0) + 1
    return changed


def check_host_files(bed: Testbed) -> None:
    ids = ",".join(sorted(DESKTOP_VFIO_IDS))
    for host in bed.hosts:
        grub = host.ssh("cat /etc/default/grub.d/60-affordml.cfg").stdout
        line = next(x for x in grub.splitlines() if x.startswith("GRUB_CMDLINE_LINUX_DEFAULT="))
        words = line.split('"')[1].split()
        assert "iommu=pt" in words and f"vfio-pci.ids={ids}" in words
        assert not any(w.startswith("amd_iommu=") for w in words)  # no amd_iommu=on: AMD's IOMMU is on by default
        intel = "GenuineIntel" in host.ssh("grep -m1 vendor_id /proc/cpuinfo").stdout
        assert ("intel_iommu=on" in words) == intel
        modprobe = host.ssh("cat /etc/modprobe.d/affordml-vfio.conf").stdout
        assert f"options vfio-pci ids={ids}" in modprobe
        assert "softdep snd_hda_intel pre: vfio-pci" in modprobe
        assert "blacklist nouveau" in host.ssh("cat /etc/modprobe.d/affordml-blacklist-nouveau.conf").stdout
        daemon = json.loads(host.ssh("cat /etc/docker/daemon.json").stdout)
        assert daemon["iptables"] is False and daemon["bridge"] == "none" and daemon["log-opts"]["max-file"] == "5"
        link = json.loads(host.ssh("ip -j addr show dev affordml-ext0").stdout)[0]
        assert link["operstate"] == "UP" and link["addr_info"] == []
        peer = json.loads(host.ssh("ip -j addr show dev affordml-ext1").stdout)[0]
        ipv4 = [f"{a['local']}/{a['prefixlen']}" for a in peer["addr_info"] if a["family"] == "inet"]
        assert peer["operstate"] == "UP" and ipv4 == [f"{DESKTOP_NAT['gateway']}/24"], peer
        assert host.ssh("sysctl -n net.ipv4.ip_forward").stdout.strip() == "1"
        units = "docker affordml-external-veth affordml-external-nat"
        assert host.ssh(f"systemctl is-active {units}").stdout.split() == ["active"] * 3
        table = host.ssh("nft list table ip affordml").stdout
        rule = f'ip saddr {DESKTOP_NAT["subnet"]} oifname "{DESKTOP_NAT["management"]}" masquerade'
        assert rule in table, table
        assert "type nat hook postrouting" in table
        assert host.ssh("test -f /var/lib/affordml/reboot-required", check=False).returncode == 0


@pytest.mark.parametrize("n_hosts", [1, 2])
def test_init_phase_host_converges_and_is_idempotent(testbed_factory, tmp_path: Path, n_hosts: int) -> None:
    bed = testbed_factory(n_hosts)
    project = write_project(tmp_path / "project", bed)

    if n_hosts == 1:  # --dry-run: Ansible's check mode goes through and changes nothing on the host
        dry = run_affordml(project, bed, "init", "--dry-run", "--facts", str(DESKTOP_FACTS), "phase", "host")
        assert dry.returncode == 0, (dry.stdout + dry.stderr)[-6000:]
        left = bed.hosts[0].ssh("ls /etc/default/grub.d/60-affordml.cfg /etc/docker/daemon.json", check=False)
        assert left.returncode != 0 and left.stdout == ""

    first, first_s = init_host(project, bed)
    assert "[host] done" in first
    assert changed_count(first) > 0
    names = ", ".join(h.name for h in bed.hosts)
    assert f"reboot {names}, then run `affordml init` again: it resumes" in first
    check_host_files(bed)

    second, second_s = init_host(project, bed)
    changed = changed_count(second)
    print(
        f"init phase host on {n_hosts} host(s): first run {first_s:.1f} s, second run {second_s:.1f} s, "
        f"changed on the second run: {changed}"
    )
    assert changed == 0, second[-4000:]
    assert job_event_changes(project) == {}
    assert "reboot" in second  # still pending: the hosts have not rebooted
