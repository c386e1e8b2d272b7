"""Kubespray's upgrade-cluster.yml, which the kubernetes phase's upgrade action runs (outside CI: needs the
Kubespray tree at the locked tag in AFFORDML_KUBESPRAY_DIR): the playbook is in the tag, and ansible-playbook
--syntax-check accepts it with the rendered inventory and group_vars."""

from __future__ import annotations

import subprocess

import pytest

from affordml.phases.kubernetes import UPGRADE_PLAYBOOK
from tests.integration.kube.test_kubespray_upstream import (  # noqa: F401 - fixtures
    CASES,
    kubespray_tree,
    project_with,
    toolchain_bin,
)

# three topologies (one GPU worker, two workers, HAMi on one worker); cluster.yml's own test covers every case
SOME_CASES = [c for c in CASES if c in ("desktop-rtx4090", "workstation-2gpu", "workstation-2gpu--hami-one-worker")]


@pytest.mark.parametrize("case", SOME_CASES)
def test_upgrade_playbook_syntax_with_the_render(case, kubespray_tree, toolchain_bin, tmp_path):  # noqa: F811
    assert (kubespray_tree / UPGRADE_PLAYBOOK).is_file()
    inventory, connection, extra = project_with(case, tmp_path)
    env = {
        "PATH": f"{toolchain_bin}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ANSIBLE_CONFIG": str(kubespray_tree / "ansible.cfg"),
    }
    done = subprocess.run(
        [str(toolchain_bin / "ansible-playbook"), "-i", str(inventory), "-i", str(connection), "-e", f"@{extra}",
         "--syntax-check", UPGRADE_PLAYBOOK],
        cwd=kubespray_tree, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
