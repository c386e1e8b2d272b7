"""Apply the training queue's objects (env/ml/kueue-queues.yaml) through the API: server-side apply, the namespaces
first, the interactive ClusterQueue in the mode that is right now, and objects of an earlier render that the plan
no longer has removed. Called by the ml phase right after the kueue release (its CRDs and webhooks are up)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import urllib3
import yaml

from affordml.errors import RunError
from affordml.ml.after_hours import AFTER_HOURS, mode_at
from affordml.ml.queue_objects import MODE_LABEL, SCHEDULE_ANNOTATION

PHASE = "ml"
FIELD_MANAGER = "affordml"
PART_OF = "app.kubernetes.io/part-of=affordml-training-queue,app.kubernetes.io/managed-by=affordml"
BACKGROUND = {"propagationPolicy": "Background"}  # a removed CronJob takes its Jobs and pods along
# (apiVersion, kind) -> (plural, namespaced); every kind the rendered file may hold, in the order they are applied
KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("kueue.x-k8s.io/v1beta2", "ResourceFlavor"): ("resourceflavors", False),
    ("kueue.x-k8s.io/v1beta2", "ClusterQueue"): ("clusterqueues", False),
    ("kueue.x-k8s.io/v1beta2", "LocalQueue"): ("localqueues", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("batch/v1", "CronJob"): ("cronjobs", True),
}
# what runs the after-hours switch; Kueue's own kinds stay with its kept CRDs when Kueue goes
SWITCH_KINDS = [k for k in KINDS if not k[0].startswith("kueue.x-k8s.io/") and k[1] != "Namespace"]
# what a namespace may hold that nobody else put there: the cluster's controllers add these to every namespace
# (openshift-service-ca.crt: OpenShift's kube-controller-manager, as in tests/kubecp's build)
EVERY_NAMESPACE = {
    ("ServiceAccount", "default"),
    ("ConfigMap", "kube-root-ca.crt"),
    ("ConfigMap", "openshift-service-ca.crt"),
}
NAMESPACED_KINDS = [
    ("v1", "pods", "Pod"), ("v1", "services", "Service"), ("v1", "configmaps", "ConfigMap"),
    ("v1", "secrets", "Secret"), ("v1", "serviceaccounts", "ServiceAccount"),
    ("v1", "persistentvolumeclaims", "PersistentVolumeClaim"), ("apps/v1", "deployments", "Deployment"),
    ("apps/v1", "statefulsets", "StatefulSet"), ("apps/v1", "daemonsets", "DaemonSet"), ("batch/v1", "jobs", "Job"),
    ("batch/v1", "cronjobs", "CronJob"),
]  # fmt: skip
FIX = (
    "run `affordml init phase ml` again; if it repeats, look at Kueue: "
    "`kubectl --kubeconfig secrets/kubeconfig -n kueue-system get pods`"
)


def read_queue_objects(path: Path) -> list[dict]:
    try:
        objects = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise RunError(
            f"[{PHASE}] cannot read {path}: {exc}", "run `affordml init` again: it renders env/ anew"
        ) from None
    for obj in objects:
        if not isinstance(obj, dict) or (obj.get("apiVersion"), obj.get("kind")) not in KINDS:
            what = f"{obj.get('apiVersion')} {obj.get('kind')}" if isinstance(obj, dict) else type(obj).__name__
            raise RunError(
                f"[{PHASE}] {path}: unexpected object {what}", "run `affordml init` again: it renders env/ anew"
            )
    return objects


def in_current_mode(objects: list[dict], now: datetime) -> list[dict]:
    """The objects with each switched ClusterQueue in the mode of `now` (what its CronJobs would have set)."""
    patches = _patches(objects)
    out = []
    for obj in objects:
        schedule = (
            obj["metadata"].get("annotations", {}).get(SCHEDULE_ANNOTATION) if obj["kind"] == "ClusterQueue" else None
        )
        if schedule and mode_at(now, json.loads(schedule)) == AFTER_HOURS:
            obj = json.loads(json.dumps(obj))
            obj["spec"].update(patches[(obj["metadata"]["name"], AFTER_HOURS)]["spec"])
        out.append(obj)
    return out


def _patches(objects: list[dict]) -> dict[tuple[str, str], dict]:
    patches = {}
    for job in (o for o in objects if o["kind"] == "CronJob"):
        args = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
        target = args[args.index("clusterqueue") + 1]
        patches[(target, job["metadata"]["labels"][MODE_LABEL])] = json.loads(args[args.index("--patch") + 1])
    return patches


def apply_queue_objects(ctx, kubeconfig: Path, now: datetime | None = None) -> None:
    """Apply env/ml/kueue-queues.yaml: server-side apply in KINDS' order, then remove what an earlier render
    applied and this one has not (by the part-of label)."""
    objects = read_queue_objects(ctx.project.env_dir / "ml" / "kueue-queues.yaml")
    objects = in_current_mode(objects, now or datetime.now(UTC))
    namespaces = {o["metadata"]["namespace"] for o in objects if KINDS[(o["apiVersion"], o["kind"])][1]}
    namespaces -= {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    objects = [_namespace(n) for n in sorted(namespaces)] + objects
    order = list(KINDS)
    objects.sort(key=lambda o: order.index((o["apiVersion"], o["kind"])))
    api = QueueApi(kubeconfig)
    try:
        for obj in objects:
            api.apply(obj)
        removed = api.prune(objects)
    except (OSError, urllib3.exceptions.HTTPError) as exc:
        raise RunError(f"[{PHASE}] cannot reach the Kubernetes API: {exc}", FIX) from None
    finally:
        api.close()
    kinds = sorted({o["kind"] for o in objects})
    ctx.say(f"[{PHASE}] training queue: {len(objects)} objects applied ({', '.join(kinds)})")
    for name in removed:
        ctx.say(f"[{PHASE}] removed {name} (no longer planned)")


def _namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _path(api_version: str, kind: str, namespace: str | None = None, name: str | None = None) -> str:
    plural, _ = KINDS[(api_version, kind)]
    root = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    ns = f"/namespaces/{namespace}" if namespace else ""
    return f"{root}{ns}/{plural}" + (f"/{name}" if name else "")


def _cleared(kind: str, item: dict, release_name: str) -> bool:
    meta = item["metadata"]
    labels = meta.get("labels") or {}
    return bool(
        (kind, meta["name"]) in EVERY_NAMESPACE
        or meta.get("ownerReferences")
        or labels.get("app.kubernetes.io/instance") == release_name
        or labels.get("app.kubernetes.io/part-of") == "affordml-training-queue"
        or meta.get("deletionTimestamp")
    )


def api_message(exc) -> str:
    try:
        return json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason or exc.status)


class QueueApi:
    def __init__(self, kubeconfig: Path, request_timeout: float = 20) -> None:
        from kubernetes import config

        self._api = config.new_client_from_config(config_file=str(kubeconfig))
        self._timeout = request_timeout

    def close(self) -> None:
        self._api.close()

    def _call(self, method: str, path: str, body=None, query=(), content_type="application/json") -> dict:
        from kubernetes.client import ApiException

        request = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query),
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._api.call_api(*request, _request_timeout=self._timeout)
        data = response.read()
        if response.status >= 400:
            raise ApiException(status=response.status, reason=response.reason, body=data.decode(errors="replace"))
        return json.loads(data) if data else {}

    def apply(self, obj: dict) -> dict:
        from kubernetes.client import ApiException

        meta = obj["metadata"]
        path = _path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        try:
            return self._call(
                "PATCH", path, obj, [("fieldManager", FIELD_MANAGER), ("force", "true")], "application/apply-patch+yaml"
            )
        except ApiException as exc:
            if exc.status == 404 and obj["apiVersion"].startswith("kueue.x-k8s.io/"):
                raise RunError(
                    f"[{PHASE}] the API does not know Kueue's {obj['kind']} (kueue.x-k8s.io/v1beta2): the kueue "
                    "release installs its CRDs",
                    "run `affordml init phase ml` again (the kueue release comes first)",
                ) from None
            raise RunError(f"[{PHASE}] the API refused {obj['kind']} {meta['name']}: {api_message(exc)}", FIX) from None

    def read(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict:
        return self._call("GET", _path(api_version, kind, namespace, name))

    def remove_switches(self) -> list[str]:
        """The after-hours CronJobs (their Jobs and pods with them), their account and role, by the part-of label:
        without Kueue they would keep starting Jobs."""
        removed = []
        for api_version, kind in reversed(SWITCH_KINDS):
            namespaced = KINDS[(api_version, kind)][1]
            for item in self._list(api_version, kind):
                meta = item["metadata"]
                path = _path(api_version, kind, meta.get("namespace") if namespaced else None, meta["name"])
                self._delete(path, kind)
                removed.append(f"{kind} {meta['name']}")
        return removed

    def remove_namespace_if_empty(self, namespace: str, release_name: str) -> list[str]:
        """Delete a namespace affordml's helm created (--create-namespace) once it holds nobody else's objects: not
        the release's (its instance label), not ours (part-of), not what the cluster puts in every namespace, not
        another object's child. Returns what it found of others' (then it stays)."""
        others = []
        for api_version, plural, kind in NAMESPACED_KINDS:
            root = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            path = f"{root}/namespaces/{namespace}/{plural}"
            try:
                items = self._call("GET", path).get("items", [])
            except Exception as exc:  # noqa: BLE001 - a namespace already gone has nothing to remove
                if getattr(exc, "status", None) == 404:
                    return []
                raise RunError(f"[{PHASE}] could not list {kind} in {namespace}: {api_message(exc)}", FIX) from None
            others += [f"{kind} {i['metadata']['name']}" for i in items if not _cleared(kind, i, release_name)]
        if not others:
            self._delete(f"/api/v1/namespaces/{namespace}", "Namespace")
            self._wait_gone(f"/api/v1/namespaces/{namespace}")  # else turning Kueue on at once meets "terminating"
        return others

    def _wait_gone(self, path: str, timeout_s: float = 120, pause_s: float = 1.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._exists(path):
                return True
            time.sleep(pause_s)
        return False

    def _exists(self, path: str) -> bool:
        from kubernetes.client import ApiException

        try:
            self._call("GET", path)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise RunError(f"[{PHASE}] could not read {path}: {api_message(exc)}", FIX) from None
        return True

    def _list(self, api_version: str, kind: str) -> list[dict]:
        from kubernetes.client import ApiException

        try:
            return self._call("GET", _path(api_version, kind), query=[("labelSelector", PART_OF)]).get("items", [])
        except ApiException as exc:
            raise RunError(f"[{PHASE}] could not list {kind} objects: {api_message(exc)}", FIX) from None

    def _delete(self, path: str, kind: str, options: dict | None = BACKGROUND) -> None:
        from kubernetes.client import ApiException

        try:
            self._call("DELETE", path, options)
        except ApiException as exc:
            if exc.status != 404:
                raise RunError(f"[{PHASE}] could not remove {kind} {path}: {api_message(exc)}", FIX) from None

    def prune(self, wanted: list[dict]) -> list[str]:
        """Delete objects of ours (the part-of label) that the rendered file no longer has."""
        from kubernetes.client import ApiException

        keep = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in wanted}
        removed = []
        for (api_version, kind), (_, namespaced) in reversed(KINDS.items()):
            if kind == "Namespace":
                continue
            try:
                listed = self._call("GET", _path(api_version, kind), query=[("labelSelector", PART_OF)])
            except ApiException as exc:
                raise RunError(f"[{PHASE}] could not list {kind} objects: {api_message(exc)}", FIX) from None
            for item in listed.get("items", []):
                meta = item["metadata"]
                key = (kind, meta.get("namespace") if namespaced else None, meta["name"])
                if key in keep:
                    continue
                try:
                    self._call("DELETE", _path(api_version, kind, key[1], key[2]))
                except ApiException as exc:
                    if exc.status != 404:
                        raise RunError(f"[{PHASE}] could not remove {kind} {key[2]}: {api_message(exc)}", FIX) from None
                removed.append(f"{kind} {key[2]}")
        return removed
