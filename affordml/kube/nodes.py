"""The cluster's nodes through the Kubernetes API (the Python `kubernetes` client, imported only here): Ready
wait with progress and a bound, and the rows `affordml status` shows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from affordml.errors import RunError

READY_TIMEOUT_S = 900
POLL_S = 5.0
REPORT_EVERY_S = 30.0
REQUEST_TIMEOUT_S = 10


@dataclass(frozen=True)
class NodeRow:
    name: str
    ready: bool
    roles: tuple[str, ...]
    kubelet: str
    gpus: dict[str, str] = field(default_factory=dict)  # GPU-like capacity: nvidia.com/gpu and friends

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "ready": self.ready,
            "roles": list(self.roles),
            "kubelet": self.kubelet,
            "gpus": dict(self.gpus),
        }


def row_of(node) -> NodeRow:
    """A kubernetes-client V1Node -> NodeRow."""
    status = node.status
    conditions = {c.type: c.status for c in (status.conditions or [])} if status else {}
    labels = node.metadata.labels or {}
    roles = tuple(sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")))
    capacity = (status.capacity if status else None) or {}
    info = status.node_info if status else None
    return NodeRow(
        name=node.metadata.name,
        ready=conditions.get("Ready") == "True",
        roles=roles,
        kubelet=getattr(info, "kubelet_version", "") or "",
        gpus={k: str(v) for k, v in sorted(capacity.items()) if "gpu" in k.lower()},
    )


class Cluster:
    """A kubeconfig's cluster, read through the kubernetes client."""

    def __init__(self, kubeconfig: Path, request_timeout: float = REQUEST_TIMEOUT_S) -> None:
        from kubernetes import client, config

        self._api = config.new_client_from_config(config_file=str(kubeconfig))
        self._core = client.CoreV1Api(self._api)
        self._version = client.VersionApi(self._api)
        self._timeout = request_timeout

    def nodes(self) -> list[NodeRow]:
        return [row_of(n) for n in self._core.list_node(_request_timeout=self._timeout).items]

    def server_version(self) -> str:
        return self._version.get_code(_request_timeout=self._timeout).git_version

    def close(self) -> None:
        self._api.close()


def api_error_text(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    if status:
        return f"HTTP {status} {reason or ''}".strip()
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:200]


def wait_ready(
    list_nodes: Callable[[], list[NodeRow]],
    expected: list[str],
    say: Callable[[str], None],
    timeout_s: float = READY_TIMEOUT_S,
    poll_s: float = POLL_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[NodeRow]:
    """Poll until every expected node exists and is Ready; say progress when it changes (or every 30 s)."""
    started = clock()
    last_report, last_seen, last_error = -REPORT_EVERY_S, None, ""
    while True:
        try:
            rows = list_nodes()
            last_error = ""
        except Exception as exc:  # noqa: BLE001 - any API failure is "not yet" until the bound
            rows, last_error = [], api_error_text(exc)
        ready = {r.name for r in rows if r.ready}
        waiting = [n for n in expected if n not in ready]
        elapsed = clock() - started
        if not waiting:
            say(f"[kubernetes] all {len(expected)} node(s) Ready after {elapsed:.0f}s")
            return rows
        seen = (tuple(sorted(ready)), last_error)
        if seen != last_seen or elapsed - last_report >= REPORT_EVERY_S:
            detail = f"; API: {last_error}" if last_error else ""
            say(
                f"[kubernetes] nodes Ready {len(expected) - len(waiting)}/{len(expected)}, waiting for "
                f"{', '.join(waiting)} ({elapsed:.0f}s of {timeout_s:.0f}s){detail}"
            )
            last_seen, last_report = seen, elapsed
        if elapsed >= timeout_s:
            missing = [n for n in waiting if n not in {r.name for r in rows}]
            why = f"not registered: {', '.join(missing)}" if missing else "registered but not Ready"
            detail = f"; last API error: {last_error}" if last_error else ""
            raise RunError(
                f"[kubernetes] node(s) {', '.join(waiting)} not Ready after {timeout_s:.0f}s ({why}){detail}",
                "look at the node with `kubectl --kubeconfig secrets/kubeconfig describe node NAME` (kubelet and "
                "CNI pods), then run `affordml init` again",
            )
        sleep(poll_s)


def cluster_summary(kubeconfig: Path, request_timeout: float = 5) -> dict:
    """For `affordml status`: the API server's version and every node, or the reason the API did not answer."""
    try:
        cluster = Cluster(kubeconfig, request_timeout)
    except Exception as exc:  # noqa: BLE001 - a broken kubeconfig is reported, not raised
        return {"source": "api", "api_error": api_error_text(exc), "nodes": []}
    try:
        return {
            "source": "api",
            "server": cluster.server_version(),
            "nodes": [row.to_dict() for row in cluster.nodes()],
        }
    except Exception as exc:  # noqa: BLE001 - any failure to reach the API is reported
        return {"source": "api", "api_error": api_error_text(exc), "nodes": []}
    finally:
        cluster.close()
