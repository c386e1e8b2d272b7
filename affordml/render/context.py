"""Plan + config + version lock -> the values every template sees (pure)."""

from __future__ import annotations

import hashlib
import json
import re

from affordml import __version__
from affordml.config.model import Config
from affordml.ml.hub import render_context as hub_render_context
from affordml.ml.queue_objects import kueue_context
from affordml.ml.serving import sample_context
from affordml.plan.addresses import vm_addresses
from affordml.plan.build import flavor_pci_spec
from affordml.plan.model import GpuAssignment, Plan

KUBE_PODS_SUBNET = "10.233.64.0/18"
KUBE_SERVICE_SUBNET = "10.233.0.0/18"


def plan_hash(plan: Plan) -> str:
    return hashlib.sha256(json.dumps(plan.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]


def build_context(plan: Plan, config: Config, lock: dict) -> dict:
    addresses = vm_addresses(plan)
    return {
        "affordml_version": __version__,
        "plan_hash": plan_hash(plan),
        "plan": plan,
        "network": plan.network,
        "hosts": [h.model_dump() | {"is_local": h.is_local, "vars": host_vars(plan, h.name)} for h in config.hosts],
        "vms": [_vm(vm, addresses[vm.name], plan) for vm in plan.vms],
        "lock": lock,
        "kolla": _kolla(plan, lock),
        "kube": {
            "version": lock["kubernetes"]["version"],
            "pods_subnet": KUBE_PODS_SUBNET,
            "service_subnet": KUBE_SERVICE_SUBNET,
            "cluster_name": "cluster.local",
        },
        "gpu_nodes": gpu_nodes(plan),
        "jupyter_profiles": jupyter_profiles(plan),
        **hub_render_context(),
        "queue_resources": queue_resources(plan),
        "kueue": kueue_context(plan, lock["kubernetes"]["version"]),
        "ml": plan.ml,
        "sample": sample_context(plan, config),
    }


def host_vars(plan: Plan, host: str) -> dict:
    """What the host role needs of one PC's own plan: its GPUs' vfio binding and its NICs. A PC added with
    `affordml add-node` has its own; every other PC gets the first PC's (a compute PC has no external network)."""
    node = next((n for n in plan.nodes if n.host == host), None)
    if node is None:
        gpus = [g for g in plan.gpus if plan.node_of_vm(g.vm) is None]
        return {
            "vfio_ids": list(plan.vfio_ids),
            "vfio_addresses": list(plan.vfio_addresses),
            "vfio_roles": _roles(gpus),
            "gpu_addresses": [g.address for g in gpus],
            "management_interface": plan.network["management_interface"],
            "external_created": plan.network["external_created"] == "yes",
            "external_nat": plan.network["external_nat"] == "yes",
        }
    return {
        "vfio_ids": list(node.vfio_ids),
        "vfio_addresses": list(node.vfio_addresses),
        "vfio_roles": _roles(list(node.gpus)),
        "gpu_addresses": [g.address for g in node.gpus],
        "management_interface": node.management_interface,
        "external_created": False,
        "external_nat": False,
    }


def _roles(gpus: list[GpuAssignment]) -> list[str]:
    return sorted({f.role for g in gpus for f in g.functions})


def _vm(vm, address: str, plan: Plan) -> dict:
    return {
        "name": vm.name,
        "role": vm.role,
        "flavor": vm.flavor,
        "vcpus": vm.vcpus,
        "ram_gib": vm.ram_gib,
        "disk_gib": vm.disk_gib,
        "address": address,
        "gpus": list(vm.gpus),
        "pci_alias_spec": flavor_pci_spec(vm, plan),
        "maxphysaddr_bits": vm.maxphysaddr_bits,
    }


def _kolla(plan: Plan, lock: dict) -> dict:
    return {
        "openstack_release": lock["kolla_ansible"]["openstack_release"],
        "base_distro": lock["kolla_ansible"].get("kolla_base_distro", "ubuntu"),
        "device_specs": [json.dumps(spec) for spec in plan.nova_device_specs],
        "aliases": [json.dumps(a) for a in plan.nova_aliases],
    }


def gpu_nodes(plan: Plan) -> list[dict]:
    """One entry per GPU VM: its device-plugin config key, labels and the plugin config it needs."""
    nodes = []
    for vm in plan.vms:
        gpus = [g for g in plan.gpus if g.vm == vm.name]
        if not gpus:
            continue
        mode = gpus[0].sharing  # the plan gives the GPUs of one VM one mode
        nodes.append(
            {
                "name": vm.name,
                "mode": mode.mode,
                "config_key": f"{vm.name}-{mode.mode}",
                "replicas": mode.replicas,
                "mig_layout": mode.mig_layout,
                "labels": _labels(vm.name, mode),
                "gpus": [g.address for g in gpus],
            }
        )
    return nodes


def _labels(vm: str, sharing) -> dict[str, str]:
    labels = {"nvidia.com/device-plugin.config": f"{vm}-{sharing.mode}", "affordml.io/gpu-sharing": sharing.mode}
    if sharing.mode == "mig":
        labels["nvidia.com/mig.config"] = sharing.mig_layout
    if sharing.mode == "hami":
        labels["gpu"] = "on"
        labels["nvidia.com/gpu.deploy.device-plugin"] = "false"
    return labels


def jupyter_profiles(plan: Plan) -> list[dict]:
    """Notebook profiles matching the planned GPU slots, plus a CPU-only one."""
    profiles = [
        {
            "display_name": "CPU only",
            "slug": "cpu",
            "description": "2 CPUs, 4 GiB RAM, no GPU",
            "default": True,
            "limits": {},
        }
    ]
    seen = set()
    for gpu in plan.gpus:
        for profile in _gpu_profiles(gpu):
            if profile["slug"] not in seen:
                seen.add(profile["slug"])
                profiles.append(profile)
    return profiles


def _gpu_profiles(gpu: GpuAssignment) -> list[dict]:
    s = gpu.sharing
    short = gpu.name.removeprefix("NVIDIA ").removeprefix("GeForce ")
    slug = re.sub(r"[^a-z0-9]+", "-", short.lower().replace(".", "")).strip("-")  # a DNS label, whatever the name
    if s.mode == "mig":
        return [
            {
                "display_name": f"{short} MIG {inst}",
                "slug": f"{slug}-mig-{inst.replace('.', '-')}",
                "description": f"an isolated {inst} slice of the {short}",
                "default": False,
                "limits": {f"nvidia.com/mig-{inst}": "1"},
            }
            for inst in dict.fromkeys(s.mig_instances)
        ]
    if s.mode == "hami":
        return [
            {
                "display_name": f"{short} share (HAMi)",
                "slug": f"{slug}-hami",
                "description": f"{s.hami_memory_percent} % of the GPU memory and {s.hami_cores_percent} % "
                "of its compute, enforced",
                "default": False,
                "limits": {
                    "nvidia.com/gpu": "1",
                    "nvidia.com/gpumem-percentage": str(s.hami_memory_percent),
                    "nvidia.com/gpucores": str(s.hami_cores_percent),
                },
            }
        ]
    if s.mode == "exclusive":
        what, memory = "the whole GPU", gpu.memory_mib
    else:
        what, memory = f"1 of {s.slots} {s.mode} shares", s.memory_per_slot_mib
    size = f" (~{memory // 1024} GiB)" if memory else ""
    return [
        {
            "display_name": f"{short}: {what}",
            "slug": f"{slug}-{s.mode}",
            "description": f"{what} of the {short}{size}",
            "default": False,
            "limits": {"nvidia.com/gpu": "1"},
        }
    ]


def queue_resources(plan: Plan) -> list[dict]:
    """Kueue quotas: the workers' CPU and memory, and every GPU slot resource the plan creates."""
    workers = [v for v in plan.vms if v.role == "worker"]
    resources = [
        {"name": "cpu", "quota": str(sum(v.vcpus for v in workers))},
        {"name": "memory", "quota": f"{sum(v.ram_gib for v in workers)}Gi"},
    ]
    gpu_slots: dict[str, int] = {}
    for gpu in plan.gpus:
        if gpu.sharing.mode == "mig":
            for inst in gpu.sharing.mig_instances:
                gpu_slots[f"nvidia.com/mig-{inst}"] = gpu_slots.get(f"nvidia.com/mig-{inst}", 0) + 1
        else:
            gpu_slots["nvidia.com/gpu"] = gpu_slots.get("nvidia.com/gpu", 0) + gpu.sharing.slots
    resources += [{"name": k, "quota": str(v)} for k, v in sorted(gpu_slots.items())]
    return resources
