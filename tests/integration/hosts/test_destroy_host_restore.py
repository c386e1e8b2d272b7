"""`affordml destroy --only host` on a real test host: every file the host role writes or edits, the folders it
creates, ufw's state and the iptables FORWARD policy are back to what they were before `init phase host`.

Before deploy the host gets what a used PC has: its own /etc/docker/daemon.json, the stock 127.0.1.1 line in
/etc/hosts, and a FORWARD policy DROP left by an earlier docker (its DOCKER chain). The test prints the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.hosts.affordml_project import DESKTOP_FACTS, run_affordml, write_project
from tests.testbed.nspawn import Testbed

pytestmark = [pytest.mark.testbed, pytest.mark.slow]

FILES = [
    "/etc/hosts",
    "/etc/docker/daemon.json",
    "/etc/initramfs-tools/modules",
    "/etc/default/grub.d/60-affordml.cfg",
    "/etc/modprobe.d/affordml-vfio.conf",
    "/etc/udev/rules.d/05-affordml-vfio.rules",
    "/etc/modprobe.d/affordml-blacklist-nouveau.conf",
    "/etc/modules-load.d/affordml-vfio.conf",
    "/etc/sysctl.d/60-affordml.conf",
    "/etc/NetworkManager/conf.d/90-affordml-unmanaged.conf",
    "/etc/systemd/system/affordml-external-veth.service",
    "/usr/local/sbin/affordml-external-veth",
    "/etc/systemd/system/affordml-external-nat.service",
    "/etc/affordml/external-nat.nft",
]
FOLDERS = ["/etc/docker", "/etc/default/grub.d", "/etc/NetworkManager/conf.d", "/etc/affordml"]
OWN_DAEMON_JSON = '{\n  "data-root": "/srv/docker-of-the-user"\n}\n'


def used_pc(host, firewall: bool = False) -> None:
    host.ssh(f"mkdir -p /etc/docker && printf '%s' '{OWN_DAEMON_JSON}' > /etc/docker/daemon.json")
    host.ssh("grep -q '^127.0.1.1' /etc/hosts || echo \"127.0.1.1 $(hostname)\" >> /etc/hosts")
    host.ssh("iptables -N DOCKER 2>/dev/null; iptables -P FORWARD DROP")
    if firewall:  # ufw on, with ssh let in (the test host's only way in)
        host.ssh("ufw allow 22/tcp >/dev/null && ufw --force enable >/dev/null")


def snapshot(host) -> dict[str, str]:
    """Path -> sha256 and mode (or 'absent'); folders; ufw; FORWARD policy; the live veth and nft table."""
    seen = {}
    for path in FILES:
        out = host.ssh(f"test -f {path} && echo $(sha256sum < {path} | cut -c1-12) $(stat -c %a {path})", check=False)
        seen[path] = out.stdout.strip() or "absent"
    for path in FOLDERS:
        seen[path + "/"] = "present" if host.ssh(f"test -d {path}", check=False).returncode == 0 else "absent"
    ufw = host.ssh("ufw status", check=False).stdout.splitlines()
    seen["ufw"] = ufw[0] if ufw else "?"
    forward = [x for x in host.ssh("iptables -S FORWARD", check=False).stdout.splitlines() if x.startswith("-P")]
    seen["iptables FORWARD policy"] = forward[0] if forward else "?"
    link = host.ssh("ip link show affordml-ext1", check=False).returncode == 0
    seen["link affordml-ext1"] = "up" if link else "absent"
    nat = host.ssh("nft list table ip affordml", check=False).returncode == 0
    seen["nft table ip affordml"] = "loaded" if nat else "absent"
    return seen


def test_destroy_puts_the_host_back_as_it_was(testbed_factory, tmp_path: Path) -> None:
    bed: Testbed = testbed_factory(1)
    host = bed.hosts[0]
    used_pc(host, firewall=True)
    project = write_project(tmp_path / "project", bed)
    before = snapshot(host)
    assert before["ufw"] == "Status: active", before["ufw"]

    deployed = run_affordml(project, bed, "init", "--facts", str(DESKTOP_FACTS), "phase", "host")
    assert deployed.returncode == 0, (deployed.stdout + deployed.stderr)[-6000:]
    during = snapshot(host)
    destroyed = run_affordml(project, bed, "destroy", "--only", "host", "--yes-i-really-really-mean-it")
    output = destroyed.stdout + destroyed.stderr
    assert destroyed.returncode == 0, output[-6000:]
    after = snapshot(host)

    width = max(map(len, before))
    print(f"\n{'what':{width}}  {'before deploy':24}  {'after deploy':24}  after destroy")
    for key in before:
        print(f"{key:{width}}  {before[key]:24}  {during[key]:24}  {after[key]}")
    changed = [k for k in before if before[k] != during[k]]
    restored = sum(after[k] == before[k] for k in changed)
    print(f"deploy changed {len(changed)} of {len(before)} rows; destroy restored {restored} of them")
    assert len(changed) >= 12, changed  # deploy did change the host: the comparison is not empty
    assert after == before
    assert "[host] destroyed" in output
    assert host.ssh("test -d /var/lib/affordml/originals", check=False).returncode != 0
    state = (project / "state.json").read_text()
    assert '"host"' not in state.split('"data"')[0]  # the host phase is forgotten: init runs it again


def test_destroy_keeps_a_shared_file_changed_after_deploy(testbed_factory, tmp_path: Path) -> None:
    """The user (or a package) edited /etc/hosts and daemon.json after deploy: destroy keeps their edits, takes
    only affordml's block out of /etc/hosts, and puts each original beside as <file>.before-affordml."""
    bed: Testbed = testbed_factory(1)
    host = bed.hosts[0]
    used_pc(host)
    project = write_project(tmp_path / "project", bed)
    original_hosts = host.ssh("cat /etc/hosts").stdout

    deployed = run_affordml(project, bed, "init", "--facts", str(DESKTOP_FACTS), "phase", "host")
    assert deployed.returncode == 0, (deployed.stdout + deployed.stderr)[-6000:]
    assert "# BEGIN affordml: platform hosts" in host.ssh("cat /etc/hosts").stdout
    host.ssh("echo '10.9.9.9 printer' >> /etc/hosts")
    host.ssh("""printf '{"debug": true}\\n' > /etc/docker/daemon.json""")

    destroyed = run_affordml(project, bed, "destroy", "--only", "host", "--yes-i-really-really-mean-it")
    output = destroyed.stdout + destroyed.stderr
    assert destroyed.returncode == 0, output[-6000:]
    hosts = host.ssh("cat /etc/hosts").stdout
    assert "10.9.9.9 printer" in hosts and "affordml" not in hosts
    assert host.ssh("cat /etc/hosts.before-affordml").stdout == original_hosts
    assert host.ssh("cat /etc/docker/daemon.json").stdout == '{"debug": true}\n'
    assert host.ssh("cat /etc/docker/daemon.json.before-affordml").stdout == OWN_DAEMON_JSON
    assert host.ssh("test -e /etc/default/grub.d/60-affordml.cfg", check=False).returncode != 0


def test_destroy_after_a_deploy_by_an_older_affordml(testbed_factory, tmp_path: Path) -> None:
    """A host an older affordml deployed (no record) and this one deployed again: the record then sees affordml's
    own files, which must not count as the host's; destroy removes them and affordml's blocks."""
    bed: Testbed = testbed_factory(1)
    host = bed.hosts[0]
    project = write_project(tmp_path / "project", bed)
    for older in (True, False):  # the first deploy plays the older affordml: its record is taken away
        deployed = run_affordml(project, bed, "init", "--facts", str(DESKTOP_FACTS), "phase", "host")
        assert deployed.returncode == 0, (deployed.stdout + deployed.stderr)[-6000:]
        if older:
            host.ssh("rm -r /var/lib/affordml/originals")
    record = json.loads(host.ssh("cat /var/lib/affordml/originals/manifest.json").stdout)
    assert record["files"]["/etc/default/grub.d/60-affordml.cfg"] is False  # affordml's own, not the host's
    destroyed = run_affordml(project, bed, "destroy", "--only", "host", "--yes-i-really-really-mean-it")
    assert destroyed.returncode == 0, (destroyed.stdout + destroyed.stderr)[-6000:]
    after = snapshot(host)
    own = [p for p in FILES if "affordml" in p]
    assert {p: after[p] for p in own} == dict.fromkeys(own, "absent")
    assert "affordml" not in host.ssh("cat /etc/hosts /etc/initramfs-tools/modules").stdout
    assert after["/etc/affordml/"] == "absent" and after["link affordml-ext1"] == "absent"
