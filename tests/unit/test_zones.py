"""The zone plan (pure): one availability zone per PC under nova's rules, and what the carve does with it."""

from __future__ import annotations

import pytest

from affordml.cloud.carve import Carver, CloudOptions
from affordml.cloud.faults import CloudError
from affordml.cloud.spec import ZoneSpec
from affordml.cloud.zones import Aggregate, ZoneStep, ensure_zones, plan_zones

FIRST = ZoneSpec("affordml-pc1", "box1", "pc1", first=True)
ADDED = ZoneSpec("affordml-pc2", "box2", "pc2")
BOTH = (FIRST, ADDED)
HOSTS = {"box1", "box2"}


def steps(zones=BOTH, aggregates=(), instances=None, hosts=HOSTS) -> dict[str, ZoneStep]:
    return {s.zone.config_host: s for s in plan_zones(zones, hosts, list(aggregates), instances or {})}


def test_new_platform_makes_each_pcs_zone_before_its_first_vm():
    plan = steps()
    assert [(s.create, s.add_host, s.effective, s.kept) for s in plan.values()] == [
        (True, True, "affordml-pc1", ""),
        (True, True, "affordml-pc2", ""),
    ]


def test_zones_in_place_change_nothing():
    aggregates = [
        Aggregate("affordml-pc1", "affordml-pc1", ("box1",)),
        Aggregate("affordml-pc2", "affordml-pc2", ("box2",)),
    ]
    plan = steps(aggregates=aggregates, instances={"box1": 3, "box2": 1})
    assert all(not s.create and not s.add_host and not s.kept for s in plan.values())
    assert {s.effective for s in plan.values()} == {"affordml-pc1", "affordml-pc2"}


def test_first_pc_holding_instances_without_zone_is_kept_and_its_vms_ask_for_none():
    """A platform carved before the first PC had a zone: nova refuses to move its compute into one."""
    plan = steps(aggregates=[Aggregate("affordml-pc2", "affordml-pc2", ("box2",))], instances={"box1": 3})
    first = plan["pc1"]
    assert (first.create, first.add_host, first.effective) == (False, False, None)
    assert "holds 3 instance(s)" in first.kept and "may land on another PC" in first.kept
    assert "`affordml destroy --only cloud`" in first.kept and "\n" not in first.kept
    assert plan["pc2"].effective == "affordml-pc2" and not plan["pc2"].add_host


def test_one_pc_platform_with_instances_says_it_matters_only_later():
    kept = steps(zones=(FIRST,), instances={"box1": 2})["pc1"].kept
    assert "matters only once another PC is added" in kept


def test_empty_aggregate_of_ours_gains_the_host_once_the_compute_is_empty():
    plan = steps(zones=(FIRST,), aggregates=[Aggregate("affordml-pc1", "affordml-pc1", ())])
    assert (plan["pc1"].create, plan["pc1"].add_host, plan["pc1"].effective) == (False, True, "affordml-pc1")


def test_host_in_someone_elses_zone_stays_there_and_its_vms_use_it():
    """One zone per host: the PC's VMs ask for the zone nova already has it in."""
    aggregates = [Aggregate("office", "office", ("box1",)), Aggregate("fast-disks", None, ("box1", "box2"))]
    plan = steps(aggregates=aggregates, instances={"box2": 0})
    assert (plan["pc1"].create, plan["pc1"].add_host, plan["pc1"].effective) == (False, False, "office")
    assert "stays in availability zone office" in plan["pc1"].kept
    assert plan["pc2"].create and plan["pc2"].effective == "affordml-pc2"  # an aggregate without zone is no zone


def test_zone_shared_with_another_pc_pins_nothing():
    plan = steps(aggregates=[Aggregate("office", "office", ("box1", "box2"))])
    assert plan["pc1"].effective is None and plan["pc2"].effective is None
    assert "also holds box2" in plan["pc1"].kept


@pytest.mark.parametrize(
    ("aggregate", "words"),
    [
        (Aggregate("affordml-pc1", "elsewhere", ("box1",)), "exists with availability zone 'elsewhere'"),
        (Aggregate("affordml-pc1", "affordml-pc1", ("box1", "box2")), "holds compute host(s) box2 besides"),
    ],
)
def test_our_aggregate_changed_by_hand_is_refused_in_one_line(aggregate, words):
    with pytest.raises(CloudError) as caught:
        steps(aggregates=[aggregate])
    assert words in caught.value.one_line() and "\n" not in caught.value.one_line()


@pytest.mark.parametrize(("zone", "fix"), [(FIRST, "affordml init"), (ADDED, "affordml add-node pc2")])
def test_pc_without_nova_compute_is_refused_with_its_fix(zone, fix):
    with pytest.raises(CloudError) as caught:
        steps(zones=(zone,), hosts={"other"})
    line = caught.value.one_line()
    assert f"nova has no compute service on host {zone.compute_host!r}" in line and fix in line


class _Compute:
    """Records the admin calls ensure_zones makes; answers like nova with the state it was given."""

    def __init__(self, aggregates, instances):
        self.found = aggregates
        self.instances = instances
        self.calls = []

    def services(self, binary):
        return [type("Service", (), {"host": h}) for h in sorted(HOSTS)]

    def aggregates(self):
        return self.found

    def servers(self, details, all_projects, compute_host):
        self.calls.append(("servers", compute_host))
        return iter(range(self.instances.get(compute_host, 0)))

    def create_aggregate(self, name, availability_zone):
        self.calls.append(("create", name, availability_zone))
        return type("Aggregate", (), {"name": name})

    def set_aggregate_metadata(self, aggregate, metadata):
        self.calls.append(("mark", aggregate.name, metadata))

    def add_host_to_aggregate(self, aggregate, host):
        self.calls.append(("add", aggregate.name, host))


def _found(name, zone, hosts):
    return type("Aggregate", (), {"name": name, "availability_zone": zone, "hosts": list(hosts)})


def test_ensure_zones_asks_nova_only_about_unzoned_hosts_and_says_what_it_kept():
    compute = _Compute([_found("affordml-pc2", "affordml-pc2", ["box2"])], {"box1": 3})
    spec = type("Spec", (), {"zones": BOTH})
    lines: list[str] = []
    carver = Carver(type("Admin", (), {"compute": compute}), spec, CloudOptions(), lines.append)
    carver.call = lambda _action, fn, *args, **kwargs: fn(*args, **kwargs)
    assert ensure_zones(carver) == {"affordml-pc1": None, "affordml-pc2": "affordml-pc2"}
    assert compute.calls == [("servers", "box1")] and carver.out.changes == []
    assert len(lines) == 1 and lines[0].startswith("[cloud] kept: pc1's compute host box1 holds 3 instance(s)")


def test_ensure_zones_creates_then_adds_on_a_new_platform():
    compute = _Compute([], {})
    carver = Carver(
        type("Admin", (), {"compute": compute}), type("Spec", (), {"zones": (FIRST,)}), CloudOptions(), print
    )
    carver.call = lambda _action, fn, *args, **kwargs: fn(*args, **kwargs)
    assert ensure_zones(carver) == {"affordml-pc1": "affordml-pc1"}
    assert compute.calls == [
        ("servers", "box1"),
        ("create", "affordml-pc1", "affordml-pc1"),
        ("mark", "affordml-pc1", {"affordml": "1"}),
        ("add", "affordml-pc1", "box1"),
    ]
    assert carver.out.changes == [
        "created host aggregate affordml-pc1 (availability zone affordml-pc1)",
        "host aggregate affordml-pc1: added pc1's compute host box1",
    ]
