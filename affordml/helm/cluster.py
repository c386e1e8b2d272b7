"""The release namespace's pods as the API reports them (the `kubernetes` client, imported only here)."""

from __future__ import annotations

from pathlib import Path

from affordml.helm.diagnose import PodView


class NamespaceView:
    def __init__(self, kubeconfig: Path, request_timeout: float = 10) -> None:
        from kubernetes import config

        self._api = config.new_client_from_config(config_file=str(kubeconfig))
        self._timeout = request_timeout

    def pods(self, namespace: str) -> list[PodView]:
        from kubernetes import client

        core = client.CoreV1Api(self._api)
        pods = core.list_namespaced_pod(namespace, _request_timeout=self._timeout).items
        events = core.list_namespaced_event(namespace, _request_timeout=self._timeout).items
        return [pod_view(pod, events) for pod in pods]

    def warnings(self, namespace: str) -> tuple[str, ...]:
        """Warning events of objects other than pods, oldest first: "DaemonSet x: FailedCreate: ..."."""
        from kubernetes import client

        events = client.CoreV1Api(self._api).list_namespaced_event(namespace, _request_timeout=self._timeout).items
        mine = [e for e in events if e.type == "Warning" and e.involved_object and e.involved_object.kind != "Pod"]
        mine.sort(key=lambda e: str(e.last_timestamp or e.event_time or e.metadata.creation_timestamp))
        return tuple(
            f"{e.involved_object.kind} {e.involved_object.name}: {e.reason}: {' '.join((e.message or '').split())}"
            for e in mine
        )


def pod_view(pod, events) -> PodView:
    status = pod.status
    conditions = {c.type: c for c in (status.conditions or [])}
    scheduled = conditions.get("PodScheduled")
    ready = conditions.get("Ready")
    waiting = tuple(
        s.state.waiting.reason
        for s in (status.container_statuses or []) + (status.init_container_statuses or [])
        if s.state and s.state.waiting and s.state.waiting.reason
    )
    mine = [
        e
        for e in events
        if e.involved_object and e.involved_object.kind == "Pod" and e.involved_object.name == pod.metadata.name
    ]
    mine.sort(key=lambda e: str(e.last_timestamp or e.event_time or e.metadata.creation_timestamp))
    unschedulable = ""
    if scheduled is not None and scheduled.status == "False":
        unschedulable = " ".join((scheduled.message or scheduled.reason or "unschedulable").split())
    return PodView(
        name=pod.metadata.name,
        phase=status.phase or "Unknown",
        ready=bool(ready and ready.status == "True"),
        waiting=waiting,
        unschedulable=unschedulable,
        events=tuple(f"{e.reason}: {' '.join((e.message or '').split())}" for e in mine),
    )
