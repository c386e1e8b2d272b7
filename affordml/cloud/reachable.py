"""The address by which this PC reaches each VM, for the phases after the cloud phase (pure: reads the state).

The VMs' tenant addresses sit behind the platform's router and the PC has no route to them; the cloud phase gives
each VM a floating IP on the external network and records it. Kubespray connects there (`ansible_host`), while
the nodes keep their tenant addresses among themselves (`ip`, `access_ip`).
"""

from __future__ import annotations

from affordml.errors import RunError


class NotCarved(RunError):
    """The cloud phase has not recorded reachable addresses."""

    label = "cloud"


def vm_addresses(state) -> dict[str, str]:
    """{vm name: floating IP} from the cloud phase's record; `state` is a State or its `data` dict."""
    data = getattr(state, "data", state) or {}
    servers = (data.get("cloud") or {}).get("servers") or {}
    if not servers:
        raise NotCarved(
            "the cloud phase has recorded no VMs", "run `affordml init` (or `affordml init phase cloud`) first"
        )
    missing = sorted(vm for vm, server in servers.items() if not server.get("floating_ip"))
    if missing:
        raise NotCarved(
            f"no floating IP recorded for {', '.join(missing)}: the PC cannot reach their tenant addresses",
            "run `affordml init phase cloud` again: it gives every VM a floating IP",
        )
    return {vm: str(server["floating_ip"]) for vm, server in sorted(servers.items())}
