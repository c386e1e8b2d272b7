"""add-node's cloud step against the real test OpenStack with a second nova-compute (the added PC).

The second compute runs with the nova-compute.conf affordml renders for the added PC (its GPU by address) and
reports the same GPU model at the same PCI address as the first one: only the availability zone keeps the added
PC's VM off the first compute. The cloud phase on the grown plan creates the aggregate and zone, carves the added
PC's VM on its compute (the first PC's VMs carry no zone: docs/add-node.md, known limit), and a second run
changes nothing. Afterwards the second compute, its service, the aggregate and the VMs are gone again."""

from __future__ import annotations

import contextlib
import dataclasses
import time

import pytest

from affordml.cloud.phase import run_cloud_phase
from affordml.config.model import Config
from affordml.lifecycle.destroy import run_destroy, select_phases
from affordml.plan.model import NodePlan, VmSpec
from affordml.plan.nodes import with_nodes
from affordml.render.context import build_context
from affordml.render.engine import render_files
from affordml.versions import load_lock
from tests.integration.openstack.test_cloud_carve import (  # noqa: F401 - fixtures
    _small,
    admin,
    cloud,
    cloud_alias,
    context,
    fit,
    options,
    plan_of,
    project,
)
from tests.testbed.openstack import fake_host
from tests.testbed.openstack.second_compute import second_compute
from tests.testbed.openstack.settings import COMPUTE_HOST

pytestmark = [pytest.mark.openstack, pytest.mark.slow]

NODE_HOST = "affordml-compute-2"
ZONE = "affordml-pc2"


def grown_plan(cloud):  # noqa: F811
    """The desktop's platform (CPU-only here) plus a PC with one RTX A6000, asked for by the cloud's alias."""
    base = fit(plan_of("desktop-rtx4090"), cloud)
    base = dataclasses.replace(
        base, gpus=[], nova_aliases=[], vms=[_small(dataclasses.replace(v, gpus=()), 0) for v in base.vms]
    )
    alias = cloud_alias()
    template = next(g for g in fake_host.plan().gpus if g.device_type == "type-PCI")
    gpu = dataclasses.replace(template, vm="pc2-worker-1", nova_alias=alias["name"])
    vm = _small(VmSpec("pc2-worker-1", "worker", "", 1, 1, 5, (gpu.address,)))
    node = NodePlan(
        host="pc2",
        hostname=NODE_HOST,
        os="ubuntu 24.04",
        host_vcpus=10,
        host_ram_gib=8,
        host_disk_free_gib=100,
        management_interface="eth0",
        management_address="127.0.0.1",
        reservations=(),
        vms=(vm,),
        gpus=(gpu,),
        nova_device_specs=({"vendor_id": gpu.ids[:4], "product_id": gpu.ids[5:], "address": gpu.address},),
        nova_aliases=(alias,),
    )
    return with_nodes(base, [node]), gpu


def test_added_pcs_vm_lands_on_its_compute_and_the_first_pcs_stay(cloud, admin, project, options):  # noqa: F811
    grown, gpu = grown_plan(cloud)
    base = dataclasses.replace(grown, vms=[v for v in grown.vms if not grown.node_of_vm(v.name)], nodes=[])
    base = dataclasses.replace(base, gpus=[], nova_aliases=[])
    config = Config.model_validate({"hosts": [{"name": "pc1"}, {"name": "pc2", "address": "192.0.2.20"}]})
    conf = render_files(build_context(grown, config, load_lock()))["kolla/config/nova/pc2/nova-compute.conf"]
    functions = [f for f in cloud.functions if f.address[:-1] == gpu.address[:-1]]  # the card: GPU and audio
    try:
        with _destroyed(project):
            # the platform as init left it: the first PC's VMs on the one compute there is
            before = run_cloud_phase(context(project, base), options)["record"]["servers"]
            hosts_before = {vm: admin.compute.get_server(s["id"]).compute_host for vm, s in before.items()}
            assert set(hosts_before.values()) == {COMPUTE_HOST}
            started = time.monotonic()
            with second_compute(cloud.run_dir, NODE_HOST, conf, functions), _destroyed(project):
                up = time.monotonic() - started
                lines: list[str] = []
                first = run_cloud_phase(context(project, grown, lines), options)
                carved = time.monotonic() - started - up
                aggregate = next(a for a in admin.compute.aggregates() if a.name == ZONE)
                assert aggregate.availability_zone == ZONE and aggregate.hosts == [NODE_HOST]
                servers = first["record"]["servers"]
                node_vm = admin.compute.get_server(servers["pc2-worker-1"]["id"])
                assert (node_vm.compute_host, node_vm.availability_zone, node_vm.status) == (NODE_HOST, ZONE, "ACTIVE")
                kept = {vm: (s["id"], admin.compute.get_server(s["id"]).compute_host) for vm, s in servers.items()}
                assert {vm: kept[vm] for vm in before} == {vm: (s["id"], COMPUTE_HOST) for vm, s in before.items()}
                made = [line for line in lines if "created" in line or "added" in line]
                assert any("created host aggregate affordml-pc2" in line for line in made), lines
                assert any("created server affordml-pc2-worker-1" in line for line in made), lines
                assert not any("created server affordml-cp-1" in line for line in made), lines
                again = run_cloud_phase(context(project, grown), options)
                assert again["changes"] == [], again["changes"]
                print(
                    f"second compute up in {up:.1f}s; added PC's VM carved on {NODE_HOST} in zone {ZONE} "
                    f"({carved:.1f}s), the first PC's 3 VMs kept on {COMPUTE_HOST}; second run: nothing changed"
                )
    finally:
        _forget_second_compute(admin)


@contextlib.contextmanager
def _destroyed(project):  # noqa: F811
    """The platform's VMs go even when an assertion fails (the test destroys them itself while the second compute
    still runs: a server on a stopped compute is never deleted)."""
    try:
        yield
    finally:
        run_destroy(project, lambda _: None, select_phases(["cloud"]))


def _forget_second_compute(admin) -> None:  # noqa: F811
    """The session's other tests expect the one-compute cloud: aggregate and the stopped service go."""
    for aggregate in admin.compute.aggregates():
        if aggregate.name == ZONE:
            for host in aggregate.hosts or []:
                admin.compute.remove_host_from_aggregate(aggregate, host)
            admin.compute.delete_aggregate(aggregate)
    for service in admin.compute.services(binary="nova-compute"):
        if service.host == NODE_HOST:
            admin.compute.delete_service(service)
