"""A project as if `affordml init` had installed its first PC's host and openstack phases: rendered from a facts
file, those phases recorded done with the inputs this affordml renders (what add-node builds on)."""

from __future__ import annotations

from pathlib import Path

FIRST_PC_PHASES = ("preflight", "host", "openstack")


def installed_first_pc(root: Path, config_text: str, facts: Path):
    from affordml.phases.init import prepare
    from affordml.phases.registry import get_phase
    from affordml.phases.state import load_state, save_state
    from affordml.phases.workflow import inputs_hash
    from affordml.project import Project

    (root / "affordml.yaml").write_text(config_text)
    project = Project(root)
    prepare(project, facts)
    state = load_state(project.state_file)
    for name in FIRST_PC_PHASES:
        record = state.phase(name)
        record.status, record.inputs_hash = "done", inputs_hash(get_phase(name), project.env_dir, state.data)
    save_state(project.state_file, state)
    return project
