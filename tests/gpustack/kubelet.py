"""A stand-in for the kubelets of Node objects registered without one: every pod the real scheduler binds to a
node is reported Running and Ready (Job pods: Succeeded) and a deleted pod's end is confirmed, so that Deployments,
DaemonSets and hook Jobs reach the states `helm --wait` watches. Nothing runs: no container, no image. Pods the
scheduler leaves Pending stay Pending, which is what the failure tests need. Subclasses decide how a pod ends
(status_for) and play more controllers in the same loop (serve); tests/integration/verify/actors.py does both."""

from __future__ import annotations

import threading
import time


class StandInKubelet:
    def __init__(
        self, api_client, interval_s: float = 0.5, namespace: str | None = None, name: str = "stand-in-kubelet"
    ) -> None:
        self._api = api_client
        self._interval = interval_s
        self._namespace = namespace  # None: every namespace
        self._stop = threading.Event()
        self._done: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.errors: list[str] = []

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.serve()
            except Exception as exc:  # noqa: BLE001 - an object deleted meanwhile; keep serving the others
                self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            self._stop.wait(self._interval)

    def serve(self) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self._api)
        if self._namespace:
            pods = core.list_namespaced_pod(self._namespace, _request_timeout=10).items
        else:
            pods = core.list_pod_for_all_namespaces(_request_timeout=10).items
        for pod in pods:
            meta, node = pod.metadata, pod.spec.node_name
            if node and meta.deletion_timestamp:  # a kubelet confirms the stop
                core.delete_namespaced_pod(meta.name, meta.namespace, grace_period_seconds=0, _request_timeout=10)
            elif node and meta.uid not in self._done:
                core.patch_namespaced_pod_status(meta.name, meta.namespace, self.status_for(pod), _request_timeout=10)
                self._done.add(meta.uid)

    def status_for(self, pod) -> dict:
        is_job = any(ref.kind == "Job" for ref in (pod.metadata.owner_references or []))
        return finished_status(pod) if is_job else running_status(pod)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def running_status(pod) -> dict:
    return _status(pod, "Running", True, {"running": {"startedAt": _now()}})


def finished_status(pod, message: str = "") -> dict:
    """Succeeded; `message` is what the kubelet writes as the container's termination message."""
    now = _now()
    state = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}
    if message:
        state["terminated"]["message"] = message
    return _status(pod, "Succeeded", False, state)


def _status(pod, phase: str, ready: bool, state: dict) -> dict:
    now, flag = _now(), "True" if ready else "False"
    return {
        "status": {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "startTime": now,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
                {"type": "Ready", "status": flag, "lastTransitionTime": now},
            ],
            "containerStatuses": [
                {
                    "name": c.name,
                    "ready": ready,
                    "started": ready,
                    "restartCount": 0,
                    "image": c.image,
                    "imageID": "",
                    "state": state,
                }
                for c in pod.spec.containers
            ],
        }
    }
