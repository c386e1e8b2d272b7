"""The training queue's Kueue objects as data, from the plan (pure).

Quota covers every resource the platform advertises: the workers' CPU and memory (flavor affordml-default), and per
GPU node one flavor (its device-plugin config label, so an admitted job lands on the node its share was counted
on) with that node's nvidia.com/gpu shares or MIG slices, and for HAMi the per-job totals Kueue's resource
transformations compute from nvidia.com/gpucores and nvidia.com/gpumem(-percentage).

With ml.after_hours, the quota is split in one cohort: affordml-interactive keeps `interactive_percent` of everything
for notebooks and never borrows; affordml-training has the rest. On workdays the interactive queue lends nothing
(lendingLimit 0); after hours it lends all of it, so training jobs borrow it; a notebook that comes back reclaims
it by preemption (reclaimWithinCohort). CronJobs switch the lendingLimits with a merge patch, each only inside its
own windows (affordml/ml/after_hours.py)."""

from __future__ import annotations

import json

from affordml.ml.after_hours import WORKDAY, cron_schedules
from affordml.plan.model import Plan
from affordml.plan.sharing import advertised_resources

COHORT = "affordml"
TRAINING_CQ = "affordml-training"
INTERACTIVE_CQ = "affordml-interactive"
DEFAULT_FLAVOR = "affordml-default"
SWITCH_NAMESPACE = "kueue-system"  # not `ml`: users there could mount the ServiceAccount's token
SWITCH_ACCOUNT = "affordml-queue-switch"
SCHEDULE_ANNOTATION = "affordml.io/after-hours"
MODE_LABEL = "affordml.io/queue-mode"
PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
HAMI_TRANSFORMATIONS = (  # Kueue docs, "Using HAMi": per-vGPU values times nvidia.com/gpu
    ("nvidia.com/gpucores", "nvidia.com/total-gpucores"),
    ("nvidia.com/gpumem", "nvidia.com/total-gpumem"),
    ("nvidia.com/gpumem-percentage", "nvidia.com/total-gpumem-percentage"),
)


def kueue_context(plan: Plan, kube_version: str) -> dict:
    after_hours = plan.ml.get("after_hours")
    capacity = _capacity(plan)
    groups = [_group(flavors) for flavors in capacity]
    hami = any(g.sharing.mode == "hami" for g in plan.gpus)
    context = {
        "flavors": [{"name": DEFAULT_FLAVOR, "node_labels": {}}] + _gpu_flavors(plan),
        "transformations": [{"input": i, "output": o} for i, o in HAMI_TRANSFORMATIONS] if hami else [],
        "local_queues": [{"name": "training", "namespace": "ml", "cluster_queue": TRAINING_CQ}],
        "switch": None,
    }
    if not after_hours:
        context["cluster_queues"] = [_queue(TRAINING_CQ, None, groups, _training_preemption())]
        return context
    percent = after_hours["interactive_percent"]
    interactive = [_group(_scaled(flavors, lambda q: _share(q, percent))) for flavors in capacity]
    training = [_group(_scaled(flavors, lambda q: q - _share(q, percent))) for flavors in capacity]
    context["cluster_queues"] = [
        _queue(TRAINING_CQ, COHORT, training, _training_preemption()),
        _queue(INTERACTIVE_CQ, COHORT, interactive_groups(interactive, WORKDAY), _interactive_preemption())
        | {"annotations": {SCHEDULE_ANNOTATION: json.dumps(schedule_of(after_hours), sort_keys=True)}},
    ]
    if plan.ml.get("jupyterhub"):
        context["local_queues"].append(
            {"name": "notebooks", "namespace": "jupyterhub", "cluster_queue": INTERACTIVE_CQ}
        )
    context["switch"] = _switch(after_hours, interactive, kube_version)
    return context


def schedule_of(after_hours: dict) -> dict:
    return {k: after_hours[k] for k in ("start", "end", "days", "time_zone")}


def interactive_groups(groups: list[dict], mode: str) -> list[dict]:
    """The interactive queue's resource groups in a mode: never borrows; lends nothing on workdays, all after hours."""
    out = []
    for group in groups:
        flavors = []
        for flavor in group["flavors"]:
            resources = []
            for r in flavor["resources"]:
                limits = {"borrowingLimit": "0"} | ({"lendingLimit": "0"} if mode == WORKDAY else {})
                resources.append(r | limits)
            flavors.append({"name": flavor["name"], "resources": resources})
        out.append({"coveredResources": group["coveredResources"], "flavors": flavors})
    return out


def switch_patch(groups: list[dict], mode: str) -> str:
    """The JSON merge patch that puts the interactive queue in a mode (a merge patch replaces the whole list)."""
    return json.dumps({"spec": {"resourceGroups": interactive_groups(groups, mode)}}, separators=(",", ":"))


def _switch(after_hours: dict, interactive: list[dict], kube_version: str) -> dict:
    jobs = []
    for mode, schedules in cron_schedules(after_hours).items():
        patch = switch_patch(interactive, mode)
        jobs += [
            {"name": f"affordml-queue-{mode}-{i}", "mode": mode, "schedule": s, "patch": patch}
            for i, s in enumerate(schedules)
        ]
    return {
        "namespace": SWITCH_NAMESPACE,
        "account": SWITCH_ACCOUNT,
        "cluster_queue": INTERACTIVE_CQ,
        "time_zone": after_hours["time_zone"],
        "image": kubectl_image(kube_version),
        "jobs": jobs,
    }


def kubectl_image(kube_version: str) -> str:
    return f"registry.k8s.io/kubectl:v{kube_version}"


def _queue(name: str, cohort: str | None, groups: list[dict], preemption: dict) -> dict:
    return {"name": name, "cohort": cohort, "resource_groups": groups, "preemption": preemption, "annotations": {}}


def _training_preemption() -> dict:
    # a higher-priority training job may preempt a lower one; training never takes back quota from notebooks
    return {"withinClusterQueue": "LowerPriority", "reclaimWithinCohort": "Never"}


def _interactive_preemption() -> dict:
    # a returning notebook evicts training jobs that borrowed the interactive share after hours
    return {"withinClusterQueue": "Never", "reclaimWithinCohort": "Any"}


def _group(flavors: dict[str, dict[str, int | str]]) -> dict:
    covered = list(next(iter(flavors.values())))
    return {
        "coveredResources": covered,
        "flavors": [
            {"name": name, "resources": [{"name": r, "nominalQuota": _quantity(r, q)} for r, q in quota.items()]}
            for name, quota in flavors.items()
        ],
    }


def _quantity(resource: str, amount: int) -> str:
    return f"{amount}Gi" if resource == "memory" else str(amount)


def _scaled(flavors: dict[str, dict[str, int]], how) -> dict[str, dict[str, int]]:
    return {name: {r: how(q) for r, q in quota.items()} for name, quota in flavors.items()}


def _share(amount: int, percent: int) -> int:
    """percent of amount, halves rounded up: one GPU at 50 % stays with the notebooks on workdays."""
    return (amount * percent + 50) // 100


def _capacity(plan: Plan) -> list[dict[str, dict[str, int]]]:
    """Resource groups as flavor -> resource -> amount: CPU and memory, then the GPUs (every flavor lists every
    GPU resource of the group, 0 where its node has none: Kueue wants the same resources in each flavor)."""
    workers = [v for v in plan.vms if v.role == "worker"]
    groups = [{DEFAULT_FLAVOR: {"cpu": sum(v.vcpus for v in workers), "memory": sum(v.ram_gib for v in workers)}}]
    per_node = {flavor["name"]: _node_resources(plan, flavor["vm"]) for flavor in _gpu_flavors(plan)}
    if per_node:
        names = sorted({r for resources in per_node.values() for r in resources})
        groups.append({f: {r: resources.get(r, 0) for r in names} for f, resources in per_node.items()})
    return groups


def _gpu_flavors(plan: Plan) -> list[dict]:
    flavors = []
    for vm in plan.vms:
        gpus = [g for g in plan.gpus if g.vm == vm.name]
        if gpus:
            mode = gpus[0].sharing.mode  # one mode per VM (the plan's rule)
            flavors.append(
                {
                    "name": f"affordml-{vm.name}-{mode}",
                    "vm": vm.name,
                    "node_labels": {PLUGIN_CONFIG_LABEL: f"{vm.name}-{mode}"},
                }
            )
    return flavors


def _node_resources(plan: Plan, vm: str) -> dict[str, int]:
    gpus = [g for g in plan.gpus if g.vm == vm]
    total: dict[str, int] = {}
    for gpu in gpus:
        for name, count in advertised_resources(gpu.sharing).items():
            total[name] = total.get(name, 0) + count
    hami = [g for g in gpus if g.sharing.mode == "hami"]
    if hami:
        total["nvidia.com/total-gpucores"] = 100 * len(hami)
        total["nvidia.com/total-gpumem-percentage"] = 100 * len(hami)
        if all(g.memory_mib for g in hami):
            total["nvidia.com/total-gpumem"] = sum(g.memory_mib for g in hami)
    return total
