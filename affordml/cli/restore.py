"""`affordml restore NAME`: config, state and secrets back from a backup (checked against its manifest)."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def restore(
        name: Annotated[str, typer.Argument(help="a backup's name, as `affordml backup --list` shows it")],
        confirm: Annotated[
            bool, typer.Option("--yes-i-really-really-mean-it", help="replace the project's files")
        ] = False,
    ) -> None:
        """Put the project's config, state and secrets back from a backup; the current ones are kept first."""
        from affordml import console
        from affordml.cli.main import _project
        from affordml.lifecycle.restore import run_restore

        run_restore(_project(), name, confirm, console.line)
