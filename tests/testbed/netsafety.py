"""Network-safety guard for the test bed: traffic may only go to hosts behind our own bridge.

Before any connection to a test host, ``ip route get`` must say the packet leaves through the test bed's
bridge, directly (no gateway), to an address inside the test bed's subnet. Anything else raises UnsafeRoute.
Retry loops are bounded in attempts and in time, and check the route again before every attempt.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

# All test bed subnets are /24s inside this range.
TESTBED_RANGE = ipaddress.IPv4Network("10.213.0.0/16")
SUBNET_CANDIDATES = 16

T = TypeVar("T")
Runner = Callable[[Sequence[str]], str]


class UnsafeRoute(RuntimeError):
    """A connection would not stay on the test bed's bridge: refuse it."""


class SubnetTaken(RuntimeError):
    """No test bed subnet is free of existing routes on this machine."""


@dataclass(frozen=True)
class Route:
    """The kernel's answer to ``ip route get``: the device, gateway and type of the route."""

    destination: str
    device: str | None
    gateway: str | None
    route_type: str


def run_ip(args: Sequence[str]) -> str:
    """Run the ip command and return its standard output; raise UnsafeRoute when it fails."""
    try:
        result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UnsafeRoute(f"ip {' '.join(args)} could not run: {error}") from error
    if result.returncode != 0:
        raise UnsafeRoute(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def parse_route_get(output: str) -> Route:
    """Parse the JSON output of ``ip -j route get ADDR``; raise UnsafeRoute on anything unexpected."""
    try:
        entries = json.loads(output)
    except json.JSONDecodeError as error:
        raise UnsafeRoute(f"unreadable route: {output!r}") from error
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        raise UnsafeRoute(f"expected exactly one route, got: {output!r}")
    entry = entries[0]
    return Route(
        destination=str(entry.get("dst", "")),
        device=entry.get("dev"),
        gateway=entry.get("gateway"),
        route_type=str(entry.get("type", "unicast")),
    )


def route_get_command(address: str, netns: str | None = None) -> list[str]:
    """The ip arguments that ask the kernel for the route to address, inside netns if given."""
    prefix = ["-n", netns] if netns else []
    return [*prefix, "-j", "route", "get", address]


def check_route(
    address: str,
    bridge: str,
    subnet: ipaddress.IPv4Network,
    netns: str | None = None,
    run: Runner = run_ip,
) -> Route:
    """Raise UnsafeRoute unless address is in subnet and the kernel routes it straight out of bridge."""
    ip = _parse_address(address)
    if ip not in subnet or not subnet.subnet_of(TESTBED_RANGE):
        raise UnsafeRoute(f"{address} is outside the test bed subnet {subnet}")
    route = parse_route_get(run(route_get_command(str(ip), netns)))
    problem = route_problem(route, str(ip), bridge)
    if problem:
        raise UnsafeRoute(f"refusing to connect to {address}: {problem}")
    return route


def route_problem(route: Route, address: str, bridge: str) -> str | None:
    """Explain why the route is not a direct route through bridge, or None when it is."""
    if route.route_type != "unicast":
        return f"route type is {route.route_type}, not unicast"
    if route.destination != address:
        return f"route is for {route.destination}, not {address}"
    if route.gateway is not None:
        return f"route goes through gateway {route.gateway}"
    if route.device != bridge:
        return f"route leaves through {route.device}, not the test bridge {bridge}"
    return None


def _parse_address(address: str) -> ipaddress.IPv4Address:
    """Parse an IPv4 address; raise UnsafeRoute for anything else (names, IPv6)."""
    try:
        return ipaddress.IPv4Address(address)
    except ValueError as error:
        raise UnsafeRoute(f"not an IPv4 address: {address!r}") from error


def guarded_retry(
    attempt: Callable[[], T | None],
    check: Callable[[], object],
    max_attempts: int,
    deadline_s: float,
    delay_s: float = 0.2,
    what: str = "attempt",
) -> T:
    """Call check then attempt until attempt returns non-None, within max_attempts and deadline_s.

    check must raise (UnsafeRoute) to abort; it runs before every attempt.
    """
    deadline = time.monotonic() + deadline_s
    for _ in range(max_attempts):
        check()
        result = attempt()
        if result is not None:
            return result
        if time.monotonic() + delay_s > deadline:
            break
        time.sleep(delay_s)
    raise TimeoutError(f"{what} did not succeed within {max_attempts} attempts or {deadline_s:.0f} s")


def subnet_candidates(seed: int, count: int = SUBNET_CANDIDATES) -> list[ipaddress.IPv4Network]:
    """Distinct /24s inside TESTBED_RANGE derived from seed (e.g. the pid), never .0 or .255."""
    subnets = list(TESTBED_RANGE.subnets(new_prefix=24))[1:-1]
    return [subnets[(seed + offset) % len(subnets)] for offset in range(count)]


def overlapping_routes(subnet: ipaddress.IPv4Network, routes_json: str) -> list[str]:
    """Routes (from ``ip -j route show table all``) whose destination overlaps subnet, default excepted."""
    overlaps = []
    for entry in json.loads(routes_json or "[]"):
        destination = entry.get("dst", "")
        if destination == "default":
            continue
        try:
            network = ipaddress.ip_network(destination, strict=False)
        except ValueError:
            overlaps.append(f"unparseable route {destination!r}")
            continue
        if network.version == 4 and network.overlaps(subnet):
            overlaps.append(f"{destination} dev {entry.get('dev')}")
    return overlaps


def overlapping_addresses(subnet: ipaddress.IPv4Network, addresses_json: str) -> list[str]:
    """Interface addresses (from ``ip -j addr show``) that fall inside subnet."""
    found = []
    for link in json.loads(addresses_json or "[]"):
        for info in link.get("addr_info", []):
            if info.get("family") != "inet":
                continue
            if ipaddress.IPv4Address(info["local"]) in subnet:
                found.append(f"{info['local']} on {link.get('ifname')}")
    return found


def subnet_conflicts(subnet: ipaddress.IPv4Network, run: Runner = run_ip) -> list[str]:
    """Everything on this machine that already uses subnet: routes in any table and interface addresses."""
    routes = overlapping_routes(subnet, run(["-j", "-4", "route", "show", "table", "all"]))
    return routes + overlapping_addresses(subnet, run(["-j", "-4", "addr", "show"]))


def pick_free_subnet(seed: int, run: Runner = run_ip) -> ipaddress.IPv4Network:
    """The first candidate /24 for seed that nothing on this machine uses; raise SubnetTaken otherwise."""
    refused = {}
    for subnet in subnet_candidates(seed):
        conflicts = subnet_conflicts(subnet, run)
        if not conflicts:
            return subnet
        refused[str(subnet)] = conflicts
    raise SubnetTaken(f"every candidate test bed subnet is in use: {refused}")
