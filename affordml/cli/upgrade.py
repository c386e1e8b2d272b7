"""`affordml upgrade`: the hop plan (--plan), then a backup and each hop as its phase's upgrade action."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def plan_lines(plan, progress: dict | None = None) -> list[str]:
    done = int((progress or {}).get("done", 0)) if progress and progress.get("to") == plan.target else 0
    lines = [f"upgrade from lock {plan.source} to {plan.target}: {len(plan.hops)} hop(s), a backup first"]
    for number, hop in enumerate(plan.hops, 1):
        mark = "done" if number <= done else "todo"
        head = f"  {number:>2}. [{hop.phase}] "
        for index, step in enumerate(hop.steps):
            lead = head if index == 0 else " " * len(head)
            lines.append(f"{lead}{step.how}" + (f"  ({mark})" if index == 0 and progress else ""))
    lines += [f"  note: {note}" for note in plan.notes]
    return lines


def register(app: typer.Typer) -> None:
    @app.command()
    def upgrade(
        show: Annotated[bool, typer.Option("--plan", help="show the hop plan and change nothing")] = False,
        confirm: Annotated[
            bool, typer.Option("--yes-i-really-really-mean-it", help="run the hops (a backup is taken first)")
        ] = False,
        facts_file: Annotated[
            Path | None, typer.Option("--facts", help="plan from saved facts instead of reading the first host")
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="print the hop plan as JSON")] = False,
    ) -> None:
        """Move the platform from the lock it was installed with to this affordml's lock, hop by hop."""
        from affordml import console
        from affordml.cli.main import _project
        from affordml.lifecycle.run import UpgradeOptions, run_upgrade, show_plan

        project = _project()
        if show or json_out:
            plan, progress = show_plan(project)
            if json_out:
                console.print_json(plan.to_dict() | {"progress": progress})
                return
            for line in plan_lines(plan, progress):
                console.line(line)
            return
        plan, _ = show_plan(project)
        for line in plan_lines(plan):
            console.line(line)
        run_upgrade(project, UpgradeOptions(facts_file=facts_file, confirm=confirm), console.line)
