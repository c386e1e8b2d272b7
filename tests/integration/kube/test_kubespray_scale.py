"""Kubespray's scale.yml with the inventory affordml renders once a PC is added (outside CI: a Kubespray source tree
at the locked tag in AFFORDML_KUBESPRAY_DIR; see tests/kubecp/README.md).

The grown plan: the desktop fixture's platform plus the two-GPU workstation added with add-node. Kubespray's own
validate_inventory accepts the grown inventory through affordml's run path; facts.yml and scale.yml pass
--syntax-check; and with add-node's --limit, scale.yml's plays reach the new VM only (--list-hosts)."""

from __future__ import annotations

import json
from pathlib import Path

from affordml import ansible_data
from affordml.config.model import Config
from affordml.facts.parse import facts_from_snapshot
from affordml.facts.snapshot import Snapshot
from affordml.kube import cluster
from affordml.kube.access import cluster_access
from affordml.kube.inventory import write_connection_inventory
from affordml.plan.build import make_plan
from affordml.plan.nodes import make_node_plan, with_nodes
from affordml.render.context import build_context
from affordml.render.engine import render_files
from affordml.versions import load_lock, version_table
from tests.integration.kube.test_kubespray_upstream import (  # noqa: F401 - fixtures
    ansible_playbook,
    kubespray_tree,
    toolchain_bin,
    validate_inventory,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hardware"
LOCK = load_lock()


def fixture_facts(name: str, hostname: str | None = None):
    raw = json.loads((FIXTURES / f"{name}.json").read_text())
    if hostname:  # the workstation moved onto the desktop's network, as a second PC beside it
        raw["files"]["/etc/hostname"] = hostname
        raw["commands"] = {k: v.replace("192.168.50.", "192.168.1.") for k, v in raw["commands"].items()}
    return facts_from_snapshot(Snapshot.from_dict(raw))


def grown_env(tmp_path: Path) -> tuple[Path, Path, Path, list[str]]:
    config = Config.model_validate({"hosts": [{"name": "pc1"}, {"name": "pc2", "address": "192.168.1.10"}]})
    versions = version_table(LOCK)
    base = make_plan(fixture_facts("desktop-rtx4090"), config, versions)
    node = make_node_plan("pc2", fixture_facts("workstation-2gpu", "pc2-box"), config, versions, base)
    files = render_files(build_context(with_nodes(base, [node]), config, LOCK))
    env = tmp_path / "env"
    for name, text in files.items():
        if name.startswith("kubespray/"):
            (env / name).parent.mkdir(parents=True, exist_ok=True)
            (env / name).write_text(text)
    hosts = ansible_data.load((env / "kubespray" / "inventory.yml").read_text())["all"]["hosts"]
    addresses = {vm: f"192.0.2.{10 + i}" for i, vm in enumerate(hosts)}  # RFC 5737: never dialled
    roles = [(vm, "control-plane" if vm.startswith("cp-") else "worker") for vm in hosts]
    access = cluster_access(roles, addresses, "ubuntu", tmp_path / "key", tmp_path / "known_hosts")
    connection = write_connection_inventory(tmp_path / "runs" / "connection.yml", access)
    extra = tmp_path / "extra-vars.yml"
    extra.write_text("ansible_connection: local\n")
    return env / "kubespray" / "inventory.yml", connection, extra, [vm.name for vm in node.vms]


def test_kubespray_accepts_the_grown_inventory_and_scale_reaches_only_the_new_vm(
    kubespray_tree: Path,  # noqa: F811
    toolchain_bin: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    inventory, connection, extra, new_vms = grown_env(tmp_path)
    assert new_vms == ["pc2-worker-1", "pc2-worker-2"]
    result, roles = validate_inventory(
        kubespray_tree, toolchain_bin, tmp_path, "validate-grown", inventory, connection, extra
    )
    cluster.explain_failure(result, roles, {})
    assert set(result.progress.hosts) >= {"cp-1", "worker-1", *new_vms}
    inventories = ["-i", str(inventory), "-i", str(connection), "-e", f"@{extra}"]
    for name in ("playbooks/facts.yml", "scale.yml"):
        checked = ansible_playbook(kubespray_tree, toolchain_bin, tmp_path, *inventories, "--syntax-check", name)
        assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
    limit = ",".join(new_vms)
    listed = ansible_playbook(
        kubespray_tree, toolchain_bin, tmp_path, *inventories, "--list-hosts", "--limit", limit, "scale.yml"
    )
    assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-2000:]
    reached = {line.strip() for line in listed.stdout.splitlines() if line.startswith("      ")}
    assert reached == set(new_vms), listed.stdout
    print(f"grown inventory: validate_inventory {result.progress.summary()}; scale.yml --limit {limit} -> {reached}")
