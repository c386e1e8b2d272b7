"""The host role's external NAT on a real systemd test host: set up, dropped when the plan no longer has it, and
removed by destroy. Each test host has its own network namespace: its address and nft table exist only there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.hosts.affordml_project import DESKTOP_NAT, TEST_SWITCHES
from tests.testbed.nspawn import Testbed, TestHost

pytestmark = [pytest.mark.testbed, pytest.mark.slow]

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks"
NAT_PLAN = {
    "affordml_vfio_ids": [],
    "affordml_vfio_roles": [],
    "affordml_external_interface": "affordml-ext0",
    "affordml_external_interface_created": True,
    "affordml_management_interface": DESKTOP_NAT["management"],
    "affordml_external_subnet": DESKTOP_NAT["subnet"],
    "affordml_external_gateway": DESKTOP_NAT["gateway"],
    "affordml_external_prefix": 24,
    "affordml_external_nat": True,
}


def host_play(bed: Testbed, work: Path, **overrides) -> None:
    """playbooks/host.yml on the test hosts with the NAT plan and the overrides."""
    bed.check_routes()
    extra = work / "vars.yml"
    # the rendered plan vars always name the controller's management address (the /etc/hosts step maps it)
    controller = {"affordml_management_address": bed.hosts[0].address}
    extra.write_text(yaml.safe_dump(NAT_PLAN | TEST_SWITCHES | controller | overrides))
    groups_inventory = bed.write_inventory(
        work / "inventory.yml",
        {"affordml_hosts": [h.name for h in bed.hosts], "affordml_controller": [bed.hosts[0].name]},
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_CONFIG"] = str(PLAYBOOKS / "ansible.cfg")
    playbook = shutil.which("ansible-playbook")
    assert playbook, "ansible-playbook is not installed"
    result = subprocess.run(
        [playbook, "-i", str(groups_inventory), "-e", f"@{extra}", str(PLAYBOOKS / "host.yml")],
        cwd=PLAYBOOKS,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]


def peer_ipv4(host: TestHost) -> list[str]:
    peer = json.loads(host.ssh("ip -j addr show dev affordml-ext1").stdout)[0]
    return [f"{a['local']}/{a['prefixlen']}" for a in peer["addr_info"] if a["family"] == "inet"]


def has_nat_table(host: TestHost) -> bool:
    return host.ssh("nft list table ip affordml", check=False).returncode == 0


def test_nat_follows_the_plan_and_destroy_removes_it(testbed_factory, tmp_path: Path) -> None:
    bed = testbed_factory(1)
    host = bed.hosts[0]
    host_play(bed, tmp_path)
    assert peer_ipv4(host) == [f"{DESKTOP_NAT['gateway']}/24"]
    assert has_nat_table(host)

    # Deleted behind the role's back: the next run loads it again.
    host.ssh("nft delete table ip affordml")
    host_play(bed, tmp_path)
    assert has_nat_table(host)

    # The plan no longer masquerades (a second NIC took over): the unit, its file and the table go.
    host_play(bed, tmp_path, affordml_external_nat=False)
    assert not has_nat_table(host)
    assert (
        host.ssh(
            "ls /etc/systemd/system/affordml-external-nat.service /etc/affordml/external-nat.nft", check=False
        ).stdout
        == ""
    )
    assert peer_ipv4(host) == []

    host_play(bed, tmp_path)
    assert has_nat_table(host) and peer_ipv4(host) == [f"{DESKTOP_NAT['gateway']}/24"]
    host_play(bed, tmp_path, affordml_action="destroy")
    assert not has_nat_table(host)
    assert host.ssh("ip link show dev affordml-ext0", check=False).returncode != 0
    assert host.ssh("ls /etc/affordml/external-nat.nft", check=False).returncode != 0
