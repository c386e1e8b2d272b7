"""What the gpu phase writes through the API itself: the namespace, the device plugin's sharing ConfigMap and the
GPU nodes' labels (the `kubernetes` client, imported only here). Values are data: read from env/ files, sent as
objects."""

from __future__ import annotations

from pathlib import Path

import yaml

from affordml.errors import RunError

FIELD_MANAGER = "affordml"


def read_configmap(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or data.get("kind") != "ConfigMap":
        raise RunError(f"{path} is not a ConfigMap", "run `affordml init` again: it renders env/ anew")
    return data


def read_node_labels(path: Path) -> dict[str, dict[str, str]]:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise RunError(f"{path} is not a mapping of node -> labels", "run `affordml init` again: it renders env/ anew")
    for node, labels in data.items():
        for key, value in labels.items():
            if not isinstance(value, str):  # an unquoted `on` reads as a boolean: never guess its text
                raise RunError(
                    f"{path}: label {key} of node {node} is {value!r}, not a string",
                    "run `affordml init` again: it renders env/ anew (label values are quoted)",
                )
    return {str(node): {str(k): v for k, v in labels.items()} for node, labels in data.items()}


class GpuApi:
    def __init__(self, kubeconfig: Path, request_timeout: float = 20) -> None:
        from kubernetes import config

        self._api = config.new_client_from_config(config_file=str(kubeconfig))
        self._timeout = request_timeout

    def close(self) -> None:
        self._api.close()

    def ensure_namespace(self, name: str) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self._api)
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        try:
            core.create_namespace(body, _request_timeout=self._timeout)
        except client.ApiException as exc:
            if exc.status != 409:
                raise

    def apply_configmap(self, body: dict) -> None:
        """Create or replace the ConfigMap (it is ours: rendered by affordml, labelled managed-by affordml)."""
        from kubernetes import client

        core = client.CoreV1Api(self._api)
        meta = body["metadata"]
        try:
            core.create_namespaced_config_map(meta["namespace"], body, _request_timeout=self._timeout)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
            core.replace_namespaced_config_map(meta["name"], meta["namespace"], body, _request_timeout=self._timeout)

    def label_node(self, node: str, labels: dict[str, str]) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self._api)
        try:
            core.patch_node(node, {"metadata": {"labels": labels}}, _request_timeout=self._timeout)
        except client.ApiException as exc:
            if exc.status == 404:
                raise RunError(
                    f"[gpu] GPU node {node} is not in the cluster",
                    "run `affordml init phase kubernetes` again so that the VM joins, then `affordml init phase gpu`",
                ) from None
            raise

    def node_labels(self, node: str) -> dict[str, str]:
        from kubernetes import client

        return dict(client.CoreV1Api(self._api).read_node(node, _request_timeout=self._timeout).metadata.labels or {})


class _CrdLoader(yaml.SafeLoader):
    """SafeLoader that reads a plain `=` as the string it is in YAML 1.2 (PyYAML's 1.1 "value" tag refuses it; the
    prometheus-operator CRDs have `- =` in an enum)."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def read_crds(folder: Path) -> list[dict]:
    """Every CustomResourceDefinition in the folder's *.yaml files (sorted by file name)."""
    crds = []
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=_CrdLoader):  # noqa: S506 - a SafeLoader subclass
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                crds.append(doc)
    if not crds:
        raise RunError(f"no CustomResourceDefinition in {folder}", "the chart archive does not match the version lock")
    return crds


def apply_crds(api: GpuApi, crds: list[dict], timeout_s: float = 60) -> list[str]:
    """Server-side apply (no last-applied annotation: these CRDs are larger than its 256 KiB limit), then wait
    until each is Established, so that whatever reconciles next finds them."""
    import time

    from kubernetes import client

    ext = client.ApiextensionsV1Api(api._api)
    names = []
    for crd in crds:
        name = crd["metadata"]["name"]
        ext.patch_custom_resource_definition(
            name,
            crd,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
            _request_timeout=api._timeout,
        )
        names.append(name)
    deadline = time.monotonic() + timeout_s
    for name in names:
        while not _established(ext.read_custom_resource_definition(name, _request_timeout=api._timeout)):
            if time.monotonic() > deadline:
                raise RunError(f"[gpu] CRD {name} is not Established after {timeout_s:.0f} s", "run the phase again")
            time.sleep(0.5)
    return names


def _established(crd) -> bool:
    return any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))


def wait_runtime_class(api: GpuApi, name: str, timeout_s: float, say, poll_s: float = 5) -> float:
    """Wait until the RuntimeClass exists; returns the seconds waited. The GPU Operator creates it (not its chart)
    once its container toolkit runs on a GPU node; a pod that names it before is refused by the API ("pod
    rejected: RuntimeClass \"nvidia\" not found", measured with HAMi 2.10.0's device plugin DaemonSet)."""
    import time

    from kubernetes import client

    node = client.NodeV1Api(api._api)
    started = time.monotonic()
    last_said = started
    while True:
        try:
            node.read_runtime_class(name, _request_timeout=api._timeout)
            return time.monotonic() - started
        except client.ApiException as exc:
            if exc.status != 404:
                raise
        now = time.monotonic()
        if now - started > timeout_s:
            raise RunError(
                f"[gpu] RuntimeClass {name} is not there after {timeout_s:.0f} s: the GPU Operator creates it when "
                "its container toolkit runs on the GPU node, and HAMi's device plugin needs it",
                "look at the toolkit: `kubectl --kubeconfig secrets/kubeconfig -n gpu-operator get pods` "
                "(nvidia-container-toolkit-daemonset), then run `affordml init phase gpu` again",
            )
        if now - last_said >= 30:
            say(f"waiting for RuntimeClass {name} (the GPU Operator creates it), {now - started:.0f} s")
            last_said = now
        time.sleep(poll_s)
