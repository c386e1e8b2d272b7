"""What stays and what goes when an ml release is removed, through the API: the release's CRDs are kept (and with
them the users' objects; `destroy --delete-data` deletes them), the cluster-wide objects the cluster re-created
after helm deleted them are deleted, bounded."""

from __future__ import annotations

import time

from affordml.ml.queues import QueueApi

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CLUSTER_ROLES = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
RELEASE_NAME = "meta.helm.sh/release-name"
RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
POLICY = "helm.sh/resource-policy"


class ReleaseCleanup(QueueApi):
    def release_crds(self, release) -> list[str]:
        """The CRDs helm installed for this release (its ownership annotations)."""
        listed = self._call("GET", CRDS).get("items", [])
        return sorted(
            item["metadata"]["name"]
            for item in listed
            if (item["metadata"].get("annotations") or {}).get(RELEASE_NAME) == release.name
            and item["metadata"]["annotations"].get(RELEASE_NAMESPACE) == release.namespace
        )

    def mark_kept(self, release) -> list[str]:
        """`helm.sh/resource-policy: keep` on the live CRDs (a merge patch): helm's upgrade honours it on the live
        object; uninstall reads the stored manifest, which the post-renderer marked (affordml.helm.keep)."""
        names = self.release_crds(release)
        patch = {"metadata": {"annotations": {POLICY: "keep"}}}
        for name in names:
            self._call("PATCH", f"{CRDS}/{name}", patch, content_type="application/merge-patch+json")
        return names

    def delete_crds(self, release) -> list[str]:
        """The release's kept CRDs and every object of theirs. The release's controller is gone, so the finalizers
        it would have cleared (Kueue's resource-in-use) are cleared here first, else the CRD never goes."""
        names = self.release_crds(release)
        for name in names:
            self._clear_finalizers(self._call("GET", f"{CRDS}/{name}"))
            self._delete(f"{CRDS}/{name}", "CustomResourceDefinition", options=None)
        return names

    def still_there(self, names: list[str], timeout_s: float = 120, pause_s: float = 2.0) -> list[str]:
        """The API deletes a CRD's objects before the CRD itself: wait for that, bounded; returns what is left."""
        deadline = time.monotonic() + timeout_s
        left = list(names)
        while left:
            left = [name for name in left if self._exists(f"{CRDS}/{name}")]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(pause_s)
        return left

    def _clear_finalizers(self, crd: dict) -> None:
        spec = crd["spec"]
        version = next(v["name"] for v in spec["versions"] if v.get("storage"))  # no conversion needed to read it
        root = f"/apis/{spec['group']}/{version}"
        for item in self._call("GET", f"{root}/{spec['names']['plural']}").get("items", []):
            meta = item["metadata"]
            if not meta.get("finalizers"):
                continue
            ns = f"/namespaces/{meta['namespace']}" if meta.get("namespace") else ""
            patch = {"metadata": {"finalizers": None}}
            path = f"{root}{ns}/{spec['names']['plural']}/{meta['name']}"
            self._call("PATCH", path, patch, content_type="application/merge-patch+json")

    def delete_leftover_roles(self, names: list[str], attempts: int = 5, pause_s: float = 2.0) -> list[str]:
        """ClusterRoles of a removed release that still exist (kube-controller-manager's clusterrole-aggregation
        controller re-creates an aggregated role it had cached); a few rounds, never forever. Returns what stays."""
        left = list(names)
        for attempt in range(attempts):
            left = [name for name in left if self._exists(f"{CLUSTER_ROLES}/{name}")]
            if not left:
                break
            for name in left:
                self._delete(f"{CLUSTER_ROLES}/{name}", "ClusterRole", options=None)
            if attempt < attempts - 1:
                time.sleep(pause_s)
        return [name for name in left if self._exists(f"{CLUSTER_ROLES}/{name}")]
