"""The cluster's admin kubeconfig: read from the control plane over SSH, pointed at the API address this PC
reaches, kept in secrets/ (0600). It never passes through Ansible, so it appears in no run log."""

from __future__ import annotations

from pathlib import Path

import yaml

from affordml.errors import RunError
from affordml.kube import remote
from affordml.kube.access import ClusterAccess
from affordml.secrets import secure_dir, write_private

ADMIN_CONF = "/etc/kubernetes/admin.conf"
KUBECONFIG_NAME = "kubeconfig"  # no .yml: secrets/*.yml are Ansible vars files


def kubeconfig_path(secrets_dir: Path) -> Path:
    return secrets_dir / KUBECONFIG_NAME


def point_at(text: str, api_url: str, source: str) -> str:
    """The kubeconfig with every cluster's server set to api_url; anything not a kubeconfig is refused."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    clusters = data.get("clusters") if isinstance(data, dict) else None
    if data is None or not isinstance(clusters, list) or not clusters or data.get("kind") != "Config":
        raise RunError(
            f"{source} is not a kubeconfig", "run `affordml init phase kubernetes` again (Kubespray writes it)"
        )
    for entry in clusters:
        if not isinstance(entry, dict) or not isinstance(entry.get("cluster"), dict):
            raise RunError(f"{source}: a cluster entry has no 'cluster' mapping", "run the kubernetes phase again")
        entry["cluster"]["server"] = api_url
    return yaml.safe_dump(data, sort_keys=False)


def fetch_admin_kubeconfig(access: ClusterAccess, secrets_dir: Path) -> Path:
    """Copy the control plane's admin.conf into secrets/kubeconfig (0600), server = the reachable API URL."""
    node = access.control_plane
    out = remote.run(node, remote.as_root(node, ["cat", ADMIN_CONF]))
    source = f"{ADMIN_CONF} on {node.name}"
    if out.rc != 0:
        raise RunError(
            f"cannot read {source}: {' '.join(out.stderr.split())[:200] or f'exit {out.rc}'}",
            "the Kubespray run did not finish on the control plane: run `affordml init phase kubernetes` again",
        )
    text = point_at(out.stdout, access.api_url, source)
    secure_dir(secrets_dir)
    target = kubeconfig_path(secrets_dir)
    write_private(target, text)
    return target
