"""How the checks talk to the Kubernetes API: one call = (method, path, query, body) -> (HTTP status, answer).
KubeTransport goes through the `kubernetes` client (imported only here); Recorder keeps every answer of a real run;
Replay answers from such a recording, so CI runs the checks' logic on answers of real shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Answer = tuple[int, object]  # (status, parsed JSON, or text when the answer is not JSON)
Transport = Callable[[str, str, dict | None, dict | None], Answer]


class ApiUnreachable(Exception):
    """The API server did not answer (connection refused, timeout, TLS)."""


def _parse(raw: bytes | str | None) -> object:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (raw or "")
    try:
        return json.loads(text)
    except ValueError:
        return text


class KubeTransport:
    def __init__(self, kubeconfig: Path, request_timeout: float = 15) -> None:
        from kubernetes import config

        self._api = config.new_client_from_config(config_file=str(kubeconfig))
        self._timeout = request_timeout

    def __call__(self, method: str, path: str, query: dict | None = None, body: dict | None = None) -> Answer:
        from kubernetes.client import ApiException

        headers = {"Accept": "application/json, */*"}
        if body is not None:
            headers["Content-Type"] = "application/merge-patch+json" if method == "PATCH" else "application/json"
        params = self._api.param_serialize(
            method, path, query_params=list((query or {}).items()), header_params=headers, body=body,
            auth_settings=["BearerToken"],
        )  # fmt: skip
        try:
            response = self._api.call_api(*params, _request_timeout=self._timeout)
            response.read()
            return response.status, _parse(response.data)
        except ApiException as exc:
            return exc.status or 0, _parse(exc.body)
        except Exception as exc:  # urllib3 errors: the API did not answer
            raise ApiUnreachable(" ".join(f"{type(exc).__name__}: {exc}".split())[:200]) from None

    def close(self) -> None:
        self._api.close()


@dataclass
class Recorder:
    """Wraps a transport and keeps each call with its answer, in order (written as the CI fixtures)."""

    inner: Transport
    calls: list[dict] = field(default_factory=list)

    def __call__(self, method: str, path: str, query: dict | None = None, body: dict | None = None) -> Answer:
        status, answer = self.inner(method, path, query, body)
        self.calls.append({"method": method, "path": path, "query": query or {}, "status": status, "answer": answer})
        return status, answer

    def http(self, get: Callable[[str], tuple[int, str]]) -> Callable[[str], tuple[int, str]]:
        """Wrap the JupyterHub URL's GET so that its answer is kept too."""

        def recorded(url: str) -> tuple[int, str]:
            status, text = get(url)
            self.calls.append({"method": "HTTP GET", "path": url, "query": {}, "status": status, "answer": text})
            return status, text

        return recorded

    def save(self, path: Path) -> None:
        """As JSON, without the objects' managedFields (bookkeeping of the API server no check reads)."""
        path.write_text(json.dumps([_trimmed(c) for c in self.calls], indent=1, sort_keys=True) + "\n")


def _trimmed(value):
    if isinstance(value, dict):
        return {k: _trimmed(v) for k, v in value.items() if k != "managedFields"}
    if isinstance(value, list):
        return [_trimmed(v) for v in value]
    return value


class Replay:
    """Answers each (method, path, query) with the recorded answers in their order; the last one repeats (a pod
    polled more often than in the recording stays as it last was). An unrecorded call answers 404."""

    def __init__(self, calls: list[dict]) -> None:
        self._answers: dict[tuple, list[Answer]] = {}
        for call in calls:
            key = (call["method"], call["path"], json.dumps(call.get("query") or {}, sort_keys=True))
            self._answers.setdefault(key, []).append((call["status"], call["answer"]))
        self.unrecorded: list[tuple] = []
        self.bodies: list[tuple[str, str, dict]] = []

    @classmethod
    def load(cls, path: Path) -> Replay:
        return cls(json.loads(path.read_text()))

    def __call__(self, method: str, path: str, query: dict | None = None, body: dict | None = None) -> Answer:
        if body is not None:
            self.bodies.append((method, path, body))
        key = (method, path, json.dumps(query or {}, sort_keys=True))
        answers = self._answers.get(key)
        if not answers:
            self.unrecorded.append(key)
            return 404, {"kind": "Status", "reason": "NotFound", "message": f"not recorded: {method} {path}"}
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def http_get(self, url: str) -> tuple[int, str]:
        status, text = self("HTTP GET", url)
        return status, text if isinstance(text, str) else ""
