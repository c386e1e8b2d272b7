"""`affordml backup`: config, state and secrets (0600), OpenStack's database and the etcd snapshot, with a
manifest, under the project's backups/; `--list` shows them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def backup_lines(rows: list[dict]) -> list[str]:
    if not rows:
        return ["no backups yet (`affordml backup` takes one)"]
    lines = []
    for row in rows:
        if not row.get("complete"):
            lines.append(f"  {row['name']}  incomplete: {row.get('why') or 'no readable manifest.json'}")
            continue
        skipped = ", ".join(f"{k}: {v}" for k, v in row["skipped"].items())
        lines.append(
            f"  {row['name']}  lock {row['lock'] or '?'}  {row['files']} file(s), {row['bytes']} bytes  "
            f"{', '.join(row['parts'])}" + (f"  (skipped {skipped})" if skipped else "")
        )
    return lines


def register(app: typer.Typer) -> None:
    @app.command()
    def backup(
        list_only: Annotated[bool, typer.Option("--list", help="list the backups and change nothing")] = False,
        facts_file: Annotated[
            Path | None, typer.Option("--facts", help="plan from saved facts instead of reading the first host")
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="print the list as JSON")] = False,
    ) -> None:
        """Back up config, state, secrets, OpenStack's database and Kubernetes' etcd into backups/."""
        from affordml import console
        from affordml.cli.main import _project
        from affordml.lifecycle.backup import list_backups

        project = _project()
        if list_only or json_out:
            rows = list_backups(project)
            if json_out:
                console.print_json(rows)
                return
            for line in backup_lines(rows):
                console.line(line)
            return
        from affordml.lifecycle.run import run_backup

        path = run_backup(project, facts_file, console.line)
        console.line(f"backup: {path} (restore: docs/upgrade.md)")
