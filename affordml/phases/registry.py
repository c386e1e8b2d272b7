"""The phases of `affordml init`, as data (the kubeadm pattern): name, help, what runs, inputs, when it applies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from affordml.plan.model import Plan


def always(_: Plan) -> str | None:
    return None


def cloud_vms(state_data: dict) -> dict:
    """The kubernetes phase also depends on the VMs the cloud phase recorded (see affordml/phases/kubernetes.py)."""
    from affordml.phases.kubernetes import state_inputs

    return state_inputs(state_data)


def checked_platform(ctx) -> dict:
    """The verify phase depends on what it checked (see affordml/verify/phase.py)."""
    from affordml.verify.phase import phase_inputs

    return phase_inputs(ctx)


def needs_gpu(plan: Plan) -> str | None:
    return None if plan.gpus else "no GPU is passed through (CPU-only platform)"


@dataclass(frozen=True)
class Phase:
    name: str
    help: str
    runs: str  # "playbook:<file in playbooks/>" or "python:<step name>"
    inputs: tuple[str, ...]  # env/ paths whose content decides whether a done phase runs again
    applies: Callable[[Plan], str | None] = always
    state_inputs: Callable[[dict], object] | None = None  # what of the run state also decides a re-run
    run_inputs: Callable[..., object] | None = None  # what of the run (a PhaseContext: plan, options) too

    @property
    def kind(self) -> str:
        return self.runs.split(":", 1)[0]

    @property
    def target(self) -> str:
        return self.runs.split(":", 1)[1]


PHASES: tuple[Phase, ...] = (
    Phase(
        "preflight",
        "read every host's facts and run the doctor's checks",
        "python:preflight",
        ("inventory/hosts.yml", "vars/plan.yml"),
    ),
    Phase(
        "host",
        "prepare the PCs: IOMMU kernel arguments, vfio-pci, external NIC, container engine",
        "playbook:host.yml",
        ("inventory/hosts.yml", "vars/plan.yml"),
    ),
    Phase(
        "openstack",
        "install OpenStack all-in-one with kolla-ansible",
        "playbook:openstack.yml",
        ("inventory/hosts.yml", "vars/plan.yml", "kolla/"),
    ),
    Phase(
        "cloud",
        "carve the Kubernetes VMs with openstacksdk (GPU by PCI passthrough)",
        "python:cloud",
        ("vars/plan.yml", "kubespray/inventory.yml"),
    ),
    Phase(
        "kubernetes",
        "install a three-node Kubernetes in the VMs with Kubespray",
        "python:kubernetes",
        ("kubespray/",),
        state_inputs=cloud_vms,
    ),
    Phase("gpu", "install the GPU Operator (time-slicing / MPS / MIG) and HAMi", "python:gpu", ("gpu/",), needs_gpu),
    Phase("ml", "install JupyterHub, the training queue, inference serving and monitoring", "python:ml", ("ml/",)),
    Phase("verify", "check the platform end to end", "python:verify", (), run_inputs=checked_platform),
)


def phase_names() -> list[str]:
    return [p.name for p in PHASES]


def get_phase(name: str) -> Phase:
    from affordml.errors import ConfigError

    for phase in PHASES:
        if phase.name == name:
            return phase
    raise ConfigError(f"unknown phase {name!r}", f"use one of: {', '.join(phase_names())}")
