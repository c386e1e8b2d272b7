"""The test bed itself: hosts boot and answer SSH, Ansible reaches them, the route guard holds, teardown is clean."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.testbed import netsafety, nspawn
from tests.testbed.netsafety import UnsafeRoute
from tests.testbed.nspawn import Testbed, TestbedError

pytestmark = pytest.mark.testbed

# TEST-NET-1 (documentation range): only ever asked about with `ip route get`, never connected to.
OUTSIDE_ADDRESS = "192.0.2.10"

PLAYBOOK = """\
- hosts: all
  gather_facts: true
  gather_subset: [min]
  tasks:
    - name: Ping
      ansible.builtin.ping:
    - name: Facts name the host as the inventory does
      ansible.builtin.assert:
        that: ansible_facts.hostname == inventory_hostname
    - name: Baked-in packages are found without a network
      ansible.builtin.apt:
        name: [openssh-server, python3-apt, docker.io]
        state: present
      register: packages
    - name: Nothing had to be installed
      ansible.builtin.assert:
        that: not packages.changed
    - name: Files are transferred too (sftp through the guard)
      ansible.builtin.copy:
        content: "{{ inventory_hostname }}\n"
        dest: /etc/affordml-testbed-probe
"""


@pytest.fixture(scope="module")
def two_hosts(testbed_factory) -> Testbed:
    """Two booted hosts shared by this module's tests."""
    return testbed_factory(2)


def leftovers(state: nspawn.TestbedState) -> list[str]:
    """Whatever a stopped test bed left behind: namespaces, links, mounts, processes, files."""
    found = [f"netns {name}" for name in state.netns if Path("/run/netns", name).exists()]
    found += [f"link {name}" for name in [*state.veths, state.bridge] if nspawn.link_exists(name)]
    mounts = Path("/proc/self/mounts").read_text()
    found += [f"mount {path}" for path in state.mounts if f" {path} " in mounts]
    found += [f"pid {pid}" for pid in state.pids if Path(f"/proc/{pid}").exists()]
    found += [f"cgroup {path}" for path in state.cgroups if Path(path).exists()]
    found += [f"dir {state.workdir}"] if state.workdir and Path(state.workdir).exists() else []
    return found + ([f"state {state.path}"] if state.path.exists() else [])


def test_hosts_answer_ssh_with_their_names_and_boot_fully(two_hosts: Testbed) -> None:
    for host in two_hosts.hosts:
        result = host.ssh("hostname && systemctl is-system-running --wait")
        assert result.stdout.split() == [host.name, "running"]


def test_hosts_have_no_route_beyond_the_bridge(two_hosts: Testbed) -> None:
    routes = two_hosts.hosts[0].ssh("ip -4 route show").stdout.strip().splitlines()
    assert len(routes) == 1 and routes[0].startswith(f"{two_hosts.subnet} dev eth0")


def test_this_machine_does_not_route_for_the_hosts(two_hosts: Testbed) -> None:
    sysctl = Path("/proc/sys/net")
    assert (sysctl / "ipv4/conf" / two_hosts.bridge / "forwarding").read_text().strip() == "0"
    assert (sysctl / "ipv6/conf" / two_hosts.bridge / "disable_ipv6").read_text().strip() == "1"


def test_hosts_know_each_other_by_name_and_have_python_modules(two_hosts: Testbed) -> None:
    first, second = two_hosts.hosts
    result = first.ssh(f"getent hosts {second.name} && python3 -c 'import apt, docker'")
    assert result.stdout.split()[0] == second.address


def test_inventory_names_every_host_with_key_and_known_hosts(two_hosts: Testbed) -> None:
    inventory = yaml.safe_load(Path(two_hosts.inventory_path).read_text())
    hosts, variables = inventory["all"]["hosts"], inventory["all"]["vars"]
    assert {name: entry["ansible_host"] for name, entry in hosts.items()} == {
        host.name: host.address for host in two_hosts.hosts
    }
    assert variables["ansible_user"] == "root"
    assert Path(variables["ansible_ssh_private_key_file"]).exists()
    assert f"UserKnownHostsFile={two_hosts.known_hosts}" in variables["ansible_ssh_common_args"]
    assert len(two_hosts.known_hosts.read_text().splitlines()) == 2


def test_ansible_playbook_reaches_every_host(two_hosts: Testbed, tmp_path: Path) -> None:
    playbook = tmp_path / "site.yml"
    playbook.write_text(PLAYBOOK)
    two_hosts.check_routes()
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0"}
    result = subprocess.run(
        ["ansible-playbook", "-i", str(two_hosts.inventory_path), str(playbook)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    for host in two_hosts.hosts:
        assert f"{host.name}" in result.stdout and "unreachable=0    failed=0" in result.stdout


def run_guard(guard: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an ssh guard wrapper (it refuses before any connection when the destination is unsafe)."""
    return subprocess.run([str(guard), "-o", "BatchMode=yes", *args], capture_output=True, text=True, timeout=60)


def test_ssh_guard_lets_ansible_style_calls_through(two_hosts: Testbed) -> None:
    host = two_hosts.hosts[0]
    result = run_guard(two_hosts.ssh_guard, *host.ssh_options(), f"root@{host.address}", "hostname")
    assert result.returncode == 0 and result.stdout.strip() == host.name


def test_ssh_guard_refuses_a_destination_that_is_not_a_test_host(two_hosts: Testbed) -> None:
    result = run_guard(two_hosts.ssh_guard, f"root@{OUTSIDE_ADDRESS}", "true")
    assert result.returncode == 255 and "no test bed host" in result.stderr


def test_ssh_guard_refuses_a_test_host_routed_elsewhere(two_hosts: Testbed, tmp_path: Path) -> None:
    host = two_hosts.hosts[0]
    guard = tmp_path / "ssh-guarded"
    guard.write_text(nspawn.ssh_guard_script("afftb-wrong", [host.address]))
    guard.chmod(0o755)
    result = run_guard(guard, f"root@{host.address}", "true")
    assert result.returncode == 255 and "does not go straight out of afftb-wrong" in result.stderr


def test_guard_refuses_an_address_that_leaves_the_bridge(two_hosts: Testbed) -> None:
    route = netsafety.parse_route_get(netsafety.run_ip(netsafety.route_get_command(OUTSIDE_ADDRESS)))
    assert netsafety.route_problem(route, OUTSIDE_ADDRESS, two_hosts.bridge) is not None
    with pytest.raises(UnsafeRoute):
        netsafety.check_route(OUTSIDE_ADDRESS, two_hosts.bridge, two_hosts.subnet)


def test_guard_refuses_a_host_address_on_another_device(two_hosts: Testbed) -> None:
    host = two_hosts.hosts[0]
    with pytest.raises(UnsafeRoute, match="not the test bridge"):
        netsafety.check_route(host.address, "afftb-wrong", two_hosts.subnet)


def test_guard_checks_inside_a_host_namespace(two_hosts: Testbed) -> None:
    first, second = two_hosts.hosts
    netsafety.check_route(second.address, "eth0", two_hosts.subnet, netns=first.netns)
    with pytest.raises(UnsafeRoute):
        netsafety.check_route(second.address, two_hosts.bridge, two_hosts.subnet, netns=first.netns)


def test_running_test_bed_subnet_counts_as_taken(two_hosts: Testbed) -> None:
    assert netsafety.subnet_conflicts(two_hosts.subnet)


def test_teardown_leaves_nothing_and_the_guards_then_refuse(testbed_rootfs: Path, tmp_path: Path) -> None:
    bed = Testbed()
    host = bed.start(1)[0]
    state = bed.state
    assert state is not None and leftovers(state)
    guard_text = bed.ssh_guard.read_text()
    bed.stop()
    assert leftovers(state) == []
    with pytest.raises(UnsafeRoute):
        host.ssh("true")
    stale_guard = tmp_path / "ssh-guarded"
    stale_guard.write_text(guard_text)
    stale_guard.chmod(0o755)
    result = run_guard(stale_guard, f"root@{host.address}", "true")
    assert result.returncode == 255 and "does not go straight out" in result.stderr


def test_failed_start_is_torn_down(testbed_rootfs: Path) -> None:
    bed = Testbed(nspawn_args=["--no-such-option"])
    with pytest.raises(TestbedError, match="exited while booting"):
        bed.start(1)
    assert bed.state is None
    assert not list(nspawn.STATE_DIR.glob(f"{bed.bridge}.json"))
    assert not nspawn.link_exists(bed.bridge)


def test_orphaned_test_bed_is_reaped(testbed_rootfs: Path) -> None:
    bed = Testbed()
    bed.start(1)
    state = bed.state
    assert state is not None
    dead = subprocess.Popen(["true"])
    dead.wait()
    state.owner_pid = dead.pid
    state.save()
    bed.state = None  # the owner "crashed": only the record under /run remains
    assert nspawn.reap_orphans() == []
    for host in bed.hosts:
        assert host.process is not None and host.process.wait(timeout=5) is not None
    assert leftovers(state) == []
