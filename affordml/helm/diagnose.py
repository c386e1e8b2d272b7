"""Why a release did not become ready, read from the API (pods, their events), as one line and a fix (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PodView:
    name: str
    phase: str  # Pending | Running | Succeeded | Failed | Unknown
    ready: bool
    waiting: tuple[str, ...] = ()  # container waiting reasons (ImagePullBackOff, CrashLoopBackOff, ...)
    unschedulable: str = ""  # the PodScheduled=False condition's message
    events: tuple[str, ...] = field(default_factory=tuple)  # "Reason: message", newest last


# (what the reason contains, the fix); the first match wins
FIXES: tuple[tuple[str, str], ...] = (
    (
        "Insufficient nvidia.com/",
        "the GPU nodes advertise fewer GPU shares than the pods request: compare `affordml plan` (shares per GPU) "
        "with `kubectl --kubeconfig secrets/kubeconfig describe node` (Capacity), and check the device plugin pods",
    ),
    (
        "Insufficient cpu",
        "the worker VMs have too few CPUs for this release: give them more (vms.workers in affordml.yaml) or "
        "turn an ml component off",
    ),
    (
        "Insufficient memory",
        "the worker VMs have too little memory for this release: give them more (vms.workers in affordml.yaml) "
        "or turn an ml component off",
    ),
    (
        "didn't match Pod's node affinity/selector",
        "no node carries the labels these pods select: run `affordml init phase gpu` again (it labels the GPU "
        "nodes) and check the labels with `kubectl get nodes --show-labels`",
    ),
    (
        "untolerated taint",
        "the nodes carry a taint these pods do not tolerate: check `kubectl describe node` (Taints)",
    ),
    (
        "ImagePull",
        "an image cannot be pulled: check the VMs' internet access (or load the images from "
        "`affordml bundle --images` into your registry)",
    ),
    ("ErrImage", "an image cannot be pulled: check the VMs' internet access"),
    (
        "RuntimeClass",
        "the RuntimeClass the pods name does not exist: the GPU Operator creates it when its container toolkit "
        "runs; check `kubectl --kubeconfig secrets/kubeconfig get runtimeclass` and the toolkit pods",
    ),
    (
        "is invalid:",
        "the API refused a value rendered into env/ (the message names the field and what it accepts): correct "
        "the setting in affordml.yaml that gives it, then run again; nothing was changed",
    ),
    ("CrashLoopBackOff", "a container keeps crashing: read its log with `kubectl logs --previous POD -n NAMESPACE`"),
)


def not_ready(pods: list[PodView]) -> list[PodView]:
    return [p for p in pods if p.phase not in ("Succeeded",) and not p.ready]


def reason_of(pod: PodView) -> str:
    if pod.unschedulable:
        return f"pod {pod.name} {pod.phase}: {pod.unschedulable}"
    if pod.waiting:
        return f"pod {pod.name} {pod.phase}: {', '.join(pod.waiting)}"
    if pod.events:
        return f"pod {pod.name} {pod.phase}: {pod.events[-1]}"
    return f"pod {pod.name} {pod.phase}, not ready"


def explain(pods: list[PodView], helm_error: str, fallback_fix: str, warnings: tuple[str, ...] = ()) -> tuple[str, str]:
    """(reason, fix): the first pod that is not ready and why; else the newest Warning event of another object
    (e.g. a DaemonSet that cannot create its pods); else helm's own error."""
    stuck = not_ready(pods)
    stuck.sort(key=lambda p: (not p.unschedulable, not p.waiting, p.name))  # scheduling, then images, then rest
    if stuck:
        reason = reason_of(stuck[0])
    elif warnings:
        reason = warnings[-1]
    else:
        reason = helm_error or "helm reported a failure"
    if stuck and len(stuck) > 1:
        reason += f" (and {len(stuck) - 1} more pod{'s' if len(stuck) > 2 else ''} not ready)"
    for needle, fix in FIXES:
        if needle in reason:
            return reason, fix
    return reason, fallback_fix


def helm_error_line(stderr: str) -> str:
    """helm's last `Error:` line (what the API refused, e.g. a CRD validation message), or its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    chosen = errors[-1] if errors else (lines[-1] if lines else "")
    return " ".join(chosen.removeprefix("Error:").split())[:600]
