"""What `affordml status` reports about a project folder."""

from __future__ import annotations

import os
from dataclasses import asdict

from affordml.errors import StateError
from affordml.phases.state import load_state
from affordml.project import Project
from affordml.render.engine import STAMP, read_stamp


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
        return data | {"cloud": cloud_section(project, None, query_cloud)}
    data["phases"] = {name: asdict(p) for name, p in state.phases.items()} or "nothing has run yet"
    data["cloud"] = cloud_section(project, state.data.get("cloud"), query_cloud)
    return data


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
