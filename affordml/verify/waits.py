"""Bounded waits for the checks' pods and job (time and sleep injectable, so recorded runs take no time)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from affordml.verify.api import CheckFailed, VerifyApi
from affordml.verify.objects import CHECK_LABEL, NAMESPACE

PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"


@dataclass(frozen=True)
class Waits:
    pod_s: float = 300  # image already on GPU nodes; a driver or MIG reconfiguration may still be settling
    admit_s: float = 120
    job_s: float = 300
    gone_s: float = 60
    poll_s: float = 2
    hold_s: int = 30  # how long each of the two "at once" pods keeps running
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)


def pod_problem(pod: dict) -> str:
    """Why a pod is not running yet, from its status: the scheduler's message, a container's waiting reason."""
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return f"Pending: {' '.join(str(cond.get('message') or cond.get('reason') or '').split())[:300]}"
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            return f"{waiting.get('reason')}: {' '.join(str(waiting.get('message') or '').split())[:200]}".rstrip(": ")
    return f"phase {status.get('phase') or 'unknown'}"


def terminated(pod: dict) -> dict:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        state = (cs.get("state") or {}).get("terminated")
        if state:
            return state
    return {}


def wait_pod_done(api: VerifyApi, name: str, waits: Waits) -> str:
    """The probe's termination message once the pod Succeeded; CheckFailed when it failed or the bound passed."""
    started, last = waits.clock(), "not created"
    while waits.clock() - started < waits.pod_s:
        pod = api.get(f"{PODS}/{name}")
        if pod is None:
            raise CheckFailed(f"pod {NAMESPACE}/{name} disappeared before it ran")
        phase = (pod.get("status") or {}).get("phase")
        end = terminated(pod)
        if phase == "Succeeded":
            return str(end.get("message") or "")
        if phase == "Failed":
            message = " ".join(str(end.get("message") or "").split())[:300]
            raise CheckFailed(f"pod {name} failed (exit {end.get('exitCode')}, {end.get('reason')}): {message}")
        last = pod_problem(pod)
        waits.sleep(waits.poll_s)
    raise CheckFailed(f"pod {name} did not finish in {waits.pod_s:.0f} s ({last})")


def wait_running_together(api: VerifyApi, names: list[str], waits: Waits) -> float:
    """Seconds until every pod was Running at the same moment (or their run times overlapped)."""
    started, last = waits.clock(), {}
    while waits.clock() - started < waits.pod_s:
        pods = {n: api.get(f"{PODS}/{n}") or {} for n in names}
        phases = {n: (p.get("status") or {}).get("phase") for n, p in pods.items()}
        if all(ph == "Running" for ph in phases.values()) or _overlapped(list(pods.values())):
            return waits.clock() - started
        failed = [n for n, ph in phases.items() if ph == "Failed"]
        if failed:
            raise CheckFailed(f"pod {failed[0]} failed: {terminated(pods[failed[0]]).get('message') or ''}".strip())
        last = {n: (ph if ph == "Running" else pod_problem(pods[n])) for n, ph in phases.items()}
        waits.sleep(waits.poll_s)
    seen = "; ".join(f"{n}: {s}" for n, s in last.items())
    raise CheckFailed(f"the pods were not Running together within {waits.pod_s:.0f} s ({seen})")


def _overlapped(pods: list[dict]) -> bool:
    spans = [terminated(p) for p in pods]
    if not all(s.get("startedAt") and s.get("finishedAt") and s.get("exitCode") == 0 for s in spans):
        return False
    return max(s["startedAt"] for s in spans) < min(s["finishedAt"] for s in spans)


def remove_pods(api: VerifyApi, check: str, waits: Waits) -> bool:
    """Delete the check's pods and wait (bounded) until they are gone, so that their shares are free for the next
    check. False when some were still there at the bound."""
    selector = {"labelSelector": f"{CHECK_LABEL}={check}"}
    api.call("DELETE", PODS, selector, None)
    started = waits.clock()
    while api.items(PODS, selector):
        if waits.clock() - started >= waits.gone_s:
            return False
        waits.sleep(waits.poll_s)
    return True
