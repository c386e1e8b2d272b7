"""The few API calls the checks make, by path, over a transport (transport.py). An answer the check cannot use
raises CheckFailed with the API's own message."""

from __future__ import annotations

from affordml.verify.transport import Transport


class CheckFailed(Exception):
    """A check saw something other than what the plan promised; `fix` says what to do (else the check's own)."""

    def __init__(self, detail: str, fix: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


def api_message(answer: object) -> str:
    if isinstance(answer, dict):
        return " ".join(str(answer.get("message") or answer.get("reason") or answer).split())[:300]
    return " ".join(str(answer).split())[:300]


class VerifyApi:
    def __init__(self, transport: Transport) -> None:
        self.call = transport

    def get(self, path: str, query: dict | None = None) -> dict | None:
        """The object, or None when it does not exist (404)."""
        status, answer = self.call("GET", path, query, None)
        if status == 404:
            return None
        if status != 200 or not isinstance(answer, dict):
            raise CheckFailed(f"GET {path}: HTTP {status} {api_message(answer)}")
        return answer

    def items(self, path: str, query: dict | None = None) -> list[dict]:
        found = self.get(path, query)
        return list((found or {}).get("items") or [])

    def create(self, path: str, body: dict) -> dict:
        """POST; an object of that name that exists already is taken as it is (409)."""
        status, answer = self.call("POST", path, None, body)
        if status == 409:
            return self.get(f"{path}/{body['metadata']['name']}") or {}
        if status not in (200, 201, 202) or not isinstance(answer, dict):
            raise CheckFailed(f"the API refused {body.get('kind')} {body['metadata']['name']}: {api_message(answer)}")
        return answer

    def delete(self, path: str, query: dict | None = None) -> bool:
        """True when it was there; deletion of what the checks made runs in the background (foreground
        propagation for Jobs is asked by the caller)."""
        status, answer = self.call("DELETE", path, query, None)
        if status not in (200, 202, 404):
            raise CheckFailed(f"DELETE {path}: HTTP {status} {api_message(answer)}")
        return status != 404

    def proxy(
        self, namespace: str, service: str, port: int, path: str, query: dict | None = None
    ) -> tuple[int, object]:
        """GET through the API server's service proxy: only the cluster's own addresses, no port exposed."""
        return self.call("GET", f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/{path}", query, None)
