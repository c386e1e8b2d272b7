"""`affordml verify`: check the platform end to end (the verify phase alone)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)


def verify(
    skip_check: Annotated[
        list[str] | None, typer.Option("--skip-check", metavar="NAME", help="leave this check out (repeatable)")
    ] = None,
    facts_file: Annotated[
        Path | None, typer.Option("--facts", help="plan from saved facts instead of reading the first host")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the results as JSON")] = False,
) -> None:
    """Run the platform's checks (nodes, GPU shares, GPU pods, queue, serving, metrics, JupyterHub); exit 6 when
    one fails, with its fix. Results are kept and shown by `affordml status`."""
    from affordml import console
    from affordml.cli.main import _project
    from affordml.verify.command import run_verify
    from affordml.verify.phase import VerifyFailed
    from affordml.verify.record import STATE_KEY

    project = _project()
    say = (lambda _line: None) if json_out else console.line
    try:
        saved = run_verify(project, frozenset(skip_check or ()), facts_file, say)
    except VerifyFailed:
        if not json_out:
            raise
        from affordml.phases.state import load_state

        console.print_json(load_state(project.state_file).data.get(STATE_KEY) or {})
        raise typer.Exit(VerifyFailed.exit_code) from None
    if json_out:
        console.print_json(saved)
