"""The PCs added to the platform, as the project keeps them: each one's record in the run state
(state.data["nodes"][HOST]) and its facts in nodes/HOST.json (read at first contact, the source of its plan)."""

from __future__ import annotations

from affordml.config.model import Config
from affordml.errors import ConfigError
from affordml.plan.model import NodePlan, Plan
from affordml.project import Project

NODES_KEY = "nodes"
NODES_DIR = "nodes"


def node_records(state_data: dict) -> dict[str, dict]:
    records = state_data.get(NODES_KEY)
    return records if isinstance(records, dict) else {}


def nodes_line(state_data: dict) -> str:
    """For `affordml status`: each added PC, its status and, while it is being added, where its steps are."""
    parts = []
    for host, record in node_records(state_data).items():
        record = record if isinstance(record, dict) else {}
        status = str(record.get("status", "?"))
        if status != "added":
            steps = record.get("phases") if isinstance(record.get("phases"), dict) else {}
            status += " (" + ", ".join(f"{name} {_status_of(step)}" for name, step in steps.items()) + ")"
        parts.append(f"{host} {status}")
    return "; ".join(parts)


def _status_of(step) -> str:
    return str(step.get("status")) if isinstance(step, dict) else "?"


def facts_name(host: str) -> str:
    return f"{NODES_DIR}/{host}.json"


def save_node_snapshot(project: Project, host: str, snapshot) -> None:
    from affordml.facts.snapshot import snapshot_text
    from affordml.safefile import ensure_folder, write_text

    ensure_folder(project.root, NODES_DIR)
    write_text(project.root, facts_name(host), snapshot_text(snapshot), 0o600)


def load_node_facts(project: Project, host: str):
    from affordml.errors import StateError
    from affordml.facts.parse import facts_from_snapshot
    from affordml.facts.sources import load_snapshot_file
    from affordml.safefile import read_text

    path = project.root / facts_name(host)
    if read_text(project.root, facts_name(host)) is None:  # refuses a link or a file that is not affordml's
        raise StateError(
            f"the state names {host} as a PC of the platform but {path} is missing",
            f"run `affordml add-node {host}` again: it reads the PC's facts and resumes",
        )
    return facts_from_snapshot(load_snapshot_file(path))


def added_node_plans(project: Project, config: Config, versions: dict, base: Plan, state_data: dict) -> list[NodePlan]:
    """The plan of every PC the state records as added, in the order they came (a PC whose add-node has not
    finished joins the plan only through add-node itself)."""
    from affordml.plan.nodes import make_node_plan, with_nodes

    names = {h.name for h in config.hosts}
    plans = []
    for host, record in node_records(state_data).items():
        if record.get("status") != "added":
            continue
        if host not in names:
            raise ConfigError(
                f"hosts: {host} is a PC of the platform (added with add-node) but affordml.yaml no longer lists it",
                f"put {host} back into hosts in affordml.yaml",
            )
        platform = with_nodes(base, plans) if plans else base  # a later PC sees the aliases an earlier one added
        plans.append(make_node_plan(host, load_node_facts(project, host), config, versions, platform))
    return plans


def platform_plan(project: Project, config: Config, versions: dict, base: Plan) -> Plan:
    """The first PC's plan with every added PC's VMs and GPUs (what `init` and `plan` work from)."""
    from affordml.phases.state import load_state
    from affordml.plan.nodes import with_nodes

    state = load_state(project.state_file)
    nodes = added_node_plans(project, config, versions, base, state.data)
    return with_nodes(base, nodes) if nodes else base
