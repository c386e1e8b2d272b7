"""Real test hosts: systemd-nspawn ``--boot`` containers, each in its own network namespace, on one bridge.

Usage::

    with Testbed() as bed:
        hosts = bed.start(3)
        bed.write_inventory(tmp_path / "inventory.yml")
        hosts[0].ssh("hostname")

Every host runs sshd on port 22 and accepts root with the test bed's own SSH key. The harness writes a
known_hosts file from the host keys it generates. Every connection is preceded by the route check of
``netsafety``; teardown kills by PID, unmounts the overlays, deletes the namespaces, veths and bridge.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from affordml import procs
from tests.testbed import image, netsafety
from tests.testbed.netsafety import UnsafeRoute

STATE_DIR = Path("/run/affordml-testbed")
NAME_PREFIX = "afftb"
FIRST_HOST_OCTET = 11
BOOT_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0
CGROUP_GROUP = "affordml-testbed"
SSH_OPTIONS_TIMEOUT_S = 10


class TestbedError(RuntimeError):
    """The test bed could not be started or torn down cleanly."""

    __test__ = False  # not a pytest test class


@dataclass
class TestHost:
    """One booted test host, reachable over SSH from this machine's root network namespace."""

    __test__ = False  # not a pytest test class

    name: str
    address: str
    netns: str
    veth: str
    root: Path
    key_path: Path
    known_hosts: Path
    bridge: str
    subnet: ipaddress.IPv4Network
    user: str = "root"
    port: int = 22
    process: subprocess.Popen | None = field(default=None, repr=False)
    log_path: Path | None = None

    def check_route(self) -> None:
        """Raise UnsafeRoute unless this host's address is routed straight out of the test bridge."""
        netsafety.check_route(self.address, self.bridge, self.subnet)

    def ssh_options(self) -> list[str]:
        """ssh client options: our key, our known_hosts, strict checking, no prompts, one attempt."""
        return [
            "-i",
            str(self.key_path),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectionAttempts=1",
            "-o",
            f"ConnectTimeout={SSH_OPTIONS_TIMEOUT_S}",
            "-p",
            str(self.port),
        ]

    def ssh(self, command: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a shell command on the host over SSH, after checking the route."""
        self.check_route()
        argv = ["ssh", *self.ssh_options(), f"{self.user}@{self.address}", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check)

    def is_running(self) -> bool:
        """Whether the host's systemd-nspawn process is still alive."""
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the host's console log, for error messages."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


@dataclass
class TestbedState:
    """What a test bed created, recorded under /run so that an interrupted run can be cleaned up later."""

    owner_pid: int
    bridge: str
    workdir: str
    netns: list[str] = field(default_factory=list)
    veths: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        """The state file of this test bed."""
        return STATE_DIR / f"{self.bridge}.json"

    def save(self) -> None:
        """Write the record (before each resource is created, so nothing escapes it)."""
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> TestbedState:
        """Read a record written by save."""
        return cls(**json.loads(path.read_text()))


def run_command(argv: Sequence[str], timeout: float = 30) -> str:
    """Run a setup command and return its output; raise TestbedError with stderr when it fails."""
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise TestbedError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def link_exists(name: str) -> bool:
    """Whether a network interface of that name exists in the root namespace."""
    return Path("/sys/class/net", name).exists()


class Testbed:
    """N booted Debian hosts on a private bridge, with an SSH key, known_hosts and an Ansible inventory."""

    __test__ = False  # not a pytest test class

    def __init__(self, boot_timeout_s: float = BOOT_TIMEOUT_S, nspawn_args: Sequence[str] = ()) -> None:
        self.boot_timeout_s = boot_timeout_s
        self.nspawn_args = list(nspawn_args)
        self.hosts: list[TestHost] = []
        self.subnet: ipaddress.IPv4Network | None = None
        self.bridge = ""
        self.workdir: Path | None = None
        self.state: TestbedState | None = None
        self.inventory_path: Path | None = None

    def __enter__(self) -> Testbed:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def key_path(self) -> Path:
        """The private SSH key that every host accepts for root."""
        return self._require_workdir() / "id_ed25519"

    @property
    def ssh_guard(self) -> Path:
        """An ssh wrapper that checks the route to its destination test host before every connection."""
        return self._require_workdir() / "ssh-guarded"

    @property
    def known_hosts(self) -> Path:
        """The known_hosts file holding every host's generated host key."""
        return self._require_workdir() / "known_hosts"

    def start(self, n_hosts: int, names: Sequence[str] | None = None) -> list[TestHost]:
        """Create the bridge and n_hosts hosts; wait until each one's sshd answers and its boot ends."""
        if self.state is not None:
            raise TestbedError("this test bed is already started")
        names = list(names) if names else [f"node{index}" for index in range(1, n_hosts + 1)]
        if len(names) != n_hosts or len(set(names)) != n_hosts or n_hosts > 200:
            raise TestbedError(f"need {n_hosts} distinct host names (at most 200), got {names}")
        reap_orphans()
        rootfs = image.ensure_rootfs()
        try:
            self._create_network()
            self._create_workdir_and_key()
            self.hosts = [self._define_host(index, name) for index, name in enumerate(names)]
            for host in self.hosts:
                self._create_host(host, rootfs)
            self._write_known_hosts()
            self._write_ssh_guard()
            for host in self.hosts:
                self._wait_for_sshd(host)
            for host in self.hosts:
                self._wait_until_running(host)
        except BaseException as error:
            self._stop_after_failed_start(error)
            raise
        return self.hosts

    def _stop_after_failed_start(self, error: BaseException) -> None:
        """Tear down after a failed start, noting teardown problems on the original error."""
        try:
            self.stop()
        except TestbedError as teardown_error:
            error.add_note(f"and the teardown after it failed too: {teardown_error}")

    def stop(self) -> None:
        """Tear everything down: containers by PID, overlays, namespaces, veths, bridge, work dir."""
        if self.state is None:
            return
        state, self.state = self.state, None
        processes = [host.process for host in self.hosts if host.process is not None]
        errors = teardown(state, processes)
        self.hosts = []
        if errors:
            raise TestbedError("teardown incomplete: " + "; ".join(errors))

    def check_routes(self) -> None:
        """Raise UnsafeRoute unless every host is routed straight out of the test bridge."""
        for host in self.hosts:
            host.check_route()

    def inventory(self, groups: Mapping[str, Sequence[str]] | None = None) -> dict:
        """An Ansible YAML inventory (as a dict) for the hosts, with optional groups of host names."""
        hosts = {host.name: {"ansible_host": host.address, "ansible_port": host.port} for host in self.hosts}
        inventory: dict = {"all": {"hosts": hosts, "vars": self._connection_vars()}}
        if groups:
            inventory["all"]["children"] = {
                group: {"hosts": {name: None for name in members}} for group, members in groups.items()
            }
        return inventory

    def write_inventory(self, path: Path, groups: Mapping[str, Sequence[str]] | None = None) -> Path:
        """Write the inventory as YAML to path, after checking every host's route."""
        self.check_routes()
        path = Path(path)
        path.write_text(yaml.safe_dump(self.inventory(groups), sort_keys=False))
        self.inventory_path = path
        return path

    def ssh_vars(self) -> dict[str, str]:
        """Ansible variables that make every connection go through the guard and trust only our known_hosts."""
        ssh_args = (
            f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={self.known_hosts} "
            f"-o IdentitiesOnly=yes -o ConnectTimeout={SSH_OPTIONS_TIMEOUT_S}"
        )
        return {
            "ansible_ssh_common_args": ssh_args,
            "ansible_ssh_executable": str(self.ssh_guard),
            "ansible_sftp_extra_args": f"-S {self.ssh_guard}",
            "ansible_scp_extra_args": f"-S {self.ssh_guard}",
            "ansible_python_interpreter": "/usr/bin/python3",
        }

    def _connection_vars(self) -> dict[str, str | bool]:
        """Connection variables shared by every host: our key and user, and ssh_vars."""
        return {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.key_path),
            **self.ssh_vars(),
            "ansible_pipelining": True,
        }

    def _require_workdir(self) -> Path:
        """The work dir, or an error when the test bed is not started."""
        if self.workdir is None:
            raise TestbedError("the test bed is not started")
        return self.workdir

    def _create_network(self) -> None:
        """Pick a free subnet and create the bridge with its .1 address."""
        self.subnet = netsafety.pick_free_subnet(os.getpid())
        octet = int(self.subnet.network_address.packed[2])
        self.bridge = f"{NAME_PREFIX}{octet}"
        if link_exists(self.bridge):
            raise TestbedError(f"interface {self.bridge} already exists; refusing to reuse it")
        self.state = TestbedState(owner_pid=os.getpid(), bridge=self.bridge, workdir="")
        self.state.save()
        run_command(["ip", "link", "add", self.bridge, "type", "bridge"])
        run_command(["ip", "addr", "add", f"{self.subnet.network_address + 1}/24", "dev", self.bridge])
        seal_bridge(self.bridge)
        run_command(["ip", "link", "set", self.bridge, "up"])
        self._verify_only_our_route()

    def _verify_only_our_route(self) -> None:
        """Make sure the subnet's only main-table route is the bridge's own (no race with another user)."""
        routes = json.loads(run_command(["ip", "-j", "-4", "route", "show", "match", str(self.subnet)]))
        ours = [route for route in routes if route.get("dst") == str(self.subnet)]
        if len(ours) != 1 or ours[0].get("dev") != self.bridge:
            raise UnsafeRoute(f"unexpected routes for {self.subnet}: {routes}")

    def _create_workdir_and_key(self) -> None:
        """Make the temporary work dir and the test bed's SSH key pair."""
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.bridge}-"))
        assert self.state is not None
        self.state.workdir = str(self.workdir)
        self.state.save()
        run_command(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "affordml-testbed", "-f", str(self.key_path)])

    def _define_host(self, index: int, name: str) -> TestHost:
        """Names and address of the index-th host (nothing is created yet)."""
        assert self.subnet is not None
        number = index + 1
        return TestHost(
            name=name,
            address=str(self.subnet.network_address + FIRST_HOST_OCTET + index),
            netns=f"{self.bridge}-h{number}",
            veth=f"{self.bridge}v{number}",
            root=self._require_workdir() / name / "merged",
            key_path=self.key_path,
            known_hosts=self.known_hosts,
            bridge=self.bridge,
            subnet=self.subnet,
        )

    def _create_host(self, host: TestHost, rootfs: Path) -> None:
        """Namespace, veth on the bridge, overlay root with identity and keys, then boot it."""
        assert self.state is not None
        self.state.netns.append(host.netns)
        self.state.veths.append(host.veth)
        self.state.save()
        create_host_network(host, self.bridge)
        self.state.mounts.append(str(host.root))
        self.state.save()
        mount_overlay(rootfs, host.root)
        write_host_identity(host, self.hosts, self.key_path.with_suffix(".pub").read_text())
        self._boot(host)

    def _boot(self, host: TestHost) -> None:
        """Start systemd-nspawn --boot for the host in its own cgroup, in the background, logging its console."""
        assert self.state is not None
        cgroups = [str(base / CGROUP_GROUP / host.netns) for base in own_cgroup_dirs()]
        self.state.cgroups += cgroups
        self.state.save()
        for cgroup in cgroups:
            Path(cgroup).mkdir(parents=True, exist_ok=True)
        host.log_path = host.root.parent / "console.log"
        with open(host.log_path, "wb") as log:
            host.process = subprocess.Popen(
                nspawn_command(host, self.nspawn_args),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: join_cgroups(cgroups),
            )
        self.state.pids.append(host.process.pid)
        self.state.save()

    def _write_known_hosts(self) -> None:
        """Write known_hosts lines for every host from the host keys generated into their overlays."""
        lines = []
        for host in self.hosts:
            key_type, key = (host.root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
            lines.append(f"{host.address} {key_type} {key}\n")
        self.known_hosts.write_text("".join(lines))

    def _wait_until_running(self, host: TestHost) -> None:
        """Wait for the host's boot to finish; raise TestbedError unless systemd reports 'running'."""
        command = "systemctl is-system-running --wait; systemctl --failed --no-legend --plain"
        lines = host.ssh(command, timeout=self.boot_timeout_s, check=False).stdout.strip().splitlines()
        if not lines or lines[0] != "running":
            raise TestbedError(f"{host.name} did not boot cleanly: {lines}\n{host.log_tail()}")

    def _write_ssh_guard(self) -> None:
        """Write the guarded ssh wrapper that Ansible uses for every connection."""
        self.ssh_guard.write_text(ssh_guard_script(self.bridge, [host.address for host in self.hosts]))
        self.ssh_guard.chmod(0o755)

    def _wait_for_sshd(self, host: TestHost) -> None:
        """Wait (bounded) until the host's sshd sends its banner, checking the route before every try."""

        def attempt() -> bool | None:
            if not host.is_running():
                raise TestbedError(f"{host.name} exited while booting:\n{host.log_tail()}")
            return True if ssh_banner_received(host.address, host.port) else None

        try:
            netsafety.guarded_retry(
                attempt,
                host.check_route,
                max_attempts=int(self.boot_timeout_s / 0.2),
                deadline_s=self.boot_timeout_s,
                delay_s=0.2,
                what=f"sshd on {host.name}",
            )
        except TimeoutError as error:
            raise TestbedError(f"{error}\n{host.log_tail()}") from error


def nspawn_command(host: TestHost, extra_args: Sequence[str] = ()) -> list[str]:
    """The systemd-nspawn command line that boots the host inside its network namespace."""
    return [
        "systemd-nspawn",
        "-q",
        "--register=no",
        "--keep-unit",
        "--console=passive",
        "--boot",
        "--link-journal=no",
        "--resolv-conf=off",
        "--timezone=off",
        "--private-network",
        f"--network-namespace-path=/run/netns/{host.netns}",
        "-M",
        host.name,
        "-D",
        str(host.root),
        *extra_args,
    ]


SSH_GUARD_TEMPLATE = """\
#!/bin/sh
# Network-safety guard of the affordml test bed on bridge {bridge}: ssh (and sftp/scp via -S) only to the
# test bed's hosts, and only when the kernel routes them straight out of the bridge. Otherwise exit 255.
set -u
bridge={bridge}
targets=""
for arg in "$@"; do
  for address in {addresses}; do
    case "$arg" in
      "$address" | *@"$address" | "[$address]" | *@"[$address]") targets="$targets $address" ;;
    esac
  done
done
if [ -z "$targets" ]; then
  echo "test bed ssh guard: no test bed host among the arguments: $*" >&2
  exit 255
fi
for address in $targets; do
  case "$(ip -o route get "$address" 2>&1)" in
    "$address dev $bridge "*) ;;
    *) echo "test bed ssh guard: route to $address does not go straight out of $bridge" >&2; exit 255 ;;
  esac
done
exec ssh "$@"
"""


def ssh_guard_script(bridge: str, addresses: Sequence[str]) -> str:
    """A /bin/sh ssh wrapper that refuses any destination but these addresses routed out of bridge."""
    return SSH_GUARD_TEMPLATE.format(bridge=bridge, addresses=" ".join(addresses))


def own_cgroup_dirs() -> list[Path]:
    """This process's cgroup directories in the hierarchies systemd uses (cgroup2 and name=systemd).

    Without systemd on the machine, nspawn --keep-unit boots the container below the caller's cgroup; two
    containers there would share one cgroup tree and remove each other's units' cgroups, so each host gets
    its own child cgroup.
    """
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        own[controllers or "cgroup2"] = path
    dirs = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mount_point, fstype, options = line.split()[:4]
        key = "cgroup2" if fstype == "cgroup2" else "name=systemd" if "name=systemd" in options.split(",") else ""
        if key in own and fstype in ("cgroup", "cgroup2"):
            dirs.append(Path(mount_point) / own[key].lstrip("/"))
    return dirs


def join_cgroups(cgroups: Sequence[str]) -> None:
    """Move the calling process into each cgroup (runs in the child between fork and exec)."""
    for cgroup in cgroups:
        Path(cgroup, "cgroup.procs").write_text(str(os.getpid()))


def remove_cgroup(cgroup: Path, errors: list[str]) -> None:
    """Remove an emptied cgroup and the cgroups the container created below it, deepest first."""
    if not cgroup.is_dir():
        return
    children = sorted((path for path in cgroup.rglob("*") if path.is_dir()), key=lambda path: -len(path.parts))
    for directory in [*children, cgroup]:
        try:
            directory.rmdir()
        except OSError as error:
            errors.append(f"cgroup {directory}: {error}")
            return
    with contextlib.suppress(OSError):
        cgroup.parent.rmdir()  # the shared parent goes once no other test bed uses it


def seal_bridge(bridge: str) -> None:
    """Never route what the hosts send beyond the bridge (even if a role adds a default route there)."""
    Path(f"/proc/sys/net/ipv4/conf/{bridge}/forwarding").write_text("0\n")
    Path(f"/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6").write_text("1\n")


def create_host_network(host: TestHost, bridge: str) -> None:
    """Network namespace with eth0 (the veth peer) at the host's address, the other end on the bridge."""
    run_command(["ip", "netns", "add", host.netns])
    run_command(["ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns])
    run_command(["ip", "-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0"])
    run_command(["ip", "-n", host.netns, "link", "set", "lo", "up"])
    run_command(["ip", "-n", host.netns, "link", "set", "eth0", "up"])
    run_command(["ip", "link", "set", host.veth, "master", bridge])
    run_command(["ip", "link", "set", host.veth, "up"])


def mount_overlay(lower: Path, merged: Path) -> None:
    """Mount a writable overlay of lower at merged, with upper and work dirs beside it."""
    upper, work = merged.parent / "upper", merged.parent / "work"
    for directory in (upper, work, merged):
        directory.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    run_command(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)])


def write_host_identity(host: TestHost, all_hosts: Sequence[TestHost], authorized_key: str) -> None:
    """Hostname, hosts file, machine id, root's authorized key and a fresh SSH host key in the overlay."""
    root = host.root
    (root / "etc/hostname").write_text(host.name + "\n")
    peers = "".join(f"{peer.address} {peer.name}\n" for peer in all_hosts)
    (root / "etc/hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {host.name}\n{peers}")
    (root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(authorized_key)
    (ssh_dir / "authorized_keys").chmod(0o600)
    host_key = root / "etc/ssh/ssh_host_ed25519_key"
    run_command(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{host.name}", "-f", str(host_key)])


def ssh_banner_received(address: str, port: int, timeout: float = 1.0) -> bool:
    """Whether address:port answers with an SSH banner (check the route before calling this)."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            return connection.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def teardown(state: TestbedState, processes: Sequence[subprocess.Popen] = ()) -> list[str]:
    """Undo everything recorded in state; return the problems met (every step is tried regardless)."""
    errors: list[str] = []
    stop_containers(state.bridge, state.pids, processes, errors)
    for cgroup in state.cgroups:
        remove_cgroup(Path(cgroup), errors)
    for mount in reversed(state.mounts):
        unmount(Path(mount), errors)
    for veth in state.veths:
        _try(["ip", "link", "del", veth], errors, still_there=lambda name=veth: link_exists(name))
    for netns in state.netns:
        _try(["ip", "netns", "del", netns], errors, still_there=lambda name=netns: _netns_exists(name))
    _try(["ip", "link", "del", state.bridge], errors, still_there=lambda: link_exists(state.bridge))
    if state.workdir and not any(_is_mounted(Path(mount)) for mount in state.mounts):
        shutil.rmtree(state.workdir, ignore_errors=True)
    if not errors:
        state.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            STATE_DIR.rmdir()  # only once no other test bed is recorded there
    return errors


def _try(argv: list[str], errors: list[str], still_there: Callable[[], bool]) -> None:
    """Delete something that is still there, recording a failure unless it vanished meanwhile."""
    if not still_there():
        return
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if result.returncode != 0 and still_there():
        errors.append(f"{' '.join(argv)}: {result.stderr.strip()}")


def _netns_exists(name: str) -> bool:
    """Whether a named network namespace exists."""
    return Path("/run/netns", name).exists()


def stop_containers(bridge: str, pids: Sequence[int], processes: Sequence[subprocess.Popen], errors: list[str]) -> None:
    """SIGTERM every nspawn (clean poweroff), then SIGKILL what is left after STOP_TIMEOUT_S."""
    alive = [pid for pid in pids if _is_our_nspawn(pid, bridge)]
    for pid in alive:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while alive and time.monotonic() < deadline:
        _reap(processes)
        alive = [pid for pid in alive if _is_our_nspawn(pid, bridge)]
        time.sleep(0.05)
    for pid in alive:
        for child in _children(pid):
            _signal(child, signal.SIGKILL)
        _signal(pid, signal.SIGKILL)
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    still = [pid for pid in pids if _is_our_nspawn(pid, bridge)]
    if still:
        errors.append(f"systemd-nspawn still running: {still}")


def _reap(processes: Sequence[subprocess.Popen]) -> None:
    """Collect exited child processes so their PIDs stop showing as alive."""
    for process in processes:
        process.poll()


def live_cmdline(pid: int) -> bytes | None:
    """The NUL-separated command line of pid, or None when it is gone or a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return None if state == "Z" else cmdline


def _is_our_nspawn(pid: int, bridge: str) -> bool:
    """Whether pid is a live systemd-nspawn of this test bed (not a zombie or a reused PID)."""
    cmdline = live_cmdline(pid)
    our_netns = f"--network-namespace-path=/run/netns/{bridge}-h".encode()
    return cmdline is not None and b"systemd-nspawn" in cmdline and our_netns in cmdline


def _children(pid: int) -> list[int]:
    """Direct children of pid (the container's init, for nspawn)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            children += [int(child) for child in task.read_text().split()]
    return children


def _signal(pid: int, signum: int) -> None:
    """Send a signal to one PID, ignoring a process that is already gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _is_mounted(path: Path) -> bool:
    """Whether path is a mount point in /proc/self/mounts."""
    target = str(path)
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


def unmount(path: Path, errors: list[str], attempts: int = 20) -> None:
    """Unmount path, retrying briefly while busy, then lazily as a last resort."""
    for _ in range(attempts):
        if not _is_mounted(path):
            return
        subprocess.run(["umount", str(path)], capture_output=True, timeout=30)
        time.sleep(0.05)
    _try(["umount", "-l", str(path)], errors, still_there=lambda: _is_mounted(path))


def reap_orphans() -> list[str]:
    """Tear down test beds recorded under /run whose owning process is gone; return their problems."""
    problems: list[str] = []
    for path in sorted(STATE_DIR.glob(f"{NAME_PREFIX}*.json")):
        state = TestbedState.load(path)
        if procs.alive(state.owner_pid):
            continue
        problems += teardown(state)
    return problems
