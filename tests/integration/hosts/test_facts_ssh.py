"""Facts read from a real remote host over SSH (paramiko, one round trip), with host keys verified: an unknown key
is refused and shown with its fingerprint, accepted only when the user passes that exact fingerprint."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.hosts.affordml_project import run_affordml

pytestmark = pytest.mark.testbed

FINGERPRINT = re.compile(r"unknown: (SHA256:[A-Za-z0-9+/]+)")


def expected_fingerprint(known_hosts: Path, address: str) -> str:
    """The fingerprint of the host key the test bed generated, as ssh-keygen prints it."""
    line = next(line for line in known_hosts.read_text().splitlines() if line.split()[0].split(",")[0] == address)
    listed = subprocess.run(["ssh-keygen", "-lf", "-"], input=line, capture_output=True, text=True, check=True)
    return listed.stdout.split()[1]


def test_facts_over_ssh_verify_the_host_key(testbed_factory, tmp_path: Path) -> None:
    bed = testbed_factory(1)
    host = bed.hosts[0]
    project = tmp_path / "project"
    project.mkdir()
    config = {
        "hosts": [
            {"name": "main", "address": "local"},
            {"name": host.name, "address": host.address, "user": "root", "ssh_key": str(bed.key_path)},
        ]
    }
    (project / "affordml.yaml").write_text(yaml.safe_dump(config))

    refused = run_affordml(project, bed, "facts", "--host", host.name, "--json", timeout=120)
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    shown = FINGERPRINT.search(refused.stderr).group(1)
    assert shown == expected_fingerprint(bed.known_hosts, host.address)
    assert "--accept-host-key" in refused.stderr and not (project / "known_hosts").exists()

    wrong = run_affordml(project, bed, "facts", "--host", host.name, "--accept-host-key", "SHA256:" + "A" * 43)
    assert wrong.returncode != 0 and "unknown" in wrong.stderr

    accepted = run_affordml(project, bed, "facts", "--host", host.name, "--accept-host-key", shown, "--json")
    assert accepted.returncode == 0, accepted.stderr
    facts = json.loads(accepted.stdout)
    assert facts["hostname"] == host.name and facts["source"].startswith(f"ssh://root@{host.address}")
    assert facts["os"]["id"] == "debian" and facts["is_root"] is True
    assert host.address in (project / "known_hosts").read_text()

    again = run_affordml(project, bed, "facts", "--host", host.name, "--save", str(tmp_path / "node.json"))
    assert again.returncode == 0, again.stderr  # the key is known now
    plan = run_affordml(project, bed, "doctor", "--facts", str(tmp_path / "node.json"), "--json")
    checks = {c["name"]: c["status"] for c in json.loads(plan.stdout)["checks"]}
    assert checks["bare-metal"] == "fail"  # a container is no PC to build on, and the doctor says so
