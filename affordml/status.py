"""What `affordml status` reports about a project folder."""

from __future__ import annotations

import os
from dataclasses import asdict

from affordml.errors import StateError
from affordml.ml.hub import hub_status
from affordml.phases.state import load_state
from affordml.project import Project
from affordml.render.engine import STAMP, read_stamp
from affordml.verify.record import status_section as verify_status_section


def project_status(project: Project, query_cloud: bool = True) -> dict:
    data = {
        "project": str(project.root),
        "config": str(project.config_file) if project.config_file.exists() else "none (defaults)",
        "facts": str(project.facts_file) if project.facts_file.exists() else "not saved",
    }
    data["env"] = env_line(project)
    try:
        state = load_state(project.state_file)
    except StateError as exc:
        data["phases"] = exc.one_line()
        return data | {"cloud": cloud_section(project, None, query_cloud), "kubernetes": kube_section(project, None)}
    data["phases"] = {name: asdict(p) for name, p in state.phases.items()} or "nothing has run yet"
    if state.data.get("nodes"):
        from affordml.lifecycle.nodes import nodes_line

        data["added PCs"] = nodes_line(state.data)
    from affordml.lifecycle.status import lifecycle_lines

    data |= lifecycle_lines(state.data)
    data["cloud"] = cloud_section(project, _part(state.data, "cloud", "servers", dict), query_cloud)
    data["kubernetes"] = kube_section(project, _part(state.data, "kubernetes", "nodes", list), query_cloud)
    data["verify"] = verify_status_section(state.data.get("verify"))
    data.update(hub_status(state.data))
    return data


def _part(data: dict, key: str, inner: str, kind: type) -> dict | None:
    """state.data[key] when it has the shape its phase writes (an object whose `inner` is a `kind` of objects); a
    hand-edited part of another shape reads as not recorded, never as a crash."""
    record = data.get(key)
    if not isinstance(record, dict):
        return None
    held = record.get(inner, kind())
    if not isinstance(held, kind):
        return None
    return record if all(isinstance(v, dict) for v in (held.values() if kind is dict else held)) else None


def kube_section(project: Project, record: dict | None, query: bool = True) -> dict:
    """The cluster's nodes: from the API through secrets/kubeconfig when it answers (the kubernetes client is
    imported only then), else as the last kubernetes phase recorded them."""
    from affordml.kube.kubeconfig import kubeconfig_path

    kubeconfig = kubeconfig_path(project.secrets_dir)
    recorded = {"source": "state", "nodes": (record or {}).get("nodes", [])}
    if not record and not kubeconfig.is_file():
        return recorded | {"note": "no cluster yet (the kubernetes phase has not run)"}
    if not query or not kubeconfig.is_file():
        return recorded
    from affordml.kube.nodes import cluster_summary

    live = cluster_summary(kubeconfig)
    if live.get("api_error"):
        return recorded | {"api_error": live["api_error"]}
    return live


def node_lines(kube: dict) -> list[str]:
    """One line per node: name, Ready, roles, kubelet version, GPU capacity."""
    lines = []
    for node in kube.get("nodes", []):
        held = node.get("gpus") if isinstance(node.get("gpus"), dict) else {}
        gpus = ", ".join(f"{k}={v}" for k, v in held.items()) or "no GPU"
        roles = node.get("roles") if isinstance(node.get("roles"), list) else []
        lines.append(
            f"  {node.get('name')}  {'Ready' if node.get('ready') else 'NotReady'}  "
            f"{','.join(map(str, roles)) or '-'}  {node.get('kubelet') or '?'}  {gpus}"
        )
    return lines


def env_line(project: Project) -> str:
    stamp = read_stamp(project.env_dir)
    if stamp:
        return f"rendered by affordml {stamp['affordml_version']} for plan {stamp['plan_hash']}"
    if os.path.lexists(project.env_dir):
        return (
            f"{project.env_dir} has no valid affordml stamp ({STAMP} missing or malformed): affordml will not "
            "replace it; move it aside to render again"
        )
    return "not rendered"


def cloud_section(project: Project, record: dict | None, query_cloud: bool = True) -> dict:
    """The servers: from the OpenStack API when it answers (openstacksdk is imported only then), else the state."""
    if not record:
        return {"source": "state", "servers": [], "note": "no VMs carved yet (the cloud phase has not run)"}
    if not query_cloud:
        from affordml.cloud.inventory import rows_from_state

        return {"source": "state", "servers": rows_from_state(record)}
    from affordml.cloud.inventory import cloud_status

    return cloud_status(project, record)


def server_lines(cloud: dict) -> list[str]:
    """One line per server for the text output."""
    lines = []
    for row in cloud.get("servers", []):
        gpus = f"{row.get('gpus') or 0} GPU" + (f" ({row['pci_alias']})" if row.get("pci_alias") else "")
        lines.append(
            f"  {row.get('name')}  {row.get('status')}  {row.get('flavor')}  {gpus}  "
            f"{', '.join(row.get('addresses') or []) or '-'}"
        )
    return lines
