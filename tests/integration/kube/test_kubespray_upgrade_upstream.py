"""Kubespray's upgrade-cluster.yml, which the kubernetes phase's upgrade action runs (outside CI: needs the
Kubespray tree at the locked tag in AFFORDML_KUBESPRAY_DIR): the playbook is in the tag, and ansible-playbook
--syntax-check accepts it with the rendered inventory and group_vars."""

from __future__ import annotations

import pytest

from affordml.phases.kubernetes import UPGRADE_PLAYBOOK
from tests.integration.kube.test_kubespray_upstream import (  # noqa: F401 - fixtures
    CASES,
    assert_syntax_ok,
    kubespray_tree,
    toolchain_bin,
)

# three topologies (one GPU worker, two workers, HAMi on one worker); cluster.yml's own test covers every case
SOME_CASES = [c for c in CASES if c in ("desktop-rtx4090", "workstation-2gpu", "workstation-2gpu--hami-one-worker")]


@pytest.mark.parametrize("case", SOME_CASES)
def test_upgrade_playbook_syntax_with_the_render(case, kubespray_tree, toolchain_bin, tmp_path):  # noqa: F811
    assert (kubespray_tree / UPGRADE_PLAYBOOK).is_file()
    assert_syntax_ok(UPGRADE_PLAYBOOK, case, kubespray_tree, toolchain_bin, tmp_path)
