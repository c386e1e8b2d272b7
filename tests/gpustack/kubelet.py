"""A stand-in for the kubelets of Node objects registered without one: every pod the real scheduler binds to a
node is reported Running and Ready (Job pods: Succeeded) and a deleted pod's end is confirmed, so that Deployments,
DaemonSets and hook Jobs reach the states `helm --wait` watches. Nothing runs: no container, no image. Pods the
scheduler leaves Pending stay Pending, which is what the failure tests need."""

from __future__ import annotations

import threading
import time


class StandInKubelet:
    def __init__(self, api_client, interval_s: float = 0.5) -> None:
        self._api = api_client
        self._interval = interval_s
        self._stop = threading.Event()
        self._done: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name="stand-in-kubelet", daemon=True)
        self.errors: list[str] = []

    def __enter__(self) -> StandInKubelet:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self._api)
        while not self._stop.is_set():
            try:
                for pod in core.list_pod_for_all_namespaces(_request_timeout=10).items:
                    if pod.spec.node_name and pod.metadata.deletion_timestamp:  # a kubelet confirms the stop
                        core.delete_namespaced_pod(
                            pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0, _request_timeout=10
                        )
                    elif pod.spec.node_name and pod.metadata.uid not in self._done:
                        core.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, status_for(pod))
                        self._done.add(pod.metadata.uid)
            except Exception as exc:  # noqa: BLE001 - a pod deleted meanwhile; keep serving the others
                self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            self._stop.wait(self._interval)


def status_for(pod) -> dict:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    is_job = any(ref.kind == "Job" for ref in (pod.metadata.owner_references or []))
    containers = [c.name for c in pod.spec.containers]
    if is_job:
        state = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}
        ready, phase = False, "Succeeded"
    else:
        state = {"running": {"startedAt": now}}
        ready, phase = True, "Running"
    condition = "True" if ready else "False"
    return {
        "status": {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "startTime": now,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": condition, "lastTransitionTime": now},
                {"type": "Ready", "status": condition, "lastTransitionTime": now},
            ],
            "containerStatuses": [
                {
                    "name": name,
                    "ready": ready,
                    "started": not is_job,
                    "restartCount": 0,
                    "image": "stand-in",
                    "imageID": "",
                    "state": state,
                }
                for name in containers
            ],
        }
    }
