"""`affordml upgrade` and `affordml backup` on real test hosts, for what runs here.

1. A platform whose state says it was installed with the previous lock (tests/fixtures/locks/2026.05.yaml):
   the openstack phase ran for real first, then the state is set back to the previous lock and kolla's
   passwords lose a key (as an older kolla-ansible's passwords.yml would). `affordml upgrade` takes the backup
   (project files for real; the openstack phase's action "backup" on the host, which skips kolla's
   mariadb-backup without a deployed OpenStack and says so), runs kolla-mergepwd with the new kolla-ansible,
   then the openstack phase's action "upgrade" on the host (kolla steps skipped offline), passes over the hops
   of phases that never ran, and records the new lock. A second run has nothing to do.
2. The etcd snapshot step over real SSH with a real etcd and etcdctl on a test host (Kubespray's etcdctl.sh
   wrapper stands in with plain HTTP on the host's loopback; the real one adds the cluster's certificates).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from affordml.kube.access import NodeAccess
from affordml.lifecycle.etcd import ETCDCTL, take_snapshot
from affordml.lifecycle.rules import lock_summary
from tests.integration.hosts.affordml_project import DESKTOP_FACTS, run_affordml, write_project

PREVIOUS = Path(__file__).resolve().parents[2] / "fixtures" / "locks" / "2026.05.yaml"


@pytest.mark.testbed
@pytest.mark.slow
def test_upgrade_from_the_previous_lock_on_a_test_host(testbed_factory, tmp_path: Path) -> None:
    bed = testbed_factory(1)
    project = write_project(tmp_path / "project", bed)
    first = run_affordml(project, bed, "init", "--facts", str(DESKTOP_FACTS), "phase", "openstack")
    if "kolla-ansible toolchain" in first.stderr and first.returncode != 0:
        pytest.skip(f"kolla-ansible toolchain unavailable: {first.stderr[-300:]}")
    assert first.returncode == 0, (first.stdout + first.stderr)[-6000:]

    # As the previous affordml left it: its lock in the state, a password key that kolla-ansible 21 lacked.
    state = json.loads((project / "state.json").read_text())
    state["data"]["lock"] = lock_summary(yaml.safe_load(PREVIOUS.read_text()))
    (project / "state.json").write_text(json.dumps(state))
    passwords_file = project / "secrets" / "kolla-passwords.yml"
    passwords = yaml.safe_load(passwords_file.read_text())
    dropped = "keystone_admin_password"
    kept = {k: v for k, v in passwords.items() if k != dropped}
    passwords_file.write_text(yaml.safe_dump(kept))

    planned = run_affordml(project, bed, "upgrade", "--plan")
    assert planned.returncode == 0, planned.stderr
    print(planned.stdout)

    started = time.monotonic()
    done = run_affordml(project, bed, "upgrade", "--facts", str(DESKTOP_FACTS), "--yes-i-really-really-mean-it")
    took = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    words = " ".join(output.split())
    print(f"upgrade 2026.05 -> 2026.11 on 1 test host: {took:.1f} s")

    # The backup came first: config, state (still the previous lock) and secrets, 0600, with its manifest.
    (backup,) = (project / "backups").iterdir()
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["lock"]["name"] == "2026.05"
    saved = {Path(i["path"]).name for i in manifest["items"]}
    assert {"affordml.yaml", "state.json", "kolla-passwords.yml"} <= saved
    assert yaml.safe_load((backup / "project" / "secrets" / "kolla-passwords.yml").read_text()) == kept
    assert all(stat.S_IMODE((project / i["path"]).stat().st_mode) == 0o600 for i in manifest["items"])
    assert "openstack" in manifest["skipped"] and "kubernetes" in manifest["skipped"]
    backup_run = sorted(project.glob("runs/*-openstack/artifacts/*/stdout"))
    assert any("skipped on node1: kolla-ansible mariadb-backup" in " ".join(p.read_text().split()) for p in backup_run)

    # kolla-mergepwd gave back the missing key and kept every other value.
    merged = yaml.safe_load(passwords_file.read_text())
    assert merged[dropped] and all(merged[k] == v for k, v in kept.items())
    assert stat.S_IMODE(passwords_file.stat().st_mode) == 0o600

    # The openstack phase ran its upgrade action on the host; the other hops had no phase to upgrade.
    newest = sorted(project.glob("runs/*-openstack/artifacts/*/stdout"))[-1].read_text()
    assert "skipped on node1: kolla-ansible prechecks, pull, upgrade, post-deploy" in " ".join(newest.split())
    assert "hop 2/4 (kubernetes): the kubernetes phase never ran here" in words
    assert "the platform runs lock 2026.11 now" in words
    on_host = bed.hosts[0].ssh("grep -c enable_mariabackup /etc/kolla/globals.yml").stdout.strip()
    assert on_host == "1"

    state = json.loads((project / "state.json").read_text())
    assert state["data"]["lock"]["name"] == "2026.11"
    assert state["data"]["upgrade"]["status"] == "done" and state["data"]["upgrade"]["done"] == 4
    status = run_affordml(project, bed, "status", "--offline")
    assert "upgrade: 2026.05 -> 2026.11: 4/4 hop(s) done, done" in " ".join(status.stdout.split())

    again = run_affordml(project, bed, "upgrade", "--facts", str(DESKTOP_FACTS), "--yes-i-really-really-mean-it")
    assert again.returncode == 0 and "already runs lock 2026.11" in again.stdout


def engine(variable: str) -> Path:
    value = os.environ.get(variable)
    if not value or not Path(value).is_file():
        pytest.skip(f"{variable} names no etcd binary (see /work/coord/realengines.md); the etcd step needs one")
    return Path(value)


def upload(host, local: Path, remote: str) -> None:
    with local.open("rb") as handle:
        subprocess.run(
            ["ssh", *host.ssh_options(), f"root@{host.address}", f"cat > {remote} && chmod 0755 {remote}"],
            stdin=handle,
            check=True,
            timeout=120,
        )


@pytest.mark.testbed
def test_etcd_snapshot_over_ssh_with_real_etcd(testbed_factory, tmp_path: Path) -> None:
    etcd, etcdctl = engine("AFFORDML_ETCD_BIN"), engine("AFFORDML_ETCDCTL_BIN")
    bed = testbed_factory(1)
    host = bed.hosts[0]
    bed.check_routes()
    upload(host, etcd, "/usr/local/bin/etcd")
    upload(host, etcdctl, "/usr/local/bin/etcdctl")
    wrapper = '#!/bin/sh\nexec /usr/local/bin/etcdctl --endpoints=http://127.0.0.1:2379 "$@"\n'
    host.ssh(f"cat > {ETCDCTL} <<'EOF'\n{wrapper}EOF\nchmod 0755 {ETCDCTL}")
    host.ssh(
        "systemd-run --unit affordml-test-etcd /usr/local/bin/etcd --data-dir /var/lib/etcd-test "
        "--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 "
        "--listen-peer-urls http://127.0.0.1:2380"
    )
    for _ in range(60):
        if host.ssh(f"{ETCDCTL} endpoint health", check=False).returncode == 0:
            break
        time.sleep(1)
    for n in range(50):
        host.ssh(f"{ETCDCTL} put /registry/test/key{n} value{n} >/dev/null")

    node = NodeAccess("cp1", "control-plane", host.address, "root", bed.key_path, bed.known_hosts)
    started = time.monotonic()
    data = take_snapshot(node, "etcd-snapshot-test.db")
    took = time.monotonic() - started
    snapshot = tmp_path / "snapshot.db"
    snapshot.write_bytes(data)
    checked = subprocess.run(
        [str(etcdctl), "snapshot", "status", str(snapshot), "-w", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    status = json.loads(checked.stdout)
    print(f"etcd snapshot over SSH: {len(data)} bytes, {status['totalKey']} keys, {took:.1f} s")
    assert status["totalKey"] >= 50
    assert host.ssh("ls /var/backups/affordml").stdout.strip() == ""  # removed on the VM after the copy
