"""Facts of the plan that more than one engine needs: each VM's fixed address in the VM subnet (pure)."""

from __future__ import annotations

import ipaddress

from affordml.plan.model import Plan

FIRST_VM_HOST = 10  # VMs get fixed addresses from .10 of the VM subnet


def vm_addresses(plan: Plan) -> dict[str, str]:
    net = ipaddress.ip_network(plan.network["vm_subnet"])
    return {vm.name: str(net.network_address + FIRST_VM_HOST + i) for i, vm in enumerate(plan.vms)}
