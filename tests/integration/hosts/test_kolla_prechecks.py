"""kolla-ansible's own `prechecks`, run with the pinned kolla-ansible against a real test host that affordml's
host and openstack phases prepared, with the configuration affordml rendered for it.

The facts are the desktop fixture's with its NIC moved onto the test host (eth0, the host's address, the test
bridge as router), so the plan, kolla's VIP and /etc/hosts match that host. kolla runs here, over ssh through
the test bed's route guard, exactly as `kolla-ansible prechecks` would on the PC; only the connection differs.
Every precheck task's result is recorded (junit callback of ansible-core) and checked: the run must pass, and
the checks affordml's host role exists for (RabbitMQ's host name resolution, dbus-python, docker's SDK and
version, the VIP not in use, /etc/localtime) must have run, not been skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from affordml.run import toolchains
from affordml.versions import load_lock
from tests.integration.hosts.affordml_project import DESKTOP_FACTS, run_affordml, simulate_reboot, write_project
from tests.testbed.nspawn import TestHost

pytestmark = [pytest.mark.testbed, pytest.mark.slow]

# Precheck tasks that must run and pass on the test host: each is a fault a real PC had (issue 9).
MUST_PASS = {
    "Check if all rabbit hostnames are resolvable",  # getent ahostsv4 <hostname>, judged by the next task
    "Checking dbus-python package",  # python3-dbus
    "Checking docker SDK version",
    "Checking Docker version",  # docker installed and configured
    "Checking if kolla_internal_vip_address and kolla_external_vip_address are not pingable from any node",
    "Checking free port for MariaDB",  # the VIP layout: MariaDB on the host's address, ProxySQL on the VIP
    "Checking host OS release or version",  # Debian 13
    "Ensure /etc/localtime exist",
    "Checking empty passwords in passwords.yml. Run kolla-genpwd if this task fails",
}
# fail tasks that check a condition per item: skipped is their pass (no item met the failure condition).
MUST_NOT_FIRE = {
    "Check if each rabbit hostname resolves uniquely to the proper IP address",  # /etc/hosts 127.0.1.1
    "Checking that nova_libvirt container is not running",
}


# kolla's playbooks use collections (ansible.utils' ipaddr filter among them) that `kolla-ansible install-deps`
# fetches from Ansible Galaxy on a PC. Galaxy is out of reach here; PyPI's `ansible` package bundles the same
# collections. 12.x is the package for the toolchain's ansible-core 2.19 and its versions fall inside kolla's
# requirements-core.yml ranges (checked below).
ANSIBLE_COLLECTIONS_PACKAGE = "ansible==12.3.0"
KOLLA_COLLECTION_RANGES = {  # kolla-ansible 22.2.0 requirements-core.yml: upper bounds (major versions)
    "ansible/netcommon": 9,
    "ansible/posix": 3,
    "ansible/utils": 7,
    "community/crypto": 4,
    "community/general": 12,
    "community/docker": 5,
}


@pytest.fixture(scope="module")
def kolla_bin() -> Path:
    try:
        return toolchains.ensure(toolchains.kolla_toolchain(load_lock()), print)
    except Exception as error:  # no PyPI here
        pytest.skip(f"kolla-ansible toolchain unavailable: {error}")


@pytest.fixture(scope="module")
def kolla_collections(kolla_bin: Path) -> Path:
    """A collections path with what install-deps would install, from PyPI's `ansible` package (cached)."""
    root = toolchains.cache_root() / ("kolla-collections-" + ANSIBLE_COLLECTIONS_PACKAGE.replace("==", "-"))
    if not (root / "ansible_collections").is_dir():
        partial = root.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        pip = [str(kolla_bin / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(partial)]
        done = subprocess.run([*pip, ANSIBLE_COLLECTIONS_PACKAGE], capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"{ANSIBLE_COLLECTIONS_PACKAGE} unavailable from PyPI: {done.stderr.strip()[-300:]}")
        partial.rename(root)
    for name, below in KOLLA_COLLECTION_RANGES.items():
        manifest = json.loads((root / "ansible_collections" / name / "MANIFEST.json").read_text())
        assert int(manifest["collection_info"]["version"].split(".")[0]) < below, (name, manifest)
    return root


def facts_on_test_host(host: TestHost, gateway: str, target: Path) -> Path:
    """The desktop fixture with its cabled NIC (enp5s0, 192.168.1.42/24, router .1) moved onto the test host."""
    text = DESKTOP_FACTS.read_text()
    text = text.replace("enp5s0", "eth0").replace("192.168.1.42", host.address)
    text = text.replace("192.168.1.255", str(host.address).rsplit(".", 1)[0] + ".255")
    text = re.sub(r"192\.168\.1\.1\b", gateway, text)
    assert "192.168.1." not in text
    target.write_text(text)
    return target


def kolla_config_here(project: Path, host: TestHost, bed, workdir: Path) -> tuple[Path, Path]:
    """kolla's config dir (the rendered globals, overrides and passwords) and its inventory, with the test host
    reached over ssh instead of kolla's local connection on the PC."""
    config = workdir / "kolla"
    config.mkdir()
    shutil.copy(project / "env" / "kolla" / "globals.yml", config / "globals.yml")
    shutil.copytree(project / "env" / "kolla" / "config", config / "config")
    passwords = config / "passwords.yml"
    passwords.write_bytes((project / "secrets" / "kolla-passwords.yml").read_bytes())
    passwords.chmod(0o600)
    inventory_dir = workdir / "inventory"
    (inventory_dir / "host_vars").mkdir(parents=True)
    rendered = (project / "env" / "kolla" / "inventory.ini").read_text()
    assert f"{host.name} ansible_connection=local" in rendered
    (inventory_dir / "hosts.ini").write_text(rendered.replace(f"{host.name} ansible_connection=local", host.name))
    connection = {
        "ansible_host": host.address,
        "ansible_port": host.port,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(bed.key_path),
        **bed.ssh_vars(),
    }
    (inventory_dir / "host_vars" / f"{host.name}.yml").write_text(json.dumps(connection))
    return config, inventory_dir / "hosts.ini"


def task_results(junit_dir: Path) -> dict[str, set[str]]:
    """task name (without its role prefix) -> the outcomes it had: passed, skipped, failed."""
    results: dict[str, set[str]] = {}
    for report in junit_dir.glob("*.xml"):
        for case in ET.parse(report).getroot().iter("testcase"):
            # "[host] play: role : task" (ansible-core's junit callback)
            match = re.match(r"^\[[^\]]*\] [^:]*: (?:[^:]+ : )?(.*)$", case.get("name", ""))
            name = match.group(1) if match else case.get("name", "")
            outcome = "passed"
            if case.find("skipped") is not None:
                outcome = "skipped"
            elif case.find("failure") is not None or case.find("error") is not None:
                outcome = "failed"
            results.setdefault(name, set()).add(outcome)
    return results


def test_kolla_prechecks_pass_on_a_host_affordml_prepared(
    testbed_factory, kolla_bin: Path, kolla_collections: Path, tmp_path: Path
) -> None:
    bed = testbed_factory(1)
    host = bed.hosts[0]
    gateway = str(bed.subnet.network_address + 1)
    facts = facts_on_test_host(host, gateway, tmp_path / "facts.json")
    project = write_project(tmp_path / "project", bed)

    # A PC as affordml may find it: ufw active (FORWARD policy DROP; ssh allowed, as on a PC reached over ssh),
    # the host name on 127.0.1.1.
    host.ssh("ufw allow 22/tcp && ufw --force enable && grep -E '^127[.]0[.]1[.]1[[:space:]]' /etc/hosts")
    # the host phase asks for a reboot (IOMMU arguments): after it (simulated), the host phase runs again, sees it
    # happened and clears it; only then may the openstack phase run
    for phase in ("host", "reboot", "host", "openstack"):
        if phase == "reboot":
            simulate_reboot(bed)
            continue
        done = run_affordml(project, bed, "init", "--facts", str(facts), "phase", phase)
        assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]

    assert "Status: inactive" in host.ssh("ufw status").stdout  # turned off, as bootstrap-servers does
    config, inventory = kolla_config_here(project, host, bed, tmp_path)
    junit = tmp_path / "junit"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env |= {
        "PATH": f"{kolla_bin}:{env.get('PATH', '')}",
        "ANSIBLE_CALLBACKS_ENABLED": "junit",
        "JUNIT_OUTPUT_DIR": str(junit),
        "JUNIT_HIDE_TASK_ARGUMENTS": "true",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_COLLECTIONS_PATH": str(kolla_collections),
    }
    # kolla's own images (quay.io/openstack.kolla) are all a PC can pull: affordml passes --use-test-images.
    command = [
        str(kolla_bin / "kolla-ansible"),
        "prechecks",
        "--configdir",
        str(config),
        "-i",
        str(inventory),
        "--use-test-images",
    ]
    bed.check_routes()
    started = time.monotonic()
    run = subprocess.run(command, capture_output=True, text=True, timeout=1200, env=env, cwd=tmp_path)
    elapsed = time.monotonic() - started
    results = task_results(junit)
    passed = sorted(name for name, outcomes in results.items() if outcomes == {"passed"})
    skipped = sorted(name for name, outcomes in results.items() if outcomes == {"skipped"})
    report = tmp_path / "prechecks-report.txt"
    report.write_text("\n".join(["PASSED", *passed, "", "SKIPPED", *skipped]) + "\n")
    print(
        f"kolla-ansible prechecks on {host.name}: rc {run.returncode} in {elapsed:.0f} s; {len(passed)} tasks "
        f"passed, {len(skipped)} skipped (list in {report})"
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-8000:]
    assert not [name for name, outcomes in results.items() if "failed" in outcomes]
    missing = sorted(MUST_PASS - set(passed))
    assert not missing, f"did not run and pass: {missing}"
    assert set(skipped) >= MUST_NOT_FIRE
    resolved = host.ssh(f"getent ahostsv4 {host.name}").stdout.splitlines()
    assert {line.split()[0] for line in resolved if line.strip()} == {host.address}  # what RabbitMQ's check reads
