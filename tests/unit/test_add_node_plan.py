"""The plan of a PC added with `affordml add-node` and what the platform renders for it (pure: no hosts)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from affordml.cloud.spec import cloud_spec
from affordml.config.model import Config, Host
from affordml.errors import PlanError
from affordml.facts.parse import facts_from_snapshot
from affordml.facts.snapshot import Snapshot
from affordml.lifecycle.delta import delta_lines
from affordml.plan.build import make_plan
from affordml.plan.nodes import check_same_os, make_node_plan, with_nodes
from affordml.render.context import build_context, vm_addresses
from affordml.render.engine import render_files
from affordml.render.kolla_inventory import kolla_inventory, platform_hosts
from affordml.versions import load_lock, version_table

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hardware"
LOCK = load_lock()
VERSIONS = version_table(LOCK)
CONFIG = Config.model_validate({"hosts": [{"name": "pc1"}, {"name": "pc2", "address": "192.168.1.43", "user": "ops"}]})


def facts(name: str, hostname: str | None = None, address: str | None = None):
    raw = json.loads((FIXTURES / f"{name}.json").read_text())
    if hostname:
        raw["files"]["/etc/hostname"] = hostname
    if address:  # the default NIC's address moved, as if the PC sat on another network
        nic = facts_from_snapshot(Snapshot.from_dict(raw)).default_nic
        old = next(a for a in nic.addresses if ":" not in a).split("/")[0]
        raw["commands"] = {k: v.replace(old, address) for k, v in raw["commands"].items()}
    return facts_from_snapshot(Snapshot.from_dict(raw))


FIRST = facts("desktop-rtx4090")
BASE = make_plan(FIRST, CONFIG, VERSIONS)


def node(fixture: str = "workstation-2gpu", hostname: str = "pc2-box", address: str = "192.168.1.43"):
    return make_node_plan("pc2", facts(fixture, hostname, address), CONFIG, VERSIONS, BASE)


def test_node_plan_carves_workers_only_and_names_them_after_the_pc():
    plan = node()
    assert [vm.role for vm in plan.vms] == ["worker"] * len(plan.vms)
    assert all(vm.name.startswith("pc2-worker-") for vm in plan.vms)
    assert {g.vm for g in plan.gpus} <= {vm.name for vm in plan.vms}
    assert plan.hostname == "pc2-box" and plan.management_address == "192.168.1.43"
    assert "control" not in " ".join(r.name for r in plan.reservations).lower()
    used = sum(vm.ram_gib for vm in plan.vms) + sum(r.ram_gib for r in plan.reservations)
    assert used <= plan.host_ram_gib


def test_a_gpu_model_new_to_the_platform_gets_its_own_alias_and_a_known_one_keeps_it():
    same = node("desktop-rtx4090")
    assert [g.nova_alias for g in same.gpus] == ["gpu"] and same.nova_aliases == ()
    other = node("workstation-2gpu")
    assert other.gpus and all(g.nova_alias.startswith("gpu-") for g in other.gpus)
    grown = with_nodes(BASE, [other])
    names = [a["name"] for a in grown.nova_aliases]
    assert len(names) == len(set(names)) and "gpu" in names


def test_growing_keeps_the_first_pcs_vms_and_their_addresses_and_is_idempotent():
    before = vm_addresses(BASE)
    grown = with_nodes(BASE, [node()])
    after = vm_addresses(grown)
    assert {k: after[k] for k in before} == before
    assert with_nodes(grown, [node()]).vms == grown.vms  # a PC already in the plan is replaced, not added twice
    assert grown.node_of_vm("pc2-worker-1").host == "pc2" and grown.node_of_vm("worker-1") is None
    assert "nodes" not in BASE.to_dict() and grown.to_dict()["nodes"][0]["host"] == "pc2"


@pytest.mark.parametrize(
    ("hostname", "address", "words"),
    [
        ("ryzen-4090", "192.168.1.43", "the name of the first PC"),
        ("pc2-box", "10.9.9.9", "does not hold the first PC's management address"),
    ],
)
def test_a_pc_that_cannot_join_is_refused_in_one_line(hostname, address, words):
    with pytest.raises(PlanError) as caught:
        node("desktop-rtx4090", hostname, address)
    assert words in caught.value.problem and "\n" not in caught.value.one_line()


def test_another_os_is_refused():
    other = facts("desktop-rtx4090", "pc2-box")
    other = replace(other, os=replace(other.os, id="debian", version_id="13", pretty_name="Debian 13"))
    with pytest.raises(PlanError, match="kolla-ansible deploys one release for one OS"):
        check_same_os("pc2", other, FIRST)


def test_rendered_env_gives_the_added_pc_its_own_vars_vm_zone_and_nova_config():
    added = node()
    grown = with_nodes(BASE, [added])
    files = render_files(build_context(grown, CONFIG, LOCK))
    hosts = yaml.safe_load(files["inventory/hosts.yml"].replace("!unsafe ", ""))["all"]["children"]["affordml_hosts"]
    pc1, pc2 = hosts["hosts"]["pc1"], hosts["hosts"]["pc2"]
    assert pc2["affordml_vfio_ids"] == list(added.vfio_ids) != pc1["affordml_vfio_ids"]
    assert pc2["affordml_external_interface_created"] is False and pc1["affordml_external_interface_created"]
    assert pc2["affordml_management_interface"] == added.management_interface
    kube = yaml.safe_load(files["kubespray/inventory.yml"].replace("!unsafe ", ""))
    assert set(kube["all"]["children"]["kube_node"]["hosts"]) >= {vm.name for vm in added.vms}
    conf = files["kolla/config/nova/pc2/nova-compute.conf"]
    for spec in added.nova_device_specs:
        assert json.dumps(spec) in conf
    assert json.dumps(BASE.nova_device_specs[0]) not in conf  # the first PC's GPU is not offered on pc2
    labels = files["gpu/node-labels.yaml"]
    assert all(vm.name in labels for vm in added.vms if vm.gpus)
    spec = cloud_spec(grown, "pc1")
    zone = {s.vm: s.availability_zone for s in spec.servers}
    assert zone["worker-1"] == "affordml-pc1" and all(zone[vm.name] == "affordml-pc2" for vm in added.vms)
    assert [(z.name, z.compute_host, z.first) for z in spec.zones] == [
        ("affordml-pc1", BASE.host, True),
        ("affordml-pc2", "pc2-box", False),
    ]
    one_pc = cloud_spec(BASE, "pc1")  # one PC: its own zone too (made before its first VM: docs/add-node.md)
    assert {s.availability_zone for s in one_pc.servers} == {"affordml-pc1"}
    assert [z.name for z in one_pc.zones] == ["affordml-pc1"]


def test_kolla_inventory_holds_only_platform_pcs_with_their_own_nic():
    all_in_one = "[control]\nlocalhost\n[compute]\nlocalhost\n[network]\nlocalhost\n"
    hosts = [Host(name="pc1"), Host(name="pc2", address="192.168.1.43"), Host(name="pc3", address="192.168.1.44")]
    chosen, host_vars = platform_hosts(hosts, with_nodes(BASE, [node()]))
    text = kolla_inventory(all_in_one, chosen, host_vars)
    compute = text.split("[compute]\n")[1].split("[")[0]
    assert "pc2 ansible_host=192.168.1.43" in compute and "network_interface=" in compute
    assert "pc3" not in text  # listed in affordml.yaml but not added: kolla does not deploy there


def test_delta_names_each_vm_gpu_and_zone():
    lines = "\n".join(delta_lines(node()))
    assert "+ VM pc2-worker-1" in lines and "affordml-pc2" in lines and "+ GPU" in lines
