"""Payloads in every free-text value, through the real `affordml init phase host` on a real test host, in check
mode and for real: nothing runs.

The project folder's own path, the SSH key's path (a real key, copied there: the run only connects if the path
reaches ssh intact), cloud.external_network and cloud.guest_image hold Jinja and shell payloads, and so does every
free-text field of the facts file (GPU, CPU and OS names, hostname, kernel, driver, disks...). Each payload would
touch a marker file if Ansible templated it or a shell ran it; no marker appears on the controller or on the host.
Shaped fields (address, user, interface, PCI ids) refuse payloads: tests/unit/test_values_inert.py and
tests/cli/test_hostile_values.py."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.hostile import FACTS_FIELDS, hostile_snapshot, payloads
from tests.integration.hosts.affordml_project import TEST_SWITCHES, run_affordml
from tests.testbed.nspawn import Testbed

pytestmark = [pytest.mark.testbed, pytest.mark.slow]


def hostile_project(tmp_path: Path, bed: Testbed, values: dict[str, str]) -> Path:
    """A project folder and key path that carry payloads, with a config whose free-text fields carry more."""
    root = tmp_path / f"proj {values['jinja']} {values['backticks']}"
    root.mkdir(parents=True)
    key = tmp_path / f"keys {values['jinja']} {values['subshell']} {values['semicolon']}" / "id"
    key.parent.mkdir(parents=True)
    shutil.copy(bed.key_path, key)
    key.chmod(0o600)
    host = bed.hosts[0]
    config = {
        "hosts": [{"name": host.name, "address": host.address, "user": "root", "port": host.port, "ssh_key": str(key)}],
        "cloud": {"external_network": values["jinja-stmt"], "guest_image": values["subshell"]},
    }
    (root / "affordml.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (root / "extra-vars.yml").write_text(yaml.safe_dump(bed.ssh_vars() | TEST_SWITCHES, sort_keys=False))
    return root


def hostile_facts(tmp_path: Path, values: dict[str, str]) -> Path:
    kinds = sorted(values)
    free = [f for f in FACTS_FIELDS if f.free_text]
    snap = hostile_snapshot(free, lambda f: values[kinds[free.index(f) % len(kinds)]])
    path = tmp_path / "hostile-facts.json"
    path.write_text(json.dumps(snap))
    return path


def markers(bed: Testbed, marker: str) -> tuple[list[str], list[str]]:
    here = sorted(str(p) for p in Path(marker).parent.glob(Path(marker).name + "*"))
    there = bed.hosts[0].ssh(f"ls -d {marker}* 2>/dev/null || true").stdout.split()
    return here, there


def test_payloads_stay_inert_through_the_host_phase(testbed_factory, tmp_path: Path) -> None:
    bed = testbed_factory(1)
    marker = f"/tmp/affordml-inject-{uuid.uuid4().hex[:10]}"
    values = payloads(marker)
    project = hostile_project(tmp_path, bed, values)
    facts = hostile_facts(tmp_path, values)

    started = time.monotonic()
    dry = run_affordml(project, bed, "init", "--dry-run", "--facts", str(facts), "phase", "host")
    dry_s = time.monotonic() - started
    assert dry.returncode == 0, (dry.stdout + dry.stderr)[-6000:]
    assert markers(bed, marker) == ([], [])

    rendered = (project / "env" / "inventory" / "hosts.yml").read_text()
    assert "lookup('pipe'" in rendered and "!unsafe" in rendered  # the key path reached Ansible, as data
    assert "touch" in (project / "env" / "ml" / "jupyterhub-values.yaml").read_text()  # the GPU name too

    started = time.monotonic()
    real = run_affordml(project, bed, "init", "--facts", str(facts), "phase", "host")
    real_s = time.monotonic() - started
    output = real.stdout + real.stderr
    assert real.returncode == 0, output[-6000:]
    assert "[host] done" in output
    assert bed.hosts[0].ssh("test -f /etc/modprobe.d/affordml-vfio.conf", check=False).returncode == 0
    assert markers(bed, marker) == ([], [])
    print(f"hostile host phase: check mode {dry_s:.1f} s, real run {real_s:.1f} s, markers: none")
