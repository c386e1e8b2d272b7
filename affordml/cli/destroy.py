"""`affordml destroy`: lists what goes, asks for the confirmation flag, then runs each phase's destroy action."""

from __future__ import annotations

from typing import Annotated

import typer

Yes = Annotated[bool, typer.Option("--yes-i-really-really-mean-it", help="confirm the deletion")]
Releases = Annotated[
    bool, typer.Option("--releases", help="remove only the Helm releases (ml, gpu; newest first) and keep the VMs")
]
Only = Annotated[
    list[str] | None,
    typer.Option(
        "--only",
        metavar="PHASE",
        help="destroy only this phase (repeatable): ml, gpu, kubernetes, cloud, openstack, host",
    ),
]
DeleteData = Annotated[
    bool, typer.Option("--delete-data", help="also delete the users' homes (with the VMs) and the backups/ folder")
]


def destroy(yes: Yes = False, releases: Releases = False, only: Only = None, delete_data: DeleteData = False) -> None:
    """Remove what the platform made, newest phase first: Helm releases, the cluster, the VMs, OpenStack and the
    host changes (put back as they were). Lists what goes; needs --yes-i-really-really-mean-it."""
    from affordml import console
    from affordml.cli.main import _project
    from affordml.lifecycle.destroy import confirmation, listing, run_destroy, select_phases

    selection = select_phases(only, releases, delete_data)
    if not yes:
        console.line("destroy would remove, newest phase first:")
        for line in listing(selection):
            console.line(f"  {line}")
        raise confirmation(selection)
    results = run_destroy(_project(), console.line, selection)
    done = ", ".join(results) or "nothing"
    console.line(f"destroy: done with {done}; run `affordml init` to build the platform again")


def register(app: typer.Typer) -> None:
    app.command()(destroy)
