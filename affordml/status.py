"""What `affordml status` reports about a project folder."""

from __future__ import annotations

import json

from affordml.project import Project


def project_status(project: Project) -> dict:
    data = {
        "project": str(project.root),
        "config": str(project.config_file) if project.config_file.exists() else "none (defaults)",
        "facts": str(project.facts_file) if project.facts_file.exists() else "not saved",
    }
    if project.state_file.exists():
        try:
            state = json.loads(project.state_file.read_text())
        except (OSError, ValueError):
            state = {"error": "state file unreadable"}
        data["phases"] = state.get("phases", {})
    else:
        data["phases"] = "nothing has run yet"
    return data
