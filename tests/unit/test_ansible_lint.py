"""ansible-lint (production profile, offline) passes over affordml's own playbooks/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
CONFIG = REPO / ".ansible-lint"


def _ansible_lint() -> str | None:
    beside_python = Path(sys.executable).parent / "ansible-lint"
    return str(beside_python) if beside_python.exists() else shutil.which("ansible-lint")


@pytest.mark.slow
def test_playbooks_pass_ansible_lint_production_profile():
    lint = _ansible_lint()
    if lint is None:
        pytest.skip("ansible-lint is not installed (pip install -e '.[test]')")
    if not any(PLAYBOOKS.rglob("*.yml")):
        pytest.skip("playbooks/ holds no YAML yet")
    command = [lint, "--offline", "--nocolor"]
    if CONFIG.exists():
        command += ["-c", str(CONFIG)]  # the project's config picks the profile
    else:
        command += ["--profile", "production"]
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(
        [*command, "playbooks/"], cwd=REPO, capture_output=True, text=True, timeout=600, env=env, check=False
    )
    report = (done.stdout + done.stderr).strip()
    assert done.returncode == 0, f"ansible-lint {' '.join(command[1:])} playbooks/ failed:\n{report[-6000:]}"
