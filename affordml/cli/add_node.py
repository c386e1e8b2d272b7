"""`affordml add-node HOST`: bring another PC of affordml.yaml into the platform (see docs/add-node.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("add-node")(add_node)


def add_node(
    host: Annotated[
        str,
        typer.Argument(help="a host name from hosts in affordml.yaml (not the first one), or a new one with --address"),
    ],
    address: Annotated[
        str | None,
        typer.Option("--address", help="a PC not in affordml.yaml: its IP address or DNS name (recorded there)"),
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="its SSH user, with sudo without a password")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="its SSH private key file")] = None,
    port: Annotated[int | None, typer.Option("--port", help="its SSH port (default 22)")] = None,
    accept_host_key: Annotated[
        str | None, typer.Option(help="accept this SSH host key fingerprint of the new PC (SHA256:...)")
    ] = None,
    plan_only: Annotated[
        bool, typer.Option("--plan", help="show what the PC adds (its VMs, GPUs, sharing) and change nothing")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="render, then run Ansible in check mode")] = False,
    skip_phase: Annotated[
        list[str] | None, typer.Option("--skip-phase", metavar="NAME", help="leave this phase's step out")
    ] = None,
    ignore_check: Annotated[
        list[str] | None, typer.Option("--ignore-check", metavar="NAME", help="skip a doctor check by name")
    ] = None,
    facts_file: Annotated[
        Path | None, typer.Option("--facts", help="the new PC's facts from a saved file instead of SSH (rehearsal)")
    ] = None,
    base_facts: Annotated[
        Path | None, typer.Option("--base-facts", help="the first PC's facts from a saved file, as `init --facts`")
    ] = None,
) -> None:
    """Bring another PC into the platform: facts, doctor, plan delta, then each phase's step for it (resumable)."""
    from affordml import console
    from affordml.cli.main import _project
    from affordml.lifecycle.add_node import AddNodeOptions, run_add_node
    from affordml.lifecycle.node_flags import NodeFlags

    options = AddNodeOptions(
        host=host,
        accept_host_key=accept_host_key,
        facts_file=facts_file,
        base_facts_file=base_facts,
        ignore_checks=frozenset(ignore_check or ()),
        skip=frozenset(skip_phase or ()),
        dry_run=dry_run,
        plan_only=plan_only,
        flags=NodeFlags(address=address, user=user, key=key, port=port),
    )
    ctx = run_add_node(_project(), options, console.line)
    for note in ctx.notes if ctx else ():
        console.line(f"[add-node] {note}", style="bold yellow")
