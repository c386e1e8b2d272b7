"""The test bed's network-safety guard, on faked ``ip`` output: no network, no root needed."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence

import pytest

from tests.testbed import netsafety
from tests.testbed.netsafety import Route, UnsafeRoute

BRIDGE = "afftb42"
SUBNET = ipaddress.IPv4Network("10.213.42.0/24")
HOST = "10.213.42.11"


def route_json(**entry: object) -> str:
    """What ``ip -j route get`` prints for one route."""
    return json.dumps([{"flags": [], "uid": 0, "cache": [], **entry}])


ON_BRIDGE = route_json(dst=HOST, dev=BRIDGE, prefsrc="10.213.42.1")
VIA_DEFAULT_GATEWAY = route_json(dst=HOST, gateway="192.0.2.1", dev="eth0", prefsrc="192.0.2.2")


class FakeIp:
    """Stands in for the ip command: records calls and answers from a table."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str]) -> str:
        self.calls.append(list(args))
        return self.answer


def test_parse_reads_device_gateway_and_type() -> None:
    assert netsafety.parse_route_get(VIA_DEFAULT_GATEWAY) == Route(HOST, "eth0", "192.0.2.1", "unicast")
    local = route_json(type="local", dst="10.213.42.1", dev="lo")
    assert netsafety.parse_route_get(local).route_type == "local"


@pytest.mark.parametrize("output", ["", "not json", "[]", json.dumps([{}, {}]), json.dumps({"dst": HOST})])
def test_parse_refuses_anything_but_exactly_one_route(output: str) -> None:
    with pytest.raises(UnsafeRoute):
        netsafety.parse_route_get(output)


def test_direct_route_through_the_bridge_is_accepted() -> None:
    fake = FakeIp(ON_BRIDGE)
    assert netsafety.check_route(HOST, BRIDGE, SUBNET, run=fake).device == BRIDGE
    assert fake.calls == [["-j", "route", "get", HOST]]


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (VIA_DEFAULT_GATEWAY, "gateway"),
        (route_json(dst=HOST, dev="eth0"), "not the test bridge"),
        (route_json(dst=HOST, dev=BRIDGE, gateway="10.213.42.1"), "gateway"),
        (route_json(type="unreachable", dst=HOST), "unreachable"),
        (route_json(type="local", dst=HOST, dev="lo"), "local"),
        (route_json(dst="10.213.42.12", dev=BRIDGE), "not 10.213.42.11"),
    ],
)
def test_route_that_is_not_straight_out_of_the_bridge_is_refused(output: str, reason: str) -> None:
    with pytest.raises(UnsafeRoute, match=reason):
        netsafety.check_route(HOST, BRIDGE, SUBNET, run=FakeIp(output))


@pytest.mark.parametrize("address", ["192.0.2.10", "10.213.43.11", "8.8.8.8", "node1", "fd00::1", ""])
def test_address_outside_the_subnet_is_refused_without_asking_the_kernel(address: str) -> None:
    fake = FakeIp(ON_BRIDGE)
    with pytest.raises(UnsafeRoute):
        netsafety.check_route(address, BRIDGE, SUBNET, run=fake)
    assert fake.calls == []


def test_subnet_outside_the_test_bed_range_is_refused() -> None:
    with pytest.raises(UnsafeRoute):
        netsafety.check_route("192.0.2.10", BRIDGE, ipaddress.IPv4Network("192.0.2.0/24"), run=FakeIp(ON_BRIDGE))


def test_route_is_asked_inside_the_given_namespace() -> None:
    fake = FakeIp(route_json(dst=HOST, dev="eth0"))
    netsafety.check_route(HOST, "eth0", SUBNET, netns="afftb42-h2", run=fake)
    assert fake.calls == [["-n", "afftb42-h2", "-j", "route", "get", HOST]]


def test_failing_ip_command_is_unsafe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(UnsafeRoute):
        netsafety.run_ip(["-j", "route", "get", HOST])


def test_retry_checks_the_route_before_every_attempt() -> None:
    events: list[str] = []
    answers = iter([None, None, "up"])

    def attempt() -> str | None:
        events.append("attempt")
        return next(answers)

    result = netsafety.guarded_retry(attempt, lambda: events.append("check"), 5, 10.0, delay_s=0)
    assert result == "up"
    assert events == ["check", "attempt"] * 3


def test_retry_stops_at_the_first_unsafe_route_without_attempting() -> None:
    attempts: list[int] = []

    def unsafe() -> None:
        raise UnsafeRoute("route leaves through eth0")

    with pytest.raises(UnsafeRoute):
        netsafety.guarded_retry(lambda: attempts.append(1), unsafe, 5, 10.0, delay_s=0)
    assert attempts == []


def test_retry_is_bounded_in_attempts() -> None:
    attempts: list[int] = []
    with pytest.raises(TimeoutError):
        netsafety.guarded_retry(lambda: attempts.append(1), lambda: None, 4, 60.0, delay_s=0)
    assert len(attempts) == 4


def test_retry_is_bounded_in_time() -> None:
    attempts: list[int] = []
    with pytest.raises(TimeoutError):
        netsafety.guarded_retry(lambda: attempts.append(1), lambda: None, 1000, 0.05, delay_s=0.02)
    assert len(attempts) < 10


def test_subnet_candidates_are_distinct_24s_in_the_range() -> None:
    for seed in (0, 1, 253, 254, 4242, 2**22 + 7):
        candidates = netsafety.subnet_candidates(seed)
        assert len(set(candidates)) == len(candidates) == netsafety.SUBNET_CANDIDATES
        for subnet in candidates:
            assert subnet.prefixlen == 24 and subnet.subnet_of(netsafety.TESTBED_RANGE)
            assert subnet.network_address.packed[2] not in (0, 255)


def test_overlapping_routes_ignore_default_and_find_covering_or_exact_routes() -> None:
    routes = json.dumps(
        [
            {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
            {"dst": "192.0.2.0/24", "dev": "eth0"},
            {"dst": "10.0.0.0/8", "dev": "tun0"},
            {"dst": "10.213.42.0/24", "dev": "br0"},
            {"dst": "fd00::/64", "dev": "br0"},
        ]
    )
    assert netsafety.overlapping_routes(SUBNET, routes) == ["10.0.0.0/8 dev tun0", "10.213.42.0/24 dev br0"]


def test_overlapping_addresses_find_interface_addresses_in_the_subnet() -> None:
    links = json.dumps(
        [
            {"ifname": "eth0", "addr_info": [{"family": "inet", "local": "192.0.2.2"}]},
            {
                "ifname": "br9",
                "addr_info": [{"family": "inet6", "local": "fe80::1"}, {"family": "inet", "local": "10.213.42.1"}],
            },
        ]
    )
    assert netsafety.overlapping_addresses(SUBNET, links) == ["10.213.42.1 on br9"]


def fake_machine(taken: set[str]) -> FakeIp:
    """An ip command that reports a route for every subnet in taken, plus a default route."""
    routes = [{"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"}]
    routes += [{"dst": subnet, "dev": "other0"} for subnet in taken]

    class Machine(FakeIp):
        def __call__(self, args: Sequence[str]) -> str:
            self.calls.append(list(args))
            return json.dumps(routes) if "route" in args else "[]"

    return Machine("")


def test_pick_free_subnet_skips_subnets_already_routed() -> None:
    first, second = netsafety.subnet_candidates(7)[:2]
    assert netsafety.pick_free_subnet(7, run=fake_machine({str(first)})) == second


def test_pick_free_subnet_refuses_when_the_whole_range_is_routed() -> None:
    with pytest.raises(netsafety.SubnetTaken):
        netsafety.pick_free_subnet(7, run=fake_machine({"10.213.0.0/16"}))
