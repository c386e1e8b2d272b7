"""Kubespray's own checks on every hardware fixture's rendered inventory and group_vars (outside CI: needs a
Kubespray source tree at the locked tag in AFFORDML_KUBESPRAY_DIR; see tests/kubecp/README.md).

- playbooks/boilerplate.yml (Kubespray's validate_inventory role) through affordml's own run path (Kubespray's
  ansible.cfg, both inventories, ansible-runner, the progress model and the one-line failure explanation);
- a broken render (too old kube_version, a string boolean, an unknown network plugin) refused by Kubespray
  itself, surfaced as one line;
- cluster.yml --syntax-check with the rendered inventory and vars.
Kubespray's assertions run on the controller; `ansible_connection: local` makes sure nothing tries SSH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from affordml import ansible_data
from affordml.errors import RunError
from affordml.kube import cluster
from affordml.kube.access import cluster_access
from affordml.kube.inventory import write_connection_inventory
from affordml.kube.source import kubespray_toolchain
from affordml.run.progress import Progress
from affordml.run.toolchains import ensure
from affordml.versions import load_lock

REPO = Path(__file__).resolve().parents[3]
GOLDEN = REPO / "tests" / "golden"
CASES = sorted(p.parent.parent.name for p in GOLDEN.glob("*/kubespray/inventory.yml"))
TREE_ENV = "AFFORDML_KUBESPRAY_DIR"
TEST_NET = {"cp-1": "192.0.2.10", "worker-1": "192.0.2.11", "worker-2": "192.0.2.12"}  # RFC 5737: never dialled


@pytest.fixture(scope="module")
def kubespray_tree() -> Path:
    if os.environ.get("CI"):
        pytest.skip("CI: no Kubespray source tree reaches CI (set AFFORDML_KUBESPRAY_DIR outside CI)")
    tree = os.environ.get(TREE_ENV)
    if not tree or not (Path(tree) / "playbooks" / "boilerplate.yml").is_file():
        pytest.skip(f"set {TREE_ENV} to a Kubespray source tree at the locked tag ({load_lock()['kubespray']['tag']})")
    return Path(tree)


@pytest.fixture(scope="module")
def toolchain_bin(kubespray_tree: Path) -> Path:
    return ensure(kubespray_toolchain(kubespray_tree, load_lock()), print)


def project_with(case: str, tmp_path: Path, mutate=None) -> tuple[Path, Path, Path]:
    """env/kubespray of a golden case (optionally changed), the connection inventory, and extra vars."""
    env = tmp_path / "env" / "kubespray"
    shutil.copytree(GOLDEN / case / "kubespray", env)
    if mutate:
        mutate(env)
    hosts = ansible_data.load((env / "inventory.yml").read_text())["all"]["hosts"]
    roles = {n: "control-plane" if n.startswith("cp-") else "worker" for n in hosts}
    access = cluster_access(list(roles.items()), TEST_NET, "ubuntu", tmp_path / "key", tmp_path / "known_hosts")
    connection = write_connection_inventory(tmp_path / "runs" / "connection.yml", access)
    extra = tmp_path / "extra-vars.yml"
    extra.write_text(yaml.safe_dump({"ansible_connection": "local"}))
    return env / "inventory.yml", connection, extra


def boilerplate(tree: Path, toolchain_bin: Path, tmp_path: Path, case: str, mutate=None):
    return validate_inventory(tree, toolchain_bin, tmp_path, f"validate-{case}", *project_with(case, tmp_path, mutate))


def validate_inventory(tree: Path, toolchain_bin: Path, tmp_path: Path, ident: str, inventory, connection, extra):
    """Kubespray's playbooks/boilerplate.yml (validate_inventory) through affordml's run path: (result, roles)."""
    run = cluster.ClusterRun(
        ident=ident,
        runs_dir=tmp_path / "runs",
        tree=tree,
        env_inventory=inventory,
        connection_inventory=connection,
        toolchain_bin=toolchain_bin,
        vars_files=(extra,),
        playbook="playbooks/boilerplate.yml",
    )
    return cluster.execute(run, Progress("kubernetes"))


@pytest.mark.parametrize("case", CASES)
def test_validate_inventory_accepts_the_render(case, kubespray_tree, toolchain_bin, tmp_path):
    result, roles = boilerplate(kubespray_tree, toolchain_bin, tmp_path, case)
    cluster.explain_failure(result, roles, TEST_NET)  # raises a one-line RunError on any failure
    assert result.rc == 0 and result.status == "successful"
    rendered = ansible_data.load((GOLDEN / case / "kubespray" / "inventory.yml").read_text())["all"]["hosts"]
    assert set(result.progress.hosts) == set(rendered)
    print(f"{case}: validate_inventory {result.progress.summary()}")


def set_var(path: str, key: str, value: str):
    def mutate(env: Path) -> None:
        target = env / "group_vars" / path
        text = target.read_text()
        lines = [line for line in text.splitlines() if not line.startswith(f"{key}:")]
        target.write_text("\n".join(lines) + f"\n{key}: {value}\n")

    return mutate


@pytest.mark.parametrize(
    ("what", "mutate", "expected"),
    [
        ("too old", set_var("k8s_cluster/k8s-cluster.yml", "kube_version", '"1.20.0"'), "version of Kubernetes"),
        ("string boolean", set_var("k8s_cluster/addons.yml", "helm_enabled", '"true"'), "booleans"),
        ("unknown plugin", set_var("k8s_cluster/k8s-cluster.yml", "kube_network_plugin", "weave"), "unsupported"),
        ("unknown proxy mode", set_var("k8s_cluster/k8s-cluster.yml", "kube_proxy_mode", "userspace"), "unsupported"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_kubespray_assertions_become_one_line(what, mutate, expected, kubespray_tree, toolchain_bin, tmp_path):
    result, roles = boilerplate(kubespray_tree, toolchain_bin, tmp_path, "desktop-rtx4090", mutate)
    assert result.rc != 0, f"Kubespray accepted a render with: {what}"
    with pytest.raises(RunError) as info:
        cluster.explain_failure(result, roles, TEST_NET)
    line = info.value.one_line()
    assert "Kubespray refused the inventory" in line and expected in line and "\n" not in line
    print(f"{what}: {line}")


@pytest.mark.parametrize("case", CASES)
def test_cluster_playbook_syntax_with_the_render(case, kubespray_tree, toolchain_bin, tmp_path):
    assert_syntax_ok("cluster.yml", case, kubespray_tree, toolchain_bin, tmp_path)


def ansible_playbook(tree: Path, bin_dir: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Kubespray's toolchain's ansible-playbook in its tree, with its ansible.cfg and nothing of this environment."""
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "ANSIBLE_CONFIG": str(tree / "ansible.cfg")}
    return subprocess.run(
        [str(bin_dir / "ansible-playbook"), *args], cwd=tree, env=env, capture_output=True, text=True, timeout=300
    )


def assert_syntax_ok(name: str, case: str, tree: Path, bin_dir: Path, tmp_path: Path) -> None:
    inventory, connection, extra = project_with(case, tmp_path)
    args = ["-i", str(inventory), "-i", str(connection), "-e", f"@{extra}", "--syntax-check", name]
    done = ansible_playbook(tree, bin_dir, tmp_path, *args)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
