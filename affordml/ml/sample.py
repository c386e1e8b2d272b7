"""`affordml serve sample`: apply or remove the sample InferenceService and its LAN Service (rendered to
env/ml/serving-sample.yaml) through the Kubernetes API, and say how to call it. The `kubernetes` client is
imported only here, inside the calls. Values are data: the objects are read from the rendered file and sent as
they are, with server-side apply and strict field validation (the API refuses a field it does not know)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from affordml.errors import RunError
from affordml.ml.serving import SAMPLE_INPUT, SAMPLE_LAN_SERVICE, SAMPLE_NAME, SAMPLE_NAMESPACE

SAMPLE_FILE = "ml/serving-sample.yaml"  # relative to env/
FIELD_MANAGER = "affordml"
ISVC_GROUP, ISVC_VERSION, ISVC_PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
ISVC_CRD = f"{ISVC_PLURAL}.{ISVC_GROUP}"
REACHED_THROUGH = "affordml.io/reached-through"
_RERENDER = "run `affordml init` (it renders env/ with ml.inference on)"
_REFUSED_FIX = "run `affordml init` so that env/ml/serving-sample.yaml is rendered anew, then run the command again"
_API_FIX = "check the cluster with `kubectl --kubeconfig secrets/kubeconfig get nodes`, then run the command again"


class SampleError(RunError):
    label = "serve"


@dataclass(frozen=True)
class SampleObjects:
    inference_service: dict
    lan_service: dict

    @property
    def node(self) -> str:
        return (self.lan_service["metadata"].get("annotations") or {}).get(REACHED_THROUGH, "")


def parse_sample(text: str | None, where: Path) -> SampleObjects:
    """The two objects of the rendered file, checked to be the sample's (kind, name, namespace)."""
    if text is None:
        raise SampleError(f"no {where}: the sample is rendered only when ml.inference is on", _RERENDER)
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise SampleError(f"{where} is not YAML ({' '.join(str(exc).split())[:120]})", _RERENDER) from None
    by_kind = {d.get("kind"): d for d in docs if isinstance(d, dict)}
    isvc, service = by_kind.get("InferenceService"), by_kind.get("Service")
    for what, obj, name in (("InferenceService", isvc, SAMPLE_NAME), ("Service", service, SAMPLE_LAN_SERVICE)):
        meta = (obj or {}).get("metadata") or {}
        if meta.get("name") != name or meta.get("namespace") != SAMPLE_NAMESPACE:
            raise SampleError(f"{where} has no {what} {SAMPLE_NAMESPACE}/{name}", _RERENDER)
    return SampleObjects(isvc, service)


def api_text(exc: Exception) -> str:
    """The API's own message (e.g. a validation error), on one line."""
    body = getattr(exc, "body", None)
    if body:
        try:
            return " ".join(str(json.loads(body).get("message", body)).split())[:400]
        except (ValueError, AttributeError):
            return " ".join(str(body).split())[:400]
    return " ".join(str(exc).split())[:400] or type(exc).__name__


class SampleApi:
    def __init__(self, kubeconfig: Path, request_timeout: float = 20) -> None:
        from kubernetes import config

        try:
            self._api = config.new_client_from_config(config_file=str(kubeconfig))
        except (config.ConfigException, yaml.YAMLError, TypeError, AttributeError) as exc:
            raise SampleError(
                f"{kubeconfig} is not a kubeconfig the Kubernetes client can use ({' '.join(str(exc).split())[:160]})",
                "run `affordml init phase kubernetes` again: it writes the kubeconfig anew",
            ) from None
        self._timeout = request_timeout

    def close(self) -> None:
        self._api.close()

    def kserve_installed(self) -> bool:
        from kubernetes import client

        try:
            client.ApiextensionsV1Api(self._api).read_custom_resource_definition(
                ISVC_CRD, _request_timeout=self._timeout
            )
        except client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def ensure_namespace(self, name: str) -> None:
        from kubernetes import client

        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        try:
            client.CoreV1Api(self._api).create_namespace(body, _request_timeout=self._timeout)
        except client.ApiException as exc:
            if exc.status != 409:
                raise

    def apply_inference_service(self, body: dict) -> dict:
        from kubernetes import client

        meta = body["metadata"]
        return client.CustomObjectsApi(self._api).patch_namespaced_custom_object(
            ISVC_GROUP,
            ISVC_VERSION,
            meta["namespace"],
            ISVC_PLURAL,
            meta["name"],
            body,
            **self._apply_options(),
        )

    def apply_service(self, body: dict):
        from kubernetes import client

        meta = body["metadata"]
        return client.CoreV1Api(self._api).patch_namespaced_service(
            meta["name"], meta["namespace"], body, **self._apply_options()
        )

    def _apply_options(self) -> dict:
        """Server-side apply as affordml, taking over its fields, refusing fields the API does not know."""
        return {
            "field_manager": FIELD_MANAGER,
            "force": True,
            "field_validation": "Strict",
            "_content_type": "application/apply-patch+yaml",
            "_request_timeout": self._timeout,
        }

    def delete(self, objects: SampleObjects) -> list[str]:
        """Delete both; returns what was there and is now being deleted."""
        from kubernetes import client

        gone = []
        isvc, service = objects.inference_service["metadata"], objects.lan_service["metadata"]
        calls = (
            (
                f"InferenceService {isvc['namespace']}/{isvc['name']}",
                lambda: client.CustomObjectsApi(self._api).delete_namespaced_custom_object(
                    ISVC_GROUP, ISVC_VERSION, isvc["namespace"], ISVC_PLURAL, isvc["name"],
                    _request_timeout=self._timeout,
                ),
            ),
            (
                f"Service {service['namespace']}/{service['name']}",
                lambda: client.CoreV1Api(self._api).delete_namespaced_service(
                    service["name"], service["namespace"], _request_timeout=self._timeout
                ),
            ),
        )  # fmt: skip
        for what, call in calls:
            try:
                call()
                gone.append(what)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
        return gone


def _guarded(action):
    """Run one API action; every API or connection error becomes one line naming the API's own reason."""
    import urllib3
    from kubernetes.client import ApiException

    try:
        return action()
    except ApiException as exc:  # the API answered (server-side apply reports a typed-patch error as 500)
        raise SampleError(f"the Kubernetes API refused the sample: {api_text(exc)}", _REFUSED_FIX) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:  # refused connection, timeout, TLS
        raise SampleError(f"the Kubernetes API did not answer: {api_text(exc)}", _API_FIX) from None


def apply_sample(api: SampleApi, objects: SampleObjects) -> int:
    """Apply both objects; returns the NodePort the API gave the LAN Service."""

    def run() -> int:
        if not api.kserve_installed():
            raise SampleError(
                f"KServe is not installed in this cluster (no CRD {ISVC_CRD})",
                "turn ml.inference on in affordml.yaml and run `affordml init` (the ml phase installs KServe)",
            )
        api.ensure_namespace(SAMPLE_NAMESPACE)
        api.apply_inference_service(objects.inference_service)
        service = api.apply_service(objects.lan_service)
        return int(service.spec.ports[0].node_port)

    return _guarded(run)


def remove_sample(api: SampleApi, objects: SampleObjects) -> list[str]:
    return _guarded(lambda: api.delete(objects))


def how_to_call(address: str, node_port: int) -> list[str]:
    """What the user runs to call the sample from the LAN."""
    url = f"http://{address}:{node_port}/v1/models/{SAMPLE_NAME}:predict"
    body = json.dumps(SAMPLE_INPUT)
    return [
        f"URL (from the LAN): {url}",
        f"try it: curl -s -H 'Content-Type: application/json' -d '{body}' {url}",
        f"inside the cluster: http://{SAMPLE_NAME}-predictor.{SAMPLE_NAMESPACE}.svc.cluster.local/v1/models/"
        f"{SAMPLE_NAME}:predict",
        f"it answers once the model is downloaded and the predictor is Ready: `kubectl --kubeconfig "
        f"secrets/kubeconfig -n {SAMPLE_NAMESPACE} get inferenceservice {SAMPLE_NAME}`",
    ]
