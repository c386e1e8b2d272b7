"""`molecule test` of the host role over real systemd hosts (nspawn test bed): converge, idempotence, verify."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.testbed, pytest.mark.slow]

ROLE_DIR = Path(__file__).resolve().parents[3] / "playbooks" / "roles" / "host"


def test_molecule_test_passes_for_the_host_role(testbed_rootfs: Path) -> None:
    # testbed_rootfs skips where the test bed cannot run, and builds the image before molecule's create step.
    molecule = shutil.which("molecule")
    if molecule is None:
        pytest.skip("molecule is not installed (pip install -e '.[test]')")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env["NO_COLOR"] = "1"
    started = time.monotonic()
    result = subprocess.run([molecule, "test"], cwd=ROLE_DIR, env=env, capture_output=True, text=True, timeout=1200)
    elapsed = time.monotonic() - started
    print(f"molecule test of the host role took {elapsed:.1f} s")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    for step in ("converge", "idempotence", "verify"):
        assert f"[default > {step}] Executed: Successful" in output, output[-6000:]
