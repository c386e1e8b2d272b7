"""What no process here can do for the verify checks' own objects, played by the test: the kubelets (the pods the
real scheduler bound report Running, or Succeeded with the probe's output as the kubelet writes a container's
termination message; a deleted pod's end is confirmed) and Kueue's admission (a queued Job is unsuspended once a
LocalQueue of its name exists in its namespace, as Kueue does when it admits the Workload). Only the namespace
affordml-verify is touched. The Job controller, the garbage collector, the namespace controller and the
scheduler are the real ones."""

from __future__ import annotations

import threading
import time

from affordml.verify.objects import CHECK_LABEL, NAMESPACE, QUEUE_LABEL

RUNNING_CHECKS = ("two-pods-one-gpu",)


class VerifyActors:
    def __init__(self, api_client, probe_output: dict[str, str], admit: bool = True, interval_s: float = 0.3):
        self._api = api_client
        self._probe = probe_output  # node -> what nvidia-smi and the probe print there
        self._admit = admit
        self._interval = interval_s
        self._stop = threading.Event()
        self._done: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name="verify-actors", daemon=True)
        self.errors: list[str] = []
        self.admitted: list[str] = []

    def __enter__(self) -> VerifyActors:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        from kubernetes import client

        core, batch = client.CoreV1Api(self._api), client.BatchV1Api(self._api)
        custom = client.CustomObjectsApi(self._api)
        while not self._stop.is_set():
            try:
                self._pods(core)
                if self._admit:
                    self._jobs(batch, custom)
            except Exception as exc:  # noqa: BLE001 - an object deleted meanwhile; keep serving the others
                self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            self._stop.wait(self._interval)

    def _pods(self, core) -> None:
        for pod in core.list_namespaced_pod(NAMESPACE, _request_timeout=10).items:
            meta, node = pod.metadata, pod.spec.node_name
            if node and meta.deletion_timestamp:
                core.delete_namespaced_pod(meta.name, NAMESPACE, grace_period_seconds=0, _request_timeout=10)
            elif node and meta.uid not in self._done:
                running = (meta.labels or {}).get(CHECK_LABEL) in RUNNING_CHECKS
                body = running_status(pod) if running else finished_status(pod, self._probe.get(node, ""))
                core.patch_namespaced_pod_status(meta.name, NAMESPACE, body, _request_timeout=10)
                self._done.add(meta.uid)

    def _jobs(self, batch, custom) -> None:
        for job in batch.list_namespaced_job(NAMESPACE, _request_timeout=10).items:
            queue = (job.metadata.labels or {}).get(QUEUE_LABEL)
            if not job.spec.suspend or not queue:
                continue
            queues = custom.list_namespaced_custom_object("kueue.x-k8s.io", "v1beta2", NAMESPACE, "localqueues")
            if any(q["metadata"]["name"] == queue for q in queues["items"]):
                batch.patch_namespaced_job(job.metadata.name, NAMESPACE, {"spec": {"suspend": False}})
                self.admitted.append(job.metadata.name)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _conditions(ready: bool) -> list[dict]:
    now, flag = _now(), "True" if ready else "False"
    return [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
        {"type": "Ready", "status": flag, "lastTransitionTime": now},
    ]


def running_status(pod) -> dict:
    state = {"running": {"startedAt": _now()}}
    return _status(pod, "Running", True, state)


def finished_status(pod, message: str) -> dict:
    now = _now()
    state = {"terminated": {"exitCode": 0, "reason": "Completed", "message": message, "startedAt": now,
                            "finishedAt": now}}  # fmt: skip
    return _status(pod, "Succeeded", False, state)


def _status(pod, phase: str, ready: bool, state: dict) -> dict:
    return {
        "status": {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "startTime": _now(),
            "conditions": _conditions(ready),
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
            ],  # fmt: skip
        }
    }
