"""The cloud phase against the real test OpenStack on 127.0.0.1: carve two hardware fixtures' plans, carve again
(nothing changes: no API write call at all), the clear errors (more GPUs than the cloud has, a PCI alias nova does
not define, a plan change that would destroy a VM), status from the API, and destroy (ours gone, others' kept).

The fake compute node is small (MediumFakeDriver: 10 vCPUs, 8 GiB), so the fixtures' plans keep their VMs, roles,
GPUs and addresses but get 1-vCPU, 1-GiB, 5-GiB flavors; and nova runs with affordml's rendered [pci] config for the
test PC (tests/testbed/openstack/fake_host.py), so a fixture's GPUs are asked for by that PC's type-PCI alias.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import json
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from affordml.cloud import names
from affordml.cloud.carve import CloudOptions
from affordml.cloud.faults import ChangeRefused, NoValidHost, PciAliasMissing
from affordml.cloud.phase import run_cloud_phase
from affordml.cloud.reachable import vm_addresses
from affordml.config.model import Config
from affordml.facts.parse import facts_from_snapshot
from affordml.facts.sources import load_snapshot_file
from affordml.lifecycle.destroy import run_destroy, select_phases
from affordml.phases.state import State
from affordml.phases.workflow import PhaseContext
from affordml.plan.build import make_plan
from affordml.plan.model import GpuAssignment, Plan, VmSpec
from affordml.project import Project
from affordml.secrets import secure_dir, write_private
from affordml.status import project_status
from affordml.versions import load_lock, version_table
from tests.testbed.openstack import fake_host
from tests.testbed.openstack.control_plane import tracked_pci_devices
from tests.testbed.openstack.settings import COMPUTE_HOST, Layout

pytestmark = [pytest.mark.openstack, pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hardware"
LOOPBACK = "127.0.0.1"
SERVER_TIMEOUT_S = 120
SMALL = (1, 1, 5)  # vCPUs, GiB RAM, GiB disk per VM on the fake compute node
TIMES: dict[str, float] = {}


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def cloud(request: pytest.FixtureRequest) -> Iterator[object]:
    """The session's test OpenStack, with its bring-up time and this module's time printed."""
    started = time.monotonic()
    value = request.getfixturevalue("openstack_cloud")
    TIMES["bring_up_s"] = time.monotonic() - started
    assert urllib.parse.urlparse(value.auth_url).hostname == LOOPBACK
    tests_started = time.monotonic()
    yield value
    took = time.monotonic() - tests_started
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    line = (
        f"[cloud tests] OpenStack ready after {TIMES['bring_up_s']:.1f}s (0 when an already running one was reused; "
        f"the fixture's own lines give the bring-up steps); cloud tests took {took:.1f}s; "
        + ", ".join(f"{k} {v:.1f}s" for k, v in TIMES.items() if k != "bring_up_s")
    )
    (terminal.write_line if terminal else print)(line)


@pytest.fixture
def admin(cloud):
    return cloud.connect()


class Requests:
    """Every HTTP request openstacksdk makes (through keystoneauth), to count the writes; refuses non-loopback."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    @property
    def writes(self) -> list[tuple[str, str]]:
        return [
            (m, u)
            for m, u in self.seen
            if m not in ("GET", "HEAD") and not urllib.parse.urlparse(u).path.endswith("/auth/tokens")
        ]


@pytest.fixture
def requests_seen(monkeypatch) -> Requests:
    from keystoneauth1 import session

    record = Requests()
    original = session.Session.request

    def request(self, url, method, *args, **kwargs):
        host = urllib.parse.urlparse(url).hostname
        if url.startswith("http") and host != LOOPBACK:
            raise AssertionError(f"the cloud phase tried to reach {host}: tests talk to {LOOPBACK} only")
        record.seen.append((method.upper(), url))
        return original(self, url, method, *args, **kwargs)

    monkeypatch.setattr(session.Session, "request", request)
    return record


@pytest.fixture
def project(cloud, tmp_path: Path, admin) -> Iterator[Project]:
    """A project folder whose secrets/clouds.yaml holds the test cloud's admin entry; destroyed afterwards."""
    proj = Project(tmp_path / "affordml")
    entry = yaml.safe_load(Path(cloud.clouds_yaml).read_text())["clouds"][cloud.cloud_name]
    secure_dir(proj.secrets_dir)
    write_private(proj.secrets_dir / "clouds.yaml", yaml.safe_dump({"clouds": {names.ADMIN_CLOUD: entry}}))
    yield proj
    run_destroy(proj, lambda _: None, select_phases(["cloud"]))


@pytest.fixture
def options(cloud, tmp_path: Path) -> CloudOptions:
    image = tmp_path / "tiny-guest.img"
    image.write_bytes(b"\0" * 1024 * 1024)
    external = cloud.external_network.name if cloud.external_network else None
    return CloudOptions(
        image=str(image), external_network=external, physical_network="public", server_timeout_s=SERVER_TIMEOUT_S
    )


# ------------------------------------------------------------------------------------------------ helpers


def assert_host_keys_recorded(admin, project: Project, record: dict) -> str:
    """Each server's user data (read back from nova as admin, microversion >= 2.3) carries the host key whose
    public half known_hosts trusts for exactly its floating IP and tenant address; the private half is nowhere
    in the project folder but its own 0600 file. Returns known_hosts' text."""
    expected = set()
    for vm, server in record["servers"].items():
        full = admin.compute.get_server(server["id"])
        data = yaml.safe_load(base64.b64decode(full.user_data).decode())
        public = (project.root / "secrets" / "ssh" / "hosts" / f"{vm}_ed25519.pub").read_text().strip()
        private_file = project.root / "secrets" / "ssh" / "hosts" / f"{vm}_ed25519"
        assert data["ssh_keys"] == {"ed25519_public": public, "ed25519_private": private_file.read_text()}
        assert (data["ssh_deletekeys"], data["ssh_genkeytypes"]) == (True, ["ed25519"])
        assert private_file.stat().st_mode & 0o777 == 0o600 and server["host_key"] == public
        expected.add(f"{server['floating_ip']},{server['address']} {public} affordml-vm={vm}")
        for path in project.root.rglob("*"):
            if path.is_file() and path != private_file:
                assert data["ssh_keys"]["ed25519_private"] not in path.read_text(errors="replace"), path
    text = project.known_hosts.read_text()
    assert sorted(text.splitlines()) == sorted(expected)
    assert project.known_hosts.stat().st_mode & 0o777 == 0o600
    return text


def plan_of(fixture: str) -> Plan:
    facts = facts_from_snapshot(load_snapshot_file(FIXTURES / f"{fixture}.json"))
    return make_plan(facts, Config(), version_table(load_lock()))


def _small(vm: VmSpec, gpus: int | None = None) -> VmSpec:
    v, r, d = SMALL
    count = len(vm.gpus) if gpus is None else gpus
    flavor = f"affordml.{vm.role}.{v}c{r}g{d}d" + (f".gpu{count}" if count else "")
    return dataclasses.replace(vm, vcpus=v, ram_gib=r, disk_gib=d, flavor=flavor)


def cloud_alias() -> dict:
    """The test PC's type-PCI alias (its RTX A6000s), which the test cloud's nova defines."""
    return next(a for a in fake_host.plan().nova_aliases if a["device_type"] == "type-PCI")


def fit(plan: Plan, cloud) -> Plan:
    """The plan's VMs and GPUs on flavors the fake compute node holds, asked for by the test PC's type-PCI alias,
    on a first PC named like the test cloud's nova-compute (its zone's member)."""
    alias = cloud_alias()
    gpus = [dataclasses.replace(g, nova_alias=alias["name"]) for g in plan.gpus]
    vms = [_small(v) for v in plan.vms]
    return dataclasses.replace(plan, host=COMPUTE_HOST, vms=vms, gpus=gpus, nova_aliases=[alias])


def with_gpus(plan: Plan, vm_name: str, count: int) -> Plan:
    """The plan with `count` GPUs like its first one, all in one VM."""
    template = plan.gpus[0]
    gpus: list[GpuAssignment] = [
        dataclasses.replace(template, address=f"0000:{0x41 + i:02x}:00.0", vm=vm_name) for i in range(count)
    ]
    vms = [
        _small(
            dataclasses.replace(v, gpus=tuple(g.address for g in gpus))
            if v.name == vm_name
            else dataclasses.replace(v, gpus=()),
            count if v.name == vm_name else 0,
        )
        for v in plan.vms
    ]
    return dataclasses.replace(plan, vms=vms, gpus=gpus)


def cli(project: Project, *args: str) -> subprocess.CompletedProcess:
    """The affordml command line on this project folder."""
    return subprocess.run(
        [sys.executable, "-m", "affordml", "--project-dir", str(project.root), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "COLUMNS": "300"},
    )


def context(project: Project, plan: Plan, lines: list[str] | None = None) -> PhaseContext:
    say = lines.append if lines is not None else (lambda _: None)
    return PhaseContext(project, Config(), plan, load_lock(), State(), say)


def snapshot(admin, project_id: str) -> dict:
    """Ids and update times of everything in the platform's project, and of its flavors."""
    compute, network = admin.compute, admin.network
    servers = {
        s.name: (s.id, s.updated_at, s.status) for s in compute.servers(all_projects=True, project_id=project_id)
    }
    ports = {p.id: (p.name, p.updated_at, p.revision_number) for p in network.ports(project_id=project_id)}
    nets = {n.id: (n.name, n.updated_at) for n in network.networks(project_id=project_id)}
    subnets = {s.id: (s.name, s.updated_at) for s in network.subnets(project_id=project_id)}
    routers = {r.id: (r.name, r.updated_at) for r in network.routers(project_id=project_id)}
    rules = sorted(r.id for r in network.security_group_rules(project_id=project_id))
    flavors = {f.name: f.id for f in compute.flavors() if f.name.startswith(names.FLAVOR_PREFIX)}
    images = {i.id: i.updated_at for i in admin.image.images(owner=project_id)}
    ips = {i.id: (i.floating_ip_address, i.port_id, i.updated_at) for i in network.ips(project_id=project_id)}
    return {
        "floating_ips": ips,
        "servers": servers,
        "ports": ports,
        "networks": nets,
        "subnets": subnets,
        "routers": routers,
        "rules": rules,
        "flavors": flavors,
        "images": images,
    }


def gpu_holders(cloud) -> dict[str, str]:
    """nova's PCI tracker (production nova keeps PCI devices out of placement): GPU address -> the server holding it."""
    return {d["address"]: d["instance_uuid"] for d in tracked_pci_devices(Layout(cloud.run_dir)) if d["instance_uuid"]}


def our_leftovers(admin) -> list[str]:
    left = []
    proj = admin.identity.find_project(names.PROJECT, domain_id="default")
    if proj is not None:
        left.append(f"project {proj.name}")
        left += [f"server {s.name}" for s in admin.compute.servers(all_projects=True, project_id=proj.id)]
        left += [f"network {n.name}" for n in admin.network.networks(project_id=proj.id)]
        left += [f"port {p.id}" for p in admin.network.ports(project_id=proj.id)]
        left += [f"floating IP {i.floating_ip_address}" for i in admin.network.ips(project_id=proj.id)]
        left += [f"image {i.name}" for i in admin.image.images(owner=proj.id)]
    if admin.identity.find_user(names.USER, domain_id="default") is not None:
        left.append(f"user {names.USER}")
    left += [f"flavor {f.name}" for f in admin.compute.flavors() if f.name.startswith(names.FLAVOR_PREFIX)]
    left += [f"network {n.name}" for n in admin.network.networks() if n.name.startswith(names.PREFIX)]
    left += [f"aggregate {a.name}" for a in admin.compute.aggregates() if a.name.startswith(names.PREFIX)]
    return left


# ------------------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("fixture", ["desktop-rtx4090", "server-a100-mig"])
def test_carve_carve_again_status_destroy(fixture, cloud, admin, project, options, requests_seen):
    plan = fit(plan_of(fixture), cloud)
    foreign_net = admin.network.create_network(name=f"not-affordml-{fixture}")
    foreign_flavor = admin.compute.create_flavor(name=f"someone.else.{fixture}", ram=64, vcpus=1, disk=1)
    foreign_zone = admin.compute.create_aggregate(name=f"someone-else-{fixture}", availability_zone="elsewhere")
    try:
        lines: list[str] = []
        ctx = context(project, plan, lines)
        started = time.monotonic()
        first = run_cloud_phase(ctx, options)
        TIMES[f"carve {fixture}"] = time.monotonic() - started
        record = ctx.state.data["cloud"]
        assert set(record["servers"]) == {"cp-1", "worker-1", "worker-2"}
        assert {vm: s["address"] for vm, s in record["servers"].items()} == {
            "cp-1": "10.42.0.10",
            "worker-1": "10.42.0.11",
            "worker-2": "10.42.0.12",
        }
        servers = {s.name: s for s in admin.compute.servers(all_projects=True, project_id=record["project_id"])}
        assert sorted(servers) == ["affordml-cp-1", "affordml-worker-1", "affordml-worker-2"]
        # each VM is reachable from the PC by a floating IP on the external network, on its own port
        reachable = vm_addresses(ctx.state)
        external = cloud.external_network
        assert sorted(reachable) == ["cp-1", "worker-1", "worker-2"] and len(set(reachable.values())) == 3
        assert all(ipaddress.ip_address(a) in ipaddress.ip_network(external.cidr) for a in reachable.values())
        for vm, address in reachable.items():
            [ip] = admin.network.ips(floating_ip_address=address)
            port = admin.network.get_port(ip.port_id)
            assert (port.device_id, port.fixed_ips[0]["ip_address"]) == (
                servers[f"affordml-{vm}"].id,
                record["servers"][vm]["address"],
            )
            assert ip.floating_network_id == external.network_id
        assert all(s.status == "ACTIVE" for s in servers.values())
        gpu_worker = servers["affordml-worker-1"]
        assert gpu_worker.flavor.extra_specs == {"pci_passthrough:alias": f"{cloud_alias()['name']}:1"}
        holders = gpu_holders(cloud)
        assert list(holders.values()).count(gpu_worker.id) == 1, f"the GPU worker holds no GPU: {holders}"
        assert servers["affordml-cp-1"].id not in holders.values()
        image = admin.image.get_image(record["image_id"])
        props = dict(image.properties or {})
        assert (props.get("hw_machine_type", image.hw_machine_type), props.get("hw_firmware_type")) == ("q35", "uefi")
        assert (project.secrets_dir / "clouds.yaml").stat().st_mode & 0o777 == 0o600
        assert (project.secrets_dir / "ssh" / "affordml_ed25519").stat().st_mode & 0o777 == 0o600
        assert (project.secrets_dir / "openstack.yml").stat().st_mode & 0o777 == 0o600
        assert first["changes"], lines
        trusted = assert_host_keys_recorded(admin, project, record)

        before = snapshot(admin, record["project_id"])
        requests_seen.seen.clear()
        started = time.monotonic()
        again = run_cloud_phase(context(project, plan), options)
        TIMES[f"carve again {fixture}"] = time.monotonic() - started
        assert again["changes"] == []
        assert requests_seen.writes == [], requests_seen.writes
        assert requests_seen.seen, "the second run must have asked the API"
        assert snapshot(admin, record["project_id"]) == before
        assert project.known_hosts.read_text() == trusted  # a re-carve of unchanged VMs: no churn

        project.state_file.parent.mkdir(parents=True, exist_ok=True)
        from affordml.phases.state import save_state

        state = State()
        state.data["cloud"] = record
        save_state(project.state_file, state)
        status = project_status(project)["cloud"]
        assert status["source"] == "api", status
        rows = {r["name"]: r for r in status["servers"]}
        assert sorted(rows) == ["affordml-cp-1", "affordml-worker-1", "affordml-worker-2"]
        assert rows["affordml-worker-1"]["gpus"] == 1 and rows["affordml-cp-1"]["gpus"] == 0
        assert rows["affordml-worker-1"]["addresses"] == ["10.42.0.11", reachable["worker-1"]]  # tenant, floating

        shown = cli(project, "status", "--json")
        assert shown.returncode == 0, shown.stderr
        assert [r["name"] for r in json.loads(shown.stdout)["cloud"]["servers"]] == sorted(rows)
        refused = cli(project, "destroy")
        assert refused.returncode == 8 and "--yes-i-really-really-mean-it" in refused.stderr + refused.stdout
        assert len(list(admin.compute.servers(all_projects=True, project_id=record["project_id"]))) == 3
        destroyed = cli(project, "destroy", "--yes-i-really-really-mean-it")
        assert destroyed.returncode == 0, destroyed.stderr
        assert "[destroy] removed project affordml" in destroyed.stdout
        assert "[destroy] removed server affordml-worker-1" in destroyed.stdout
        assert f"[destroy] removed floating IP {reachable['worker-1']}" in destroyed.stdout
        assert our_leftovers(admin) == []
        assert project.known_hosts.read_text() == "" and not list((project.secrets_dir / "ssh" / "hosts").iterdir())
        assert "[destroy] removed host key of worker-1" in destroyed.stdout
        assert admin.network.get_network(foreign_net.id).name == f"not-affordml-{fixture}"
        assert admin.compute.get_flavor(foreign_flavor.id).name == f"someone.else.{fixture}"
        assert admin.compute.get_aggregate(foreign_zone.id).name == f"someone-else-{fixture}"
        assert "[destroy] removed host aggregate affordml-" in destroyed.stdout
        assert cloud.external_network is None or admin.network.get_network(cloud.external_network.network_id)
        offline = project_status(project)["cloud"]
        assert offline["servers"] == []
    finally:
        admin.network.delete_network(foreign_net, ignore_missing=True)
        admin.compute.delete_flavor(foreign_flavor, ignore_missing=True)
        admin.compute.delete_aggregate(foreign_zone, ignore_missing=True)


def test_more_gpus_than_nova_was_given(cloud, admin, project, options):
    """A plan with 3 A6000s against a nova whose device_spec (an older plan) offers 2: nova's API shows no PCI
    devices, so affordml says the plan offers enough on paper and points at what nova really tracks."""
    alias = cloud_alias()["name"]
    wanted = 3
    plan = with_gpus(fit(plan_of("server-a100-mig"), cloud), "worker-1", wanted)
    with pytest.raises(NoValidHost) as error:
        run_cloud_phase(context(project, plan), options)
    line = error.value.one_line()
    print(f"\n[cloud tests] more GPUs than nova was given: {line}")
    assert line.startswith("server affordml-worker-1: nova found no host for it (No valid host): ")
    assert f"the plan offers nova enough free {alias} on paper, so nova's PCI tracker sees fewer" in line
    assert "free the GPU" in line


def test_pci_alias_missing_in_nova(cloud, admin, project, options):
    """The RTX 4090 desktop's own plan (alias gpu) against nova configured for the test PC."""
    plan = plan_of("desktop-rtx4090")
    plan = dataclasses.replace(plan, host=COMPUTE_HOST, vms=[_small(v) for v in plan.vms])
    with pytest.raises(PciAliasMissing) as error:
        run_cloud_phase(context(project, plan), options)
    line = error.value.one_line()
    print(f"\n[cloud tests] PCI alias missing: {line}")
    assert "nova answered 'PCI alias gpu is not defined'" in line
    assert "[pci] alias" in line


def test_plan_change_refused_then_confirmed_and_rules_repaired(cloud, admin, project, options):
    plan = fit(plan_of("server-a100-mig"), cloud)
    ctx = context(project, plan)
    run_cloud_phase(ctx, options)
    old = ctx.state.data["cloud"]["servers"]["worker-2"]["id"]
    group = admin.network.get_security_group(ctx.state.data["cloud"]["security_group_id"])
    ssh = next(r for r in admin.network.security_group_rules(security_group_id=group.id) if r.port_range_min == 22)
    admin.network.delete_security_group_rule(ssh)
    before = {line.split()[-1]: line for line in project.known_hosts.read_text().splitlines()}

    bigger = dataclasses.replace(
        plan,
        vms=[
            dataclasses.replace(v, ram_gib=2, flavor=v.flavor.replace("1g5d", "2g5d")) if v.name == "worker-2" else v
            for v in plan.vms
        ],
    )
    with pytest.raises(ChangeRefused) as error:
        run_cloud_phase(context(project, bigger), options)
    line = error.value.one_line()
    print(f"\n[cloud tests] destructive change: {line}")
    assert (
        "the plan would destroy 1 VM(s) and everything on them — affordml-worker-2: its flavor changes from "
        "affordml.worker.1c1g5d to affordml.worker.1c2g5d" in line
    )
    assert admin.compute.get_server(old).status == "ACTIVE"
    assert not [r for r in admin.network.security_group_rules(security_group_id=group.id) if r.port_range_min == 22]

    lines: list[str] = []
    confirmed = dataclasses.replace(options, confirm=True)
    ctx = context(project, bigger, lines)
    result = run_cloud_phase(ctx, confirmed)
    new = ctx.state.data["cloud"]["servers"]["worker-2"]
    assert new["id"] != old and new["flavor"] == "affordml.worker.1c2g5d" and new["address"] == "10.42.0.12"
    assert any("deleted server affordml-worker-2" in c for c in result["changes"])
    replaced = {line.split()[-1]: line for line in project.known_hosts.read_text().splitlines()}
    assert replaced["affordml-vm=worker-2"] != before["affordml-vm=worker-2"]  # a new VM, a new key; old line gone
    assert {k: v for k, v in replaced.items() if k != "affordml-vm=worker-2"} == {
        k: v for k, v in before.items() if k != "affordml-vm=worker-2"
    }
    assert_host_keys_recorded(admin, project, ctx.state.data["cloud"])
    assert any("allowed tcp 22 from 0.0.0.0/0" in c for c in result["changes"])


def test_carve_creates_its_own_external_network(cloud, admin, project, options, requests_seen):
    """No external network given: affordml creates one on a free flat physnet from the plan's external subnet,
    gateway and floating pool, puts the router's gateway on it, keeps it on a second carve and destroys it."""
    from tests.testbed.openstack.settings import PLATFORM_PHYSNET

    plan = fit(plan_of("desktop-rtx4090"), cloud)
    net_plan = plan.network
    first_ip, last_ip = net_plan["floating_range"].split("-")
    own = dataclasses.replace(options, external_network=None, physical_network=PLATFORM_PHYSNET)
    run_cloud_phase(context(project, plan), own)

    network = admin.network.find_network(names.EXTERNAL_NETWORK)
    assert network is not None and network.is_router_external
    assert (network.provider_network_type, network.provider_physical_network) == ("flat", PLATFORM_PHYSNET)
    subnet = admin.network.find_subnet(names.EXTERNAL_SUBNET, network_id=network.id)
    assert subnet.cidr == net_plan["external_subnet"] and subnet.gateway_ip == net_plan["external_gateway"]
    assert not subnet.is_dhcp_enabled
    assert [(p["start"], p["end"]) for p in subnet.allocation_pools] == [(first_ip, last_ip)]
    router = next(r for r in admin.network.routers() if r.name.startswith(names.PREFIX))
    gateway = router.external_gateway_info
    assert gateway["network_id"] == network.id
    assert gateway["external_fixed_ips"][0]["subnet_id"] == subnet.id

    requests_seen.seen.clear()
    run_cloud_phase(context(project, plan), own)
    assert requests_seen.writes == []

    run_destroy(project, lambda _: None, select_phases(["cloud"]))
    assert admin.network.find_network(names.EXTERNAL_NETWORK) is None
    assert our_leftovers(admin) == []
