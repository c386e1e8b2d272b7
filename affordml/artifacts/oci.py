"""Helm charts stored in OCI registries: read the manifest (anonymous bearer token if asked), fetch by digest."""

from __future__ import annotations

import json
import re

from affordml.artifacts.download import Policy, fetch_bytes
from affordml.errors import ArtifactError

MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json"
CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def _anonymous_token(manifest_url: str, *, name: str, policy: Policy) -> str | None:
    """A pull token if the registry asks for one (401 with a Bearer challenge), else None."""
    import urllib.error
    import urllib.parse
    import urllib.request

    request = urllib.request.Request(manifest_url, method="HEAD", headers={"Accept": MANIFEST_TYPES})
    try:
        urllib.request.urlopen(request, timeout=policy.timeout_s).close()  # noqa: S310 (URL from the lock)
        return None
    except urllib.error.HTTPError as exc:
        challenge = exc.headers.get("WWW-Authenticate", "")
        exc.close()
        if exc.code != 401 or not challenge.lower().startswith("bearer "):
            return None  # the manifest request itself reports the problem
    except (OSError, ValueError):
        return None
    fields = dict(CHALLENGE.findall(challenge))
    if "realm" not in fields:
        return None
    query = urllib.parse.urlencode({k: v for k, v in fields.items() if k in ("service", "scope")})
    body = fetch_bytes(f"{fields['realm']}?{query}", name=name, policy=policy)
    try:
        data = json.loads(body)
        return data.get("token") or data.get("access_token")
    except (ValueError, AttributeError):
        raise ArtifactError(f"{name}: the registry's token answer is not JSON", "try again later") from None


def oci_manifest(manifest_url: str, *, name: str, policy: Policy) -> tuple[bytes, dict[str, str]]:
    """The manifest bytes and the headers (token) that the blob request needs."""
    token = _anonymous_token(manifest_url, name=name, policy=policy)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = fetch_bytes(manifest_url, name=name, policy=policy, headers={"Accept": MANIFEST_TYPES, **headers})
    return body, headers


def blob_url(manifest_url: str, sha256: str) -> str:
    base, sep, _tag = manifest_url.rpartition("/manifests/")
    if not sep:
        raise ArtifactError(f"{manifest_url} is not an OCI manifest URL", "fix the artifact's url in the lock")
    return f"{base}/blobs/sha256:{sha256}"
