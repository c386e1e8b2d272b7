"""The golden cases (every hardware fixture alone, then the variants of tests/golden/cases.yaml), the config each
one gives, and the phase context the real-engine tests start from: its plan rendered into a project folder and
the control plane's kubeconfig in its secrets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from affordml.config.model import Config

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "hardware"
GOLDEN = REPO / "tests" / "golden"


def merge(base, over):
    """`over` laid on `base`, mappings key by key (how a variant's config overrides reach affordml.yaml)."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}
    return over


def load_cases() -> dict[str, dict]:
    """case name -> {"fixture": name, "config": overrides}: every fixture alone, then the variants."""
    cases = {p.stem: {"fixture": p.stem, "config": {}} for p in sorted(FIXTURES.glob("*.json"))}
    variants = yaml.safe_load((GOLDEN / "cases.yaml").read_text())["variants"]
    for name, variant in variants.items():
        assert name not in cases, f"variant {name} has a fixture's name"
        cases[name] = {"fixture": variant["fixture"], "config": variant.get("config") or {}}
    return cases


def case_facts(case: dict):
    from affordml.facts.parse import facts_from_snapshot
    from affordml.facts.sources import load_snapshot_file

    return facts_from_snapshot(load_snapshot_file(FIXTURES / f"{case['fixture']}.json"))


def case_config(facts, case: dict) -> Config:
    """affordml.yaml of the case: its fixture's host, with the case's overrides."""
    return Config.model_validate(merge({"hosts": [{"name": facts.hostname}]}, case.get("config") or {}))


def phase_context(
    case: dict, root: Path, kubeconfig_text: str, say: Callable[[str], None], adjust: Callable[[Config], None] = None
):
    """A PhaseContext on the case's plan, env/ rendered under root, secrets/kubeconfig written (0600); `adjust`
    changes the config before the plan is made."""
    from affordml.phases.state import State
    from affordml.phases.workflow import PhaseContext
    from affordml.plan.build import make_plan
    from affordml.project import Project
    from affordml.render.project import render_project
    from affordml.secrets import secure_dir, write_private
    from affordml.versions import load_lock, version_table

    facts = case_facts(case)
    config = case_config(facts, case)
    if adjust:
        adjust(config)
    lock = load_lock()
    plan = make_plan(facts, config, version_table(lock))
    project = Project(root)
    root.mkdir(parents=True, exist_ok=True)
    render_project(project, plan, config, lock)
    secure_dir(project.secrets_dir, project.root)
    write_private(project.secrets_dir / "kubeconfig", kubeconfig_text, project.root)
    return PhaseContext(project, config, plan, lock, State(), say)


def printing(lines: list[str]) -> Callable[[str], None]:
    """A `say` that keeps each line and prints it at once (pytest -s shows a long real run as it goes)."""

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    return say
