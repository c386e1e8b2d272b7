"""add-node's cloud step against the real test OpenStack with a second nova-compute (the added PC).

The second compute runs with the nova-compute.conf affordml renders for the added PC (its GPU by address) and
reports the same GPU model at the same PCI address as the first one: only the availability zone keeps the added
PC's VM off the first compute. The first PC's zone is made before its first VM; the cloud phase on the grown plan
creates the added PC's aggregate and zone and carves its VM on its compute; a first-PC VM deleted afterwards comes
back on the first PC (the added compute is emptier, so without the zone the scheduler would pick it); a second run
changes nothing. A platform carved when the first PC had no zone keeps it until `destroy --only cloud` empties the
compute (nova moves no host with instances into a zone). Afterwards the second compute, its service, the
aggregates and the VMs are gone again."""

from __future__ import annotations

import contextlib
import dataclasses
import time

import pytest

from affordml.cloud import names, phase
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
FIRST_ZONE = "affordml-main"  # the first PC's zone: affordml.yaml's default first host (the tests' Config())
LOST_VM = "worker-2"


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
    _no_zones(admin)
    try:
        with _destroyed(project):
            # the platform as init leaves it: the first PC's zone, made before its first VM, holds its VMs
            lines: list[str] = []
            before = run_cloud_phase(context(project, base, lines), options)["record"]["servers"]
            assert _placed(admin, before) == {vm: (COMPUTE_HOST, FIRST_ZONE) for vm in before}, lines
            assert any(f"created host aggregate {FIRST_ZONE}" in line for line in lines), lines
            started = time.monotonic()
            with second_compute(cloud.run_dir, NODE_HOST, conf, functions), _destroyed(project):
                up = time.monotonic() - started
                lines = []
                first = run_cloud_phase(context(project, grown, lines), options)
                carved = time.monotonic() - started - up
                zones = {a.name: (a.availability_zone, a.hosts) for a in admin.compute.aggregates()}
                assert zones == {FIRST_ZONE: (FIRST_ZONE, [COMPUTE_HOST]), ZONE: (ZONE, [NODE_HOST])}
                servers = first["record"]["servers"]
                assert admin.compute.get_server(servers["pc2-worker-1"]["id"]).status == "ACTIVE"
                placed = _placed(admin, servers)
                assert placed["pc2-worker-1"] == (NODE_HOST, ZONE)
                assert {vm: (servers[vm]["id"], placed[vm]) for vm in before} == {
                    vm: (s["id"], (COMPUTE_HOST, FIRST_ZONE)) for vm, s in before.items()
                }
                made = [line for line in lines if "created" in line or "added" in line]
                assert any("created host aggregate affordml-pc2" in line for line in made), lines
                assert any("created server affordml-pc2-worker-1" in line for line in made), lines
                assert not any("created server affordml-cp-1" in line for line in made), lines

                # a first-PC VM deleted after add-node comes back on the first PC, not on the emptier added one
                gone = servers[LOST_VM]["id"]
                admin.compute.delete_server(gone)
                admin.compute.wait_for_delete(admin.compute.get_server(gone), interval=1, wait=120)
                twin_host = _zone_less_twin_lands_on(admin, project, first["record"], grown_flavor(grown))
                assert twin_host == NODE_HOST, f"the control: a zone-less twin landed on {twin_host}"
                started = time.monotonic()
                lines = []
                back = run_cloud_phase(context(project, grown, lines), options)
                again_s = time.monotonic() - started
                made = [c for c in back["changes"] if c.startswith("created server")]
                lost = f"affordml-{LOST_VM} ({grown_flavor(grown)}, {before[LOST_VM]['address']})"
                assert made == [f"created server {lost} in zone {FIRST_ZONE}"], back["changes"]
                placed = _placed(admin, back["record"]["servers"])
                assert placed[LOST_VM] == (COMPUTE_HOST, FIRST_ZONE), placed
                assert placed["pc2-worker-1"] == (NODE_HOST, ZONE)
                again = run_cloud_phase(context(project, grown), options)
                assert again["changes"] == [], again["changes"]
                print(
                    f"second compute up in {up:.1f}s; added PC's VM carved on {NODE_HOST} in zone {ZONE} "
                    f"({carved:.1f}s), the first PC's 3 VMs kept on {COMPUTE_HOST} in {FIRST_ZONE}; {LOST_VM} "
                    f"deleted and carved again on {COMPUTE_HOST} ({again_s:.1f}s), where a zone-less twin went to "
                    f"{twin_host}; another run: nothing changed"
                )
    finally:
        _forget_second_compute(admin)


def test_first_pc_carved_before_zones_is_kept_until_its_compute_is_empty(cloud, admin, project, options, monkeypatch):  # noqa: F811
    """A platform carved by an affordml that gave the first PC no zone: nova refuses to move its compute (it holds
    the VMs) into one, so the carve keeps it and says so, changes nothing, and makes the zone once `destroy --only
    cloud` emptied it."""
    base = dataclasses.replace(grown_plan(cloud)[0], nodes=[], gpus=[], nova_aliases=[])
    base = dataclasses.replace(
        base, vms=[dataclasses.replace(v, gpus=()) for v in base.vms if not v.name.startswith("pc2")]
    )
    _no_zones(admin)
    try:
        with _destroyed(project):
            real_spec = phase.cloud_spec
            with monkeypatch.context() as patch:  # the earlier affordml: no zone for the first PC
                patch.setattr(
                    phase, "cloud_spec", lambda plan, first: dataclasses.replace(real_spec(plan, first), zones=())
                )
                before = run_cloud_phase(context(project, base), options)["record"]["servers"]
            assert _placed(admin, before) == {vm: (COMPUTE_HOST, "nova") for vm in before}
            started = time.monotonic()
            lines: list[str] = []
            kept = run_cloud_phase(context(project, base, lines), options)
            took = time.monotonic() - started
            assert kept["changes"] == [], kept["changes"]
            said = [line for line in lines if line.startswith("[cloud] kept:")]
            assert said and f"compute host {COMPUTE_HOST} holds {len(before)} instance(s)" in said[0], lines
            assert not [a for a in admin.compute.aggregates() if a.name == FIRST_ZONE]
            refused = _nova_refuses_to_zone(admin, COMPUTE_HOST)
            assert f"already has {len(before)} instance(s)" in refused, refused
        started = time.monotonic()
        with _destroyed(project):
            lines = []
            fresh = run_cloud_phase(context(project, base, lines), options)
            remade = time.monotonic() - started
            assert _placed(admin, fresh["record"]["servers"]) == {vm: (COMPUTE_HOST, FIRST_ZONE) for vm in before}
            assert f"host aggregate {FIRST_ZONE}: added main's compute host {COMPUTE_HOST}" in fresh["changes"]
        print(
            f"legacy platform: a carve that keeps the zone-less first PC ({len(before)} VMs) changed nothing "
            f"({took:.1f}s); nova refused the move itself: {refused!r}; after destroy --only cloud the carve made "
            f"{FIRST_ZONE} and carved the VMs in it ({remade:.1f}s)"
        )
    finally:
        _no_zones(admin)


def grown_flavor(plan) -> str:
    return next(v.flavor for v in plan.vms if v.name == LOST_VM)


def _zone_less_twin_lands_on(admin, project, record: dict, flavor: str) -> str:  # noqa: F811
    """The control: the lost VM's flavor, image and network, but no zone, as the platform user; where nova puts it
    (then it goes again)."""
    from affordml.cloud.connect import clouds_yaml, connect_cloud

    user = connect_cloud(clouds_yaml(project), names.USER_CLOUD)
    twin = user.compute.create_server(
        name="zone-less-twin",
        flavor_id=record["flavors"][flavor],
        image_id=record["image_id"],
        networks=[{"uuid": record["network_id"]}],
    )
    try:
        user.compute.wait_for_server(twin, interval=1, wait=120)
        return admin.compute.get_server(twin.id).compute_host
    finally:
        user.compute.delete_server(twin)
        user.compute.wait_for_delete(twin, interval=1, wait=120)


def _placed(admin, servers: dict[str, dict]) -> dict[str, tuple[str, str]]:  # noqa: F811
    """Each VM's compute host and availability zone, as nova's admin API reports them."""
    found = {vm: admin.compute.get_server(s["id"]) for vm, s in servers.items()}
    return {vm: (s.compute_host, s.availability_zone) for vm, s in found.items()}


def _nova_refuses_to_zone(admin, host: str) -> str:  # noqa: F811
    """nova's own answer when a host holding instances is added to an aggregate with a zone."""
    from openstack import exceptions

    probe = admin.compute.create_aggregate(name="affordml-test-probe", availability_zone="affordml-test-probe")
    try:
        admin.compute.add_host_to_aggregate(probe, host)
    except exceptions.HttpException as exc:
        return str(exc.details or exc)
    else:
        admin.compute.remove_host_from_aggregate(probe, host)
        return "nova accepted it"
    finally:
        admin.compute.delete_aggregate(probe)


@contextlib.contextmanager
def _destroyed(project):  # noqa: F811
    """The platform's VMs go even when an assertion fails (the test destroys them itself while the second compute
    still runs: a server on a stopped compute is never deleted)."""
    try:
        yield
    finally:
        run_destroy(project, lambda _: None, select_phases(["cloud"]))


def _forget_second_compute(admin) -> None:  # noqa: F811
    """The session's other tests expect the one-compute cloud: the stopped service and the zones go."""
    _no_zones(admin)
    for service in admin.compute.services(binary="nova-compute"):
        if service.host == NODE_HOST:
            admin.compute.delete_service(service)


def _no_zones(admin) -> None:  # noqa: F811
    """The platform's aggregates go (nova lets a host with no instances leave its zone)."""
    for aggregate in admin.compute.aggregates():
        if aggregate.name in (ZONE, FIRST_ZONE, "affordml-test-probe"):
            for host in aggregate.hosts or []:
                admin.compute.remove_host_from_aggregate(aggregate, host)
            admin.compute.delete_aggregate(aggregate)
