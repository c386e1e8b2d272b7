"""Reaching Prometheus's HTTP API: at a URL (`--prometheus`), or through the Kubernetes API server's service
proxy (monitoring/prometheus-operated:9090, kubeconfig secrets/kubeconfig), so no extra port is exposed. Either
way an unanswered or refused question is one line (RunError)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from affordml.errors import RunError

NAMESPACE = "monitoring"
SERVICE = "prometheus-operated:9090"
TIMEOUT_S = 30
MAX_ANSWER = 64 * 2**20  # a 90-day matrix at the report's step is a few MiB
_FIX_URL = "check the address, or leave out --prometheus to ask the cluster's Prometheus through the API server"
_FIX_PROXY = (
    "is monitoring installed (`affordml init phase ml`, ml.monitoring: true)? Check "
    "`kubectl --kubeconfig secrets/kubeconfig -n monitoring get pods`, or pass --prometheus URL"
)


def _answer(body: bytes, where: str, fix: str) -> dict:
    """The `data` of a Prometheus API answer; anything else named in one line."""
    try:
        answer = json.loads(body)
    except ValueError:
        raise RunError(f"{where} did not answer as Prometheus does (not JSON)", fix) from None
    if not isinstance(answer, dict) or answer.get("status") != "success" or not isinstance(answer.get("data"), dict):
        error = answer.get("error", "no data") if isinstance(answer, dict) else "not an object"
        raise RunError(f"{where} refused the query: {' '.join(str(error).split())[:200]}", fix)
    return answer["data"]


class UrlPrometheus:
    """Prometheus at the URL the user gave, and only there: no redirect is followed and no proxy from the
    environment is used."""

    def __init__(self, url: str) -> None:
        problem = _url_problem(url)
        if problem:
            raise RunError(f"--prometheus {_shown(url)!r} {problem}", "e.g. --prometheus http://127.0.0.1:9090")
        self.url = url.rstrip("/")
        self.where = f"Prometheus at {self.url}"

    def get(self, api_path: str, params: dict) -> dict:
        from urllib.error import HTTPError, URLError

        try:
            with _opener().open(f"{self.url}/{api_path}?{urlencode(params)}", timeout=TIMEOUT_S) as response:
                return _answer(_read_capped(response, self.where), self.where, _FIX_URL)
        except HTTPError as exc:
            if 300 <= exc.code < 400:
                raise RunError(
                    f"{self.where} redirects (HTTP {exc.code}); affordml asks only the URL you gave", _FIX_URL
                ) from None
            return _answer(_read_capped(exc, self.where), self.where, _FIX_URL)
        except (URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RunError(f"{self.where} is unreachable: {' '.join(str(reason).split())[:200]}", _FIX_URL) from None


def _shown(url: str) -> str:
    """The URL as an error shows it: a password in it is never printed."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return (scheme + sep + rest)[:80]


def _url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        return "is not an http(s) URL"
    if parts.query or parts.fragment or "@" in parts.netloc:
        return "has a query, a fragment or a user name: give Prometheus's base URL only"
    if port == 0:
        return "has port 0"
    return None


def _opener():
    """urllib without the environment's proxies and refusing redirects (a 3xx comes back as an HTTPError)."""
    from urllib.request import HTTPRedirectHandler, ProxyHandler, build_opener

    class RefuseRedirects(HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    return build_opener(ProxyHandler({}), RefuseRedirects())


def _read_capped(response, where: str) -> bytes:
    body = response.read(MAX_ANSWER + 1)
    if len(body) > MAX_ANSWER:
        raise RunError(f"{where} answered more than {MAX_ANSWER // 2**20} MiB", "ask for a shorter --since")
    return body


class ProxyPrometheus:
    """Prometheus behind the API server: GET /api/v1/namespaces/monitoring/services/prometheus-operated:9090/proxy/…"""

    def __init__(self, kubeconfig: Path) -> None:
        if not kubeconfig.is_file() or kubeconfig.is_symlink():
            raise RunError(
                f"no cluster kubeconfig at {kubeconfig}",
                "run `affordml init` first (the kubernetes phase writes it), or pass --prometheus URL",
            )
        self.kubeconfig = kubeconfig
        self.where = f"Prometheus ({NAMESPACE}/{SERVICE} through the Kubernetes API)"

    def get(self, api_path: str, params: dict) -> dict:
        from kubernetes import config

        try:
            api = config.new_client_from_config(config_file=str(self.kubeconfig))
        except Exception as exc:  # a kubeconfig the client cannot read: one line
            raise RunError(f"{self.kubeconfig}: {' '.join(str(exc).split())[:200]}", _FIX_PROXY) from None
        _refuse_redirects(api)
        try:
            status, body = _get(api, f"/api/v1/namespaces/{NAMESPACE}/services/{SERVICE}/proxy/{api_path}", params)
        except Exception as exc:  # connection refused, TLS, timeouts
            raise RunError(f"{self.where} is unreachable: {' '.join(str(exc).split())[:200]}", _FIX_PROXY) from None
        finally:
            api.close()
        _capped(body)
        if status in (200, 400, 422):  # 400/422: Prometheus's own refusal, passed on by the proxy
            return _answer(body, self.where, _FIX_PROXY)
        raise RunError(f"{self.where} is unreachable: {_api_reason(status, body)}", _FIX_PROXY)


def _refuse_redirects(api) -> None:
    """The client's urllib3 pool follows a 3xx to wherever it points; the report talks to the API server only,
    so an answer that redirects comes back as its status (and is refused as not Prometheus's answer)."""
    from functools import partial

    pool = api.rest_client.pool_manager
    pool.request = partial(pool.request, redirect=False)


def _get(api, path: str, params: dict) -> tuple[int, bytes]:
    """(status, body) of a GET through the client's connection and credentials: the client's generated code
    newer releases split call_api into param_serialize + call_api and do not raise on 4xx; older ones raise."""
    if hasattr(api, "param_serialize"):
        method, url, headers, _, _ = api.param_serialize(
            "GET", path, query_params=list(params.items()), auth_settings=["BearerToken"]
        )
        response = api.call_api(method, url, header_params=headers, _request_timeout=TIMEOUT_S)
        return response.status, response.read()
    from kubernetes.client import ApiException

    try:
        response = api.call_api(
            path,
            "GET",
            query_params=list(params.items()),
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=TIMEOUT_S,
        )
    except ApiException as exc:
        body = exc.body or b""
        return exc.status, body.encode() if isinstance(body, str) else body
    return response[0].status, response[0].data


def _capped(body: bytes) -> bytes:
    if len(body) > MAX_ANSWER:
        raise RunError(f"Prometheus answered more than {MAX_ANSWER // 2**20} MiB", "ask for a shorter --since")
    return body


def _api_reason(status: int, body: bytes) -> str:
    """The API server's Status message (e.g. `services "prometheus-operated" not found`), else the body's start."""
    try:
        message = json.loads(body).get("message", "")
    except (TypeError, ValueError, AttributeError):
        message = body[:120].decode(errors="replace")
    return " ".join(f"HTTP {status} {message}".split())[:200]


def query_range(prometheus, query: str, start: float, end: float, step_s: int) -> list[dict]:
    """The matrix of /api/v1/query_range: [{"metric": {...}, "values": [[t, "v"], ...]}, ...]; an answer of
    another shape is one line, never a crash further on."""
    data = prometheus.get("api/v1/query_range", {"query": query, "start": start, "end": end, "step": step_s})
    if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        raise RunError(
            f"{prometheus.where} answered a {str(data.get('resultType'))[:40]!r}, not a matrix", "run it again"
        )
    for series in data["result"]:
        if not _is_series(series):
            raise RunError(
                f"{prometheus.where} answered a matrix of another shape than Prometheus's",
                "check that it is Prometheus's HTTP API",
            )
    return data["result"]


def _is_series(series) -> bool:
    if not isinstance(series, dict) or not isinstance(series.get("metric", {}), dict):
        return False
    if not all(isinstance(v, str) for v in series.get("metric", {}).values()):
        return False
    values = series.get("values", [])
    return isinstance(values, list) and all(_is_sample(sample) for sample in values)


def _is_sample(sample) -> bool:
    if not isinstance(sample, list) or len(sample) != 2 or not isinstance(sample[1], str):
        return False
    stamp = sample[0]
    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not 0 <= stamp < 2**33:
        return False
    try:
        float(sample[1])
    except ValueError:
        return False
    return True
