"""JupyterHub's URL: the `proxy-public` service's NodePort on a worker VM's floating IP (the address the cloud
phase recorded, affordml/cloud/reachable.py), and a GET of it that never leaves that address."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

from affordml.errors import RunError
from affordml.plan.model import Plan
from affordml.verify.api import CheckFailed, VerifyApi

HUB_NAMESPACE, HUB_SERVICE = "jupyterhub", "proxy-public"
HTTP_TIMEOUT_S = 10
MAX_BODY = 1 << 20


def hub_node_port(api: VerifyApi) -> int:
    service = api.get(f"/api/v1/namespaces/{HUB_NAMESPACE}/services/{HUB_SERVICE}")
    if service is None:
        raise CheckFailed(f"service {HUB_NAMESPACE}/{HUB_SERVICE} does not exist")
    ports = (service.get("spec") or {}).get("ports") or []
    port = next((p for p in ports if p.get("name") == "http"), ports[0] if ports else {})
    if not port.get("nodePort"):
        kind = (service.get("spec") or {}).get("type")
        raise CheckFailed(f"service {HUB_NAMESPACE}/{HUB_SERVICE} has no NodePort (type {kind})")
    return int(port["nodePort"])


def worker_address(plan: Plan, state_data: dict) -> str:
    from affordml.cloud.reachable import vm_addresses

    try:
        addresses = vm_addresses(state_data)
    except RunError as exc:
        raise CheckFailed(exc.problem, exc.fix or "") from None
    for vm in plan.vms:
        if vm.role == "worker" and vm.name in addresses:
            return addresses[vm.name]
    raise CheckFailed("the cloud phase recorded no worker VM address", "run `affordml init phase cloud` again")


def jupyterhub_url(api: VerifyApi, plan: Plan, state_data: dict) -> str:
    return f"http://{worker_address(plan, state_data)}:{hub_node_port(api)}/"


class _SameHostOnly(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
            return None  # never follow a redirect away from the cluster's address
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def http_get(url: str) -> tuple[int, str]:
    """(status, first MiB of the body as text); no proxy from the environment, no redirect to another host."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _SameHostOnly())
    try:
        with opener.open(urllib.request.Request(url, method="GET"), timeout=HTTP_TIMEOUT_S) as answer:
            return answer.status, answer.read(MAX_BODY).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (OSError, ValueError) as exc:
        raise CheckFailed(f"{url} did not answer: {' '.join(str(exc).split())[:200]}") from None
