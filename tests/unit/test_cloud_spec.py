"""The cloud phase's pure parts: what the plan asks the cloud for, and the refusal of destructive changes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from affordml.cloud import names
from affordml.cloud.carve import Carver, CloudOptions
from affordml.cloud.faults import ChangeRefused
from affordml.cloud.spec import PCI_ALIAS_SPEC, ExternalSpec, cloud_spec, subnet_spec, user_data
from affordml.config.model import Config
from affordml.facts.parse import facts_from_snapshot
from affordml.facts.sources import load_snapshot_file
from affordml.plan.build import make_plan
from affordml.versions import load_lock, version_table

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hardware"


def plan_of(fixture: str):
    facts = facts_from_snapshot(load_snapshot_file(FIXTURES / f"{fixture}.json"))
    return make_plan(facts, Config(), version_table(load_lock()))


def test_desktop_spec():
    spec = cloud_spec(plan_of("desktop-rtx4090"))
    assert [s.name for s in spec.servers] == ["affordml-cp-1", "affordml-worker-1", "affordml-worker-2"]
    assert [s.address for s in spec.servers] == ["10.42.0.10", "10.42.0.11", "10.42.0.12"]
    gpu = spec.flavor("affordml.worker.16c29g400d.gpu1")
    assert gpu.extra_specs == {PCI_ALIAS_SPEC: "gpu:1"}  # the audio function is never asked of nova
    assert gpu.ram_mib == 29 * 1024 and gpu.vcpus == 16 and gpu.disk_gib == 400
    assert spec.flavor("affordml.control-plane.4c8g60d").extra_specs == {}
    assert spec.gpu_image
    assert spec.quota_needs() == {"instances": 3, "cores": 28, "ram": (8 + 29 + 14) * 1024}
    assert spec.external == ExternalSpec("172.24.4.0/24", "172.24.4.1", ("172.24.4.2", "172.24.4.9"))


def test_a100_spec_has_one_gpu_alias():
    spec = cloud_spec(plan_of("server-a100-mig"))
    assert [s.pci_spec for s in spec.servers] == [None, "gpu:1", None]


def test_subnet_keeps_fixed_addresses_out_of_dhcp():
    subnet = subnet_spec("10.42.0.0/24", 3)
    assert subnet.gateway_ip == "10.42.0.1"
    assert subnet.allocation_pools == (("10.42.0.2", "10.42.0.9"), ("10.42.0.26", "10.42.0.254"))
    small = subnet_spec("10.42.0.0/28", 3)
    assert small.allocation_pools == (("10.42.0.2", "10.42.0.9"),)


def test_security_rules_cover_ssh_api_nodeports_and_the_group():
    described = {r.describe() for r in cloud_spec(plan_of("desktop-rtx4090")).rules}
    assert described == {
        "tcp 22 from 0.0.0.0/0",
        "tcp 6443 from 0.0.0.0/0",
        "tcp 30000-32767 from 0.0.0.0/0",
        "icmp from 0.0.0.0/0",
        "all traffic from the group",
    }


def test_user_data_is_cloud_config():
    server = cloud_spec(plan_of("desktop-rtx4090")).servers[1]
    text = user_data(server)
    assert text.startswith("#cloud-config\n") and "hostname: worker-1" in text and "gpus=0000:01:00.0" in text


def test_package_and_phase_import_no_openstacksdk():
    code = (
        "import sys, affordml.cli.main, affordml.cloud, affordml.cloud.phase, affordml.cloud.inventory, "
        "affordml.status; "
        "assert 'openstack' not in sys.modules, 'openstacksdk imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _server(name, flavor, status="ACTIVE"):
    return SimpleNamespace(name=name, status=status, flavor=SimpleNamespace(original_name=flavor), metadata={})


def _port(vm, address):
    return SimpleNamespace(name=names.port_name(vm), fixed_ips=[{"ip_address": address}])


def test_changed_flavor_and_dropped_vm_are_refused_without_confirmation():
    plan = plan_of("desktop-rtx4090")
    spec = cloud_spec(plan)
    existing = {
        "affordml-cp-1": _server("affordml-cp-1", "affordml.control-plane.4c8g60d"),
        "affordml-worker-1": _server("affordml-worker-1", "affordml.worker.8c16g200d.gpu1"),
        "affordml-worker-2": _server("affordml-worker-2", "affordml.worker.8c14g400d"),
        "affordml-worker-3": _server("affordml-worker-3", "affordml.worker.8c14g400d"),
    }
    ports = {names.port_name(s.vm): _port(s.vm, s.address) for s in spec.servers}
    carver = Carver(None, spec, CloudOptions(), lambda _: None)
    with pytest.raises(ChangeRefused) as refused:
        carver.check_destructive(existing, ports)
    line = refused.value.one_line()
    assert "the plan would destroy 2 VM(s) and everything on them" in line
    assert "affordml-worker-1: its flavor changes from affordml.worker.8c16g200d.gpu1" in line
    assert "affordml-worker-3: it is no longer in the plan" in line
    assert "--yes-i-really-really-mean-it" in line
    confirmed = Carver(None, spec, CloudOptions(confirm=True), lambda _: None)
    assert [n for n, _ in confirmed.check_destructive(existing, ports)] == ["affordml-worker-1", "affordml-worker-3"]


def test_unchanged_servers_are_kept():
    spec = cloud_spec(plan_of("server-a100-mig"))
    existing = {s.name: _server(s.name, s.flavor) for s in spec.servers}
    ports = {names.port_name(s.vm): _port(s.vm, s.address) for s in spec.servers}
    assert Carver(None, spec, CloudOptions(), print).check_destructive(existing, ports) == []


def test_moved_address_is_refused():
    spec = cloud_spec(plan_of("server-a100-mig"))
    existing = {s.name: _server(s.name, s.flavor) for s in spec.servers}
    ports = {names.port_name(s.vm): _port(s.vm, s.address) for s in spec.servers}
    ports[names.port_name("cp-1")] = _port("cp-1", "10.42.0.99")
    with pytest.raises(ChangeRefused, match="its address changes from 10.42.0.99 to 10.42.0.10"):
        Carver(None, spec, CloudOptions(), print).check_destructive(existing, ports)


def test_flavors_shared_by_equal_vms_are_created_once():
    plan = plan_of("server-a100-mig")
    twin = dataclasses.replace(plan.vms[2], name="worker-3")
    spec = cloud_spec(dataclasses.replace(plan, vms=[*plan.vms, twin]))
    assert len(spec.flavors) == 3 and len(spec.servers) == 4


class FakeNetworkApi:
    """The few calls of openstacksdk's network proxy that ensure_external_network makes, recorded."""

    def __init__(self, subnet=None) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.network = SimpleNamespace(id="net-1", name=names.EXTERNAL_NETWORK, is_router_external=True)
        self.subnet = subnet

    def find_network(self, name):
        self.calls.append(("find_network", {"name": name}))
        return self.network if self.subnet else None  # a fresh cloud has neither

    def create_network(self, **kwargs):
        self.calls.append(("create_network", kwargs))
        return self.network

    def set_tags(self, resource, tags):
        self.calls.append(("set_tags", {"tags": tags}))

    def find_subnet(self, name, network_id):
        self.calls.append(("find_subnet", {"name": name}))
        return self.subnet

    def create_subnet(self, **kwargs):
        self.calls.append(("create_subnet", kwargs))

    def update_subnet(self, subnet, **kwargs):
        self.calls.append(("update_subnet", kwargs))


def carver_with(api: FakeNetworkApi, fixture: str = "one-nic-pc") -> Carver:
    return Carver(SimpleNamespace(network=api), cloud_spec(plan_of(fixture)), CloudOptions(), lambda _: None)


def test_external_subnet_gets_the_plans_gateway_and_floating_range_without_dhcp():
    api = FakeNetworkApi()
    carver_with(api).ensure_external_network()
    [subnet] = [kwargs for call, kwargs in api.calls if call == "create_subnet"]
    assert subnet["cidr"] == "172.24.4.0/24" and subnet["gateway_ip"] == "172.24.4.1"
    assert subnet["allocation_pools"] == [{"start": "172.24.4.2", "end": "172.24.4.9"}]
    assert subnet["is_dhcp_enabled"] is False
    [network] = [kwargs for call, kwargs in api.calls if call == "create_network"]
    assert network["provider_network_type"] == "flat" and network["is_router_external"] is True


def test_existing_external_subnet_follows_the_plans_gateway_and_range():
    pools = [{"start": "172.24.4.2", "end": "172.24.4.9"}]
    same = SimpleNamespace(id="sub-1", cidr="172.24.4.0/24", gateway_ip="172.24.4.1", allocation_pools=pools)
    api = FakeNetworkApi(same)
    carver = carver_with(api)
    carver.ensure_external_network()
    assert [c for c, _ in api.calls if c.startswith(("create", "update"))] == [] and carver.out.changes == []
    older = SimpleNamespace(id="sub-1", cidr="172.24.4.0/24", gateway_ip="172.24.4.254", allocation_pools=[])
    api = FakeNetworkApi(older)
    carver_with(api).ensure_external_network()
    assert ("update_subnet", {"gateway_ip": "172.24.4.1", "allocation_pools": pools}) in api.calls
