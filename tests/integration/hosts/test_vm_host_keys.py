"""The kubernetes phase's strict SSH against a real sshd: a test host given the host key the cloud phase generated
(as cloud-init would install it from the user data) is trusted through the project's known_hosts, by paramiko
(affordml.kube.remote) and by OpenSSH with Kubespray's options; another key, or none recorded, fails in one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from affordml.cloud.hostkeys import generate_host_key, record_known_host
from affordml.errors import RunError
from affordml.kube import remote
from affordml.kube.access import NodeAccess
from affordml.kube.inventory import ssh_common_args
from affordml.project import Project
from tests.testbed import netsafety

pytestmark = pytest.mark.testbed


def install_host_key(host, key) -> None:
    """Put the pair where cc_ssh writes it, then let sshd load it (the bed's own key is still trusted for this)."""
    ssh_dir = host.root / "etc/ssh"
    (ssh_dir / "ssh_host_ed25519_key").write_text(key.private)
    (ssh_dir / "ssh_host_ed25519_key").chmod(0o600)
    (ssh_dir / "ssh_host_ed25519_key.pub").write_text(key.public + "\n")
    host.ssh("systemctl reload ssh || systemctl reload sshd")
    wait_until_served(host, key.public)


def wait_until_served(host, public_key: str) -> None:
    """A reload only signals sshd, which then re-executes: until the new process listens, connections are refused
    (seen in CI under load). Wait until the host offers the new key, checking the route before every try."""
    key_body = public_key.split()[1]

    def attempt() -> bool | None:
        scan = subprocess.run(
            ["ssh-keyscan", "-T", "2", "-t", "ed25519", host.address], capture_output=True, text=True, timeout=10
        )
        return True if key_body in scan.stdout else None

    netsafety.guarded_retry(attempt, host.check_route, max_attempts=150, deadline_s=60, what="sshd's new host key")


def openssh(host, bed, known_hosts: Path) -> subprocess.CompletedProcess[str]:
    host.check_route()
    argv = ["ssh", *ssh_common_args(known_hosts).split(), "-o", "BatchMode=yes", "-i", str(bed.key_path)]
    return subprocess.run([*argv, f"root@{host.address}", "hostname"], capture_output=True, text=True, timeout=60)


def test_recorded_host_key_is_trusted_another_is_refused(testbed_factory, tmp_path: Path) -> None:
    bed = testbed_factory(1)
    host = bed.hosts[0]
    project = Project(tmp_path / "project")
    project.root.mkdir(mode=0o700)
    node = NodeAccess("worker-1", "worker", host.address, "root", bed.key_path, project.known_hosts)
    ours, other = generate_host_key(), generate_host_key()
    install_host_key(host, ours)

    host.check_route()
    with pytest.raises(RunError) as unknown:
        remote.run(node, "hostname")  # nothing recorded yet: no trust on first use
    assert "not found in known_hosts" in unknown.value.one_line() and "\n" not in unknown.value.one_line()

    assert record_known_host(project, "worker-1", [host.address, "10.42.0.11"], ours.public) == "added"
    host.check_route()
    assert remote.run(node, "hostname").stdout.strip() == host.name
    shown = openssh(host, bed, project.known_hosts)
    assert (shown.returncode, shown.stdout.strip()) == (0, host.name), shown.stderr

    assert record_known_host(project, "worker-1", [host.address, "10.42.0.11"], other.public) == "replaced"
    assert ours.public not in project.known_hosts.read_text()
    host.check_route()
    with pytest.raises(RunError) as mismatch:
        remote.run(node, "hostname")
    line = mismatch.value.one_line()
    print(f"\n[host keys] {line}")
    assert "presented a host key that does not match" in line and "\n" not in line
    refused = openssh(host, bed, project.known_hosts)
    assert refused.returncode == 255 and "HOST IDENTIFICATION HAS CHANGED" in refused.stderr
