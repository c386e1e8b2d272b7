"""What the monitoring release needs before it installs, written through the Kubernetes API (values are data):
the namespace, Grafana's admin login as a Secret (from secrets/platform.yml; never in values, a Helm release, a
log or a command line) and the GPU shares dashboard as a ConfigMap that Grafana's dashboard sidecar loads."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from affordml.errors import RunError

NAMESPACE = "monitoring"  # release `monitoring` of kube-prometheus-stack, namespace `monitoring`
ADMIN_SECRET = "affordml-grafana-admin"  # grafana.admin.existingSecret in the rendered values
ADMIN_USER = "admin"
PASSWORD_KEY = "affordml_grafana_admin_password"  # in secrets/platform.yml
DASHBOARD_CONFIGMAP = "affordml-gpu-shares-dashboard"
DASHBOARD_FILE = "grafana-gpu-shares-dashboard.json"  # in templates/ml/
DASHBOARD_LABEL = ("grafana_dashboard", "1")  # grafana.sidecar.dashboards.label / labelValue
MANAGED = {"app.kubernetes.io/managed-by": "affordml"}
_FIX = "check the cluster with `kubectl --kubeconfig secrets/kubeconfig get nodes`, then run `affordml init` again"


def dashboard_path() -> Path:
    from affordml.resources import data_dir

    return data_dir("templates") / "ml" / DASHBOARD_FILE


def read_dashboard(path: Path | None = None) -> str:
    """The dashboard JSON as shipped (checked to be a Grafana dashboard, sent unchanged)."""
    path = path or dashboard_path()
    text = path.read_text()
    try:
        dashboard = json.loads(text)
    except ValueError:
        raise RunError(f"{path} is not JSON", "reinstall affordml: the shipped dashboard is damaged") from None
    if not isinstance(dashboard, dict) or not dashboard.get("uid") or not isinstance(dashboard.get("panels"), list):
        raise RunError(f"{path} is not a Grafana dashboard", "reinstall affordml: the shipped dashboard is damaged")
    return text


def admin_secret(password: str) -> dict:
    encode = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": ADMIN_SECRET, "namespace": NAMESPACE, "labels": dict(MANAGED)},
        "type": "Opaque",
        "data": {"admin-user": encode(ADMIN_USER), "admin-password": encode(password)},
    }


def dashboard_configmap(dashboard_json: str) -> dict:
    key, value = DASHBOARD_LABEL
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": DASHBOARD_CONFIGMAP, "namespace": NAMESPACE, "labels": {**MANAGED, key: value}},
        "data": {DASHBOARD_FILE: dashboard_json},
    }


def grafana_password(project) -> str:
    from affordml.secrets import ensure_platform_secrets, read_secrets

    path = ensure_platform_secrets(project)
    return str(read_secrets(path, project.root)[PASSWORD_KEY])


def prepare_monitoring(ctx, kubeconfig: Path, crds: Path | None = None) -> None:
    """Before the monitoring release: namespace, Grafana's admin Secret and the dashboard ConfigMap (created, or
    replaced when they differ). `crds`: the chart's charts/crds/crds folder, applied first (server-side, as the
    gpu phase does; on a CPU-only platform the gpu phase does not run, and the release leaves them out). Does
    nothing when the plan has monitoring off."""
    if not ctx.plan.ml.get("monitoring"):
        return
    if crds is not None:
        _apply_crds(ctx, kubeconfig, crds)
    objects = [admin_secret(grafana_password(ctx.project)), dashboard_configmap(read_dashboard())]
    api = _client(kubeconfig)
    try:
        _ensure_namespace(api, NAMESPACE)
        for body in objects:
            _create_or_replace(api, body)
    except RunError:
        raise
    except Exception as exc:  # ApiException, connection errors: one line, never the bodies (the Secret)
        raise RunError(f"[ml] the Kubernetes API refused or did not answer: {_reason(exc)}", _FIX) from None
    finally:
        api.close()
    ctx.say(f"[ml] Grafana admin Secret {NAMESPACE}/{ADMIN_SECRET} and dashboard {DASHBOARD_CONFIGMAP} are in place")


def _apply_crds(ctx, kubeconfig: Path, folder: Path) -> None:
    from affordml.gpu.apply import GpuApi, apply_crds, read_crds

    api = GpuApi(kubeconfig)
    try:
        names = apply_crds(api, read_crds(folder))
    except RunError:
        raise
    except Exception as exc:
        raise RunError(f"[ml] the Kubernetes API refused the monitoring CRDs: {_reason(exc)}", _FIX) from None
    finally:
        api.close()
    ctx.say(f"[ml] monitoring CRDs applied and Established: {len(names)}")


def _client(kubeconfig: Path):
    from kubernetes import config

    return config.new_client_from_config(config_file=str(kubeconfig))


def _ensure_namespace(api, name: str) -> None:
    from kubernetes import client

    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    try:
        client.CoreV1Api(api).create_namespace(body, _request_timeout=20)
    except client.ApiException as exc:
        if exc.status != 409:
            raise


def _create_or_replace(api, body: dict) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    kind = body["kind"]
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    create = core.create_namespaced_secret if kind == "Secret" else core.create_namespaced_config_map
    replace = core.replace_namespaced_secret if kind == "Secret" else core.replace_namespaced_config_map
    try:
        create(namespace, body, _request_timeout=20)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
        replace(name, namespace, body, _request_timeout=20)


def _reason(exc: Exception) -> str:
    """The API's Status message, or the exception's type: never a request or response body (it may hold the
    Secret)."""
    body = getattr(exc, "body", None)
    if body:
        try:
            return " ".join(str(json.loads(body).get("message", "")).split())[:300] or type(exc).__name__
        except (TypeError, ValueError, AttributeError):
            pass
    status = getattr(exc, "status", None)
    return f"HTTP {status}" if status else type(exc).__name__
