"""The openstack phase as far as it runs without the internet: kolla-ansible's toolchain here (from PyPI,
cached), kolla-genpwd filling the project's passwords, the kolla inventory made from kolla's all-in-one,
the configuration in place on a real test host, and kolla's own playbooks syntax-checked with it.
Pulling images and deploying (affordml_kolla_deploy) need the internet and a real PC: skipped, and said so."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from affordml.config.model import Host
from affordml.render.kolla_inventory import kolla_inventory
from affordml.run import toolchains
from affordml.secrets import kolla_share
from affordml.versions import load_lock
from tests.integration.hosts.affordml_project import DESKTOP_FACTS, changed_count, run_affordml, write_project

ALL_IN_ONE_SAMPLE = """\
[control]
localhost       ansible_connection=local

[compute]
localhost       ansible_connection=local

[deployment]
localhost       ansible_connection=local

[common:children]
control
compute
"""


def test_kolla_inventory_points_base_groups_at_our_hosts() -> None:
    hosts = [Host(name="pc1", address="10.0.0.5"), Host(name="pc2", address="10.0.0.6", user="ops", port=2222)]
    text = kolla_inventory(ALL_IN_ONE_SAMPLE, hosts)
    assert "localhost" not in text
    sections = {}
    current = None
    for line in text.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
        elif current and line.strip() and not line.startswith("#"):
            sections[current].append(line.split()[0])
    assert sections == {
        "control": ["pc1"],
        "compute": ["pc1", "pc2"],
        "deployment": ["pc1"],
        "common:children": ["control", "compute"],
    }
    assert "pc1 ansible_connection=local" in text
    assert "pc2 ansible_host=10.0.0.6 ansible_user=ops ansible_port=2222 ansible_become=true" in text


@pytest.fixture(scope="module")
def kolla_bin() -> Path:
    """kolla-ansible's toolchain, built once from PyPI into the toolchain cache (a few minutes when cold)."""
    toolchain = toolchains.kolla_toolchain(load_lock())
    started = time.monotonic()
    try:
        path = toolchains.ensure(toolchain, print)
    except Exception as error:  # no PyPI here: nothing else in this module can run
        pytest.skip(f"kolla-ansible toolchain unavailable: {error}")
    print(f"kolla-ansible toolchain ready in {time.monotonic() - started:.1f} s at {path}")
    return path


def sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def inventory_groups(kolla_bin: Path, inventory: Path) -> dict:
    listed = subprocess.run(
        [str(kolla_bin / "ansible-inventory"), "-i", str(inventory), "--list"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    data = json.loads(listed.stdout)
    return {name: value for name, value in data.items() if name != "_meta"}


def syntax_check(kolla_bin: Path, project: Path, playbook: str) -> subprocess.CompletedProcess[str]:
    share = kolla_share(kolla_bin) / "ansible"
    return subprocess.run(
        [
            str(kolla_bin / "ansible-playbook"),
            "--syntax-check",
            "-i",
            str(project / "env" / "kolla" / "inventory.ini"),
            "-e",
            f"@{project / 'env' / 'kolla' / 'globals.yml'}",
            "-e",
            f"@{project / 'secrets' / 'kolla-passwords.yml'}",
            "-e",
            "CONFIG_DIR=/etc/kolla",
            "-e",
            "kolla_action=deploy",
            str(share / playbook),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=project,
    )


@pytest.mark.testbed
@pytest.mark.slow
def test_openstack_phase_puts_kolla_in_place_and_kolla_playbooks_accept_it(
    testbed_factory, kolla_bin: Path, tmp_path: Path
) -> None:
    bed = testbed_factory(1)
    host = bed.hosts[0]
    project = write_project(tmp_path / "project", bed)

    started = time.monotonic()
    first = run_affordml(project, bed, "init", "--facts", str(DESKTOP_FACTS), "phase", "openstack")
    first_s = time.monotonic() - started
    assert first.returncode == 0, (first.stdout + first.stderr)[-6000:]

    # kolla-genpwd filled every password into the project's secrets, privately.
    passwords_file = project / "secrets" / "kolla-passwords.yml"
    assert stat.S_IMODE(passwords_file.stat().st_mode) == 0o600
    passwords = yaml.safe_load(passwords_file.read_text())
    assert passwords["keystone_admin_password"] and passwords["database_password"]
    empty = {key for key, value in passwords.items() if value in (None, "")}
    assert empty <= {"docker_registry_password"}  # kolla-genpwd leaves the registry's password to the user

    # kolla's inventory has every group of kolla's all-in-one, with our host in the base groups.
    inventory = project / "env" / "kolla" / "inventory.ini"
    ours = inventory_groups(kolla_bin, inventory)
    theirs = inventory_groups(kolla_bin, kolla_share(kolla_bin) / "ansible" / "inventory" / "all-in-one")
    assert set(ours) == set(theirs)
    assert ours["control"]["hosts"] == [host.name] and ours["compute"]["hosts"] == [host.name]

    # The configuration is in place on the test host, passwords 0600.
    env_kolla = project / "env" / "kolla"
    on_host = host.ssh(
        "sha256sum /etc/kolla/globals.yml /etc/kolla/inventory.ini /etc/kolla/passwords.yml "
        "/etc/kolla/config/nova/nova-compute.conf; stat -c %a /etc/kolla/passwords.yml"
    ).stdout.split()
    assert on_host[0] == sha256((env_kolla / "globals.yml").read_text())
    assert on_host[2] == sha256(inventory.read_text())
    assert on_host[4] == sha256(passwords_file.read_bytes())
    assert on_host[6] == sha256((env_kolla / "config" / "nova" / "nova-compute.conf").read_text())
    assert on_host[8] == "600"
    assert "device_spec" in host.ssh("cat /etc/kolla/config/nova/nova-compute.conf").stdout

    # What needs the internet was skipped, and the run says so.
    stdout = next(project.glob("runs/*-openstack/artifacts/*/stdout")).read_text()
    assert "skipped on node1: kolla-ansible prechecks, pull, deploy, post-deploy" in " ".join(stdout.split())
    assert "need the internet (affordml_online is false)" in " ".join(stdout.split())
    assert "kolla-ansible" not in host.ssh("ls /opt/affordml 2>/dev/null || true").stdout

    # kolla's own playbooks accept our inventory, globals and passwords.
    for playbook in ("site.yml", "post-deploy.yml"):
        checked = syntax_check(kolla_bin, project, playbook)
        assert checked.returncode == 0, (checked.stdout + checked.stderr)[-4000:]

    started = time.monotonic()
    second = run_affordml(project, bed, "init", "--facts", str(DESKTOP_FACTS), "phase", "openstack")
    second_s = time.monotonic() - started
    assert second.returncode == 0, (second.stdout + second.stderr)[-6000:]
    changed = changed_count(second.stdout + second.stderr)
    print(f"init phase openstack on 1 host: first run {first_s:.1f} s, second {second_s:.1f} s, changed {changed}")
    assert changed == 0
    assert yaml.safe_load(passwords_file.read_text()) == passwords  # kolla-genpwd never replaces a value

    # After kolla's post-deploy (simulated: its clouds.yaml on the host), the admin cloud reaches the project's
    # secrets/clouds.yaml as affordml-admin, beside the entry the cloud phase keeps there.
    kolla_admin = {
        "auth": {
            "auth_url": "http://192.0.2.1:5000",
            "username": "admin",
            "password": "s3cret",
            "project_name": "admin",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": "RegionOne",
    }
    host.ssh(f"cat > /etc/kolla/clouds.yaml <<'EOF'\n{yaml.safe_dump({'clouds': {'kolla-admin': kolla_admin}})}EOF")
    clouds_file = project / "secrets" / "clouds.yaml"
    clouds_file.write_text(yaml.safe_dump({"clouds": {"affordml": {"auth": {"username": "affordml"}}}}))
    clouds_file.chmod(0o600)
    third = run_affordml(project, bed, "init", "--facts", str(DESKTOP_FACTS), "phase", "openstack")
    assert third.returncode == 0, (third.stdout + third.stderr)[-6000:]
    assert "s3cret" not in third.stdout + third.stderr
    newest_run = sorted(project.glob("runs/*-openstack/artifacts/*"))[-1]
    assert "s3cret" not in (newest_run / "stdout").read_text()
    assert not any("s3cret" in path.read_text() for path in (newest_run / "job_events").glob("*.json"))
    clouds = yaml.safe_load(clouds_file.read_text())["clouds"]
    assert clouds == {"affordml": {"auth": {"username": "affordml"}}, "affordml-admin": kolla_admin}
    assert stat.S_IMODE(clouds_file.stat().st_mode) == 0o600
    assert host.ssh("stat -c %a /etc/kolla/clouds.yaml").stdout.strip() == "600"
