"""An affordml project whose hosts are test bed hosts, and the real `affordml` command run on it.

The project's ``extra-vars.yml`` (read by every playbook phase) routes Ansible's ssh through the test bed's
route guard, trusts only the test bed's known_hosts, and sets the switches that keep roles off what a
container cannot change (kernel state) or reach (the internet).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.testbed.nspawn import Testbed

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "hardware"
DESKTOP_FACTS = FIXTURES / "desktop-rtx4090.json"
DESKTOP_VFIO_IDS = ["10de:2684", "10de:22ba"]
# What the plan gives that fixture's single cabled NIC: neutron's external network behind NAT on the host.
DESKTOP_NAT = {"subnet": "172.24.4.0/24", "gateway": "172.24.4.1", "management": "enp5s0"}

TEST_SWITCHES = {
    "affordml_apply_kernel_state": False,  # modules and non-network sysctls belong to this machine
    "affordml_online": False,  # test hosts have no internet
    "affordml_kolla_deploy": False,  # image pulls and deploy need the internet
}
SUMMARY = re.compile(r"ok=(\d+) changed=(\d+) failed=(\d+) unreachable=(\d+)")


def affordml_command() -> list[str]:
    """The installed console script beside this Python (never a shim that might pick another one)."""
    script = Path(sys.executable).parent / "affordml"
    return [str(script)] if script.exists() else [sys.executable, "-m", "affordml"]


def affordml_env() -> dict[str, str]:
    """The environment `affordml` runs with here: no ANSIBLE_* settings, no AFFORDML_HOME, wide output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "AFFORDML_HOME"))}
    env["COLUMNS"] = "200"
    return env


def write_project(root: Path, bed: Testbed, switches: dict | None = None, listed: int | None = None) -> Path:
    """affordml.yaml naming the test hosts (never "local"; the first `listed` of them when given) and
    extra-vars.yml for the test bed."""
    bed.check_routes()
    root.mkdir(parents=True, exist_ok=True)
    hosts = [
        {"name": h.name, "address": h.address, "user": "root", "ssh_key": str(bed.key_path), "port": h.port}
        for h in bed.hosts[:listed]
    ]
    assert all(h["address"] != "local" for h in hosts)
    (root / "affordml.yaml").write_text(yaml.safe_dump({"hosts": hosts}, sort_keys=False))
    extra = bed.ssh_vars() | TEST_SWITCHES | (switches or {})
    (root / "extra-vars.yml").write_text(yaml.safe_dump(extra, sort_keys=False))
    return root


def simulate_reboot(bed: Testbed) -> None:
    """What a reboot changes for the host role: the boot id its reboot marker was written in is no longer the
    current one (a test host keeps running; its kernel is this machine's). `affordml init` stops after a host phase
    that records a pending reboot; call this before running a later phase on the same hosts."""
    for host in bed.hosts:
        host.ssh(
            "test ! -f /var/lib/affordml/reboot-required || sed -i '1s/.*/boot-before-the-reboot/' "
            "/var/lib/affordml/reboot-required"
        )


def run_affordml(root: Path, bed: Testbed, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """`affordml -p root ARGS` as a user runs it, after checking every test host's route."""
    bed.check_routes()
    return subprocess.run(
        [*affordml_command(), "-p", str(root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=affordml_env(),
        cwd=root,
    )


def changed_count(output: str) -> int:
    """The changed= total from the summary line affordml prints after a playbook phase."""
    found = SUMMARY.findall(output)
    assert found, f"no summary line in:\n{output[-3000:]}"
    return int(found[-1][1])
