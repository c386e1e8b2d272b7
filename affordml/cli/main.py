"""The `affordml` command line. Commands parse options, call the core, and print through affordml.console.
Heavy libraries are imported inside the commands that use them, so `affordml --help` starts fast."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from affordml import __version__
from affordml.cli import report as report_command
from affordml.cli import serve
from affordml.cli.verify import register as register_verify
from affordml.errors import ConfigError

app = typer.Typer(
    name="affordml",
    help="Turn one PC with an NVIDIA GPU into a shared ML platform: doctor, plan, then init.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
config_app = typer.Typer(help="Write or show affordml.yaml.", no_args_is_help=True)
app.add_typer(config_app, name="config")

ProjectDir = Annotated[Path | None, typer.Option("--project-dir", "-p", help="project folder [default: ~/.affordml]")]
FactsFile = Annotated[Path | None, typer.Option("--facts", help="use facts saved by `affordml facts --save`")]
Json = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]
Example = Annotated[
    str | None,
    typer.Option(
        "--example",
        help="use the facts of a sample PC shipped with affordml: desktop-rtx4090, one-nic-pc, server-a100-mig",
    ),
]


def _facts_source(facts_file: Path | None, example: str | None) -> Path | None:
    if example is None:
        return facts_file
    from affordml.errors import FactsError
    from affordml.resources import data_dir

    examples = data_dir("inventories") / "examples"
    path = examples / f"{example}.json"
    if not path.exists():
        names = ", ".join(sorted(p.stem for p in examples.glob("*.json")))
        raise FactsError(f"--example: no sample PC named {example!r}", f"use one of: {names}")
    return path


class _State:
    debug = False
    project_dir: Path | None = None


def _print_version(value: bool) -> None:
    if value:
        print(f"affordml {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    project_dir: ProjectDir = None,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
    version: Annotated[
        bool, typer.Option("--version", help="print the version", is_eager=True, callback=_print_version)
    ] = False,
) -> None:
    _State.debug = debug
    _State.project_dir = project_dir


def _project(project_dir: Path | None = None):
    from affordml import values
    from affordml.project import Project, default_project_dir

    root = (project_dir or _State.project_dir or default_project_dir()).expanduser()
    if values.path_problem(str(root)):
        raise ConfigError(
            f"--project-dir {str(root)[:80]!r} {values.path_problem(str(root))}",
            "choose a folder whose path is one line of visible characters",
        )
    project = Project(root)
    project.refuse_non_folder()
    return project


def _config(project):
    from affordml.config.load import load_config

    return load_config(project.config_file)


@app.command()
def facts(
    save: Annotated[Path | None, typer.Option("--save", help="save the raw facts to this file")] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="a host name from affordml.yaml (default: the first)")
    ] = None,
    accept_host_key: Annotated[
        str | None, typer.Option(help="accept this SSH host key fingerprint (SHA256:...)")
    ] = None,
    facts_file: FactsFile = None,
    json_out: Json = False,
) -> None:
    """Read a host's hardware facts (read-only)."""
    from affordml import console
    from affordml.facts.gather import gather_snapshot
    from affordml.facts.parse import facts_from_snapshot

    project = _project()
    snapshot = gather_snapshot(project, _config(project), facts_file, host, accept_host_key)
    parsed = facts_from_snapshot(snapshot)
    if save:
        _save_facts(snapshot, save)
    if json_out:
        console.print_json(parsed.to_dict())
    else:
        console.print_facts(parsed)
        if save:
            console.line(f"saved to {save}")


def _save_facts(snapshot, path: Path) -> None:
    from affordml.errors import AffordmlError
    from affordml.facts.snapshot import save_snapshot

    try:
        save_snapshot(snapshot, path)
    except AffordmlError as exc:
        exc.problem = f"--save: {exc.problem}"
        raise


@app.command()
def doctor(
    facts_file: FactsFile = None,
    ignore_check: Annotated[
        list[str] | None, typer.Option("--ignore-check", metavar="NAME", help="skip a check by name")
    ] = None,
    example: Example = None,
    json_out: Json = False,
) -> None:
    """Check the host: virtualization, IOMMU, GPU isolation, vfio, RAM, disk, NICs; each problem with its fix."""
    from affordml import console
    from affordml.facts.gather import gather_facts
    from affordml.plan.checks import doctor_results
    from affordml.versions import load_lock, version_table

    project = _project()
    config = _config(project)
    host_facts = gather_facts(project, config, _facts_source(facts_file, example))
    results = doctor_results(host_facts, config, version_table(load_lock()), frozenset(ignore_check or ()))
    if json_out:
        data = {"host": host_facts.hostname, "checks": [r.to_dict() for r in results]}
        console.print_json({"sample": example, **data} if example else data)
    else:
        if example:
            console.line(console.sample_note(example), style="bold yellow")
        console.print_checks(results)
    if any(r.status == "fail" for r in results):
        raise typer.Exit(1)


@app.command()
def plan(facts_file: FactsFile = None, example: Example = None, json_out: Json = False) -> None:
    """Show how the PC will be carved (VMs, GPUs, sharing, versions) before anything is touched."""
    from affordml import console
    from affordml.facts.gather import gather_facts
    from affordml.plan.build import make_plan
    from affordml.versions import load_lock, version_table

    project = _project()
    config = _config(project)
    host_facts = gather_facts(project, config, _facts_source(facts_file, example))
    the_plan = make_plan(host_facts, config, version_table(load_lock()))
    if example is None:
        from affordml.lifecycle.nodes import platform_plan

        the_plan = platform_plan(project, config, version_table(load_lock()), the_plan)  # PCs added by add-node
    downloads = _download_plan(project, config)
    if json_out:
        data = {**the_plan.to_dict(), "downloads": downloads}
        console.print_json({"sample": example, **data} if example else data)
    else:
        console.print_plan(the_plan, sample=example)
        _print_added_pcs(the_plan)
        console.print_downloads(downloads)


def _print_added_pcs(the_plan) -> None:
    from affordml import console
    from affordml.lifecycle.delta import delta_lines

    for line in (line for node in the_plan.nodes for line in delta_lines(node)):
        console.line(line)


def _download_plan(project, config, mirror: Path | None = None) -> dict:
    from affordml.artifacts.plan import project_download_plan, totals
    from affordml.artifacts.project_store import project_store

    rows, warning = project_download_plan(project_store(project.root, config, mirror))
    return {"artifacts": [r.to_dict() for r in rows], "totals": totals(rows), "warning": warning}


@app.command()
def bundle(
    dest: Annotated[Path, typer.Argument(help="folder to fill; created if missing; re-runs keep what is verified")],
    images: Annotated[
        bool, typer.Option("--images", help="also save the charts' container images (large; needs skopeo or docker)")
    ] = False,
) -> None:
    """Download every artifact of the version lock into DEST, verified, with a manifest, for `init --mirror DEST`."""
    from affordml import console
    from affordml.artifacts.bundle import run_bundle

    run_bundle(dest, images=images, say=console.line)


@config_app.command("init")
def config_init(
    force: Annotated[
        bool, typer.Option("--force", help="replace an existing file (kept as affordml.yaml.bak.N)")
    ] = False,
    print_only: Annotated[bool, typer.Option("--print", help="print the sample instead of writing it")] = False,
) -> None:
    """Write a commented affordml.yaml that shows every default."""
    from affordml import console
    from affordml.config.sample import sample_text, write_sample

    if print_only:
        sys.stdout.write(sample_text())
        return
    path, backup = write_sample(_project().config_file, force=force)
    console.line(f"wrote {path}" + (f" (your previous file is kept as {backup})" if backup else ""))


init_app = typer.Typer(
    help="Prepare the host, install OpenStack, carve the VMs, install Kubernetes, the GPU stack and ML tools.",
    invoke_without_command=True,
)
app.add_typer(init_app, name="init")
register_verify(app)

SkipPhase = Annotated[
    list[str] | None, typer.Option("--skip-phase", metavar="NAME", help="leave this phase out (repeatable)")
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="render, then run Ansible in check mode; change nothing")]
IgnoreCheck = Annotated[
    list[str] | None, typer.Option("--ignore-check", metavar="NAME", help="skip a preflight check by name")
]
Confirm = Annotated[
    bool, typer.Option("--yes-i-really-really-mean-it", help="allow phases to replace or delete VMs the plan changes")
]
InitFacts = Annotated[
    Path | None,
    typer.Option("--facts", help="plan from saved facts instead of reading the first host (rehearsals on test hosts)"),
]


Mirror = Annotated[
    Path | None,
    typer.Option("--mirror", metavar="DIR", help="take downloads from a folder made by `affordml bundle` (offline)"),
]


def _checked_mirror(mirror: Path | None) -> Path | None:
    if mirror is None:
        return None
    from affordml.artifacts.store import read_manifest

    read_manifest(mirror.expanduser().resolve())  # a wrong folder fails now, before any phase runs
    return mirror.expanduser().resolve()


@init_app.callback()
def init(
    ctx: typer.Context,
    dry_run: DryRun = False,
    skip_phase: SkipPhase = None,
    ignore_check: IgnoreCheck = None,
    facts_file: InitFacts = None,
    confirm: Confirm = False,
    mirror: Mirror = None,
) -> None:
    """Run every phase in order; a second run resumes where the last one stopped."""
    from affordml.phases.init import InitOptions

    ctx.obj = InitOptions(
        facts_file=facts_file,
        skip=frozenset(skip_phase or ()),
        dry_run=dry_run,
        ignore_checks=frozenset(ignore_check or ()),
        confirm=confirm,
        mirror=_checked_mirror(mirror),
    )
    if ctx.invoked_subcommand is None:
        _run_init(ctx.obj)


@init_app.command("phase")
def init_phase(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="preflight, host, openstack, cloud, kubernetes, gpu, ml or verify")],
) -> None:
    """Run one phase (again), whatever its state."""
    from dataclasses import replace

    _run_init(replace(ctx.obj, only=name, skip=frozenset()))


def _run_init(options) -> None:
    from affordml import console
    from affordml.phases.init import run_init

    ctx = run_init(_project(), options, console.line)
    for note in ctx.notes:
        console.line(f"[init] {note}", style="bold yellow")


from affordml.cli import add_node as _add_node  # noqa: E402 - its own module; typer and a few names only

_add_node.register(app)


@app.command()
def status(
    json_out: Json = False,
    offline: Annotated[bool, typer.Option("--offline", help="do not ask OpenStack; show the saved state")] = False,
) -> None:
    """Show the project: config, saved facts, phases and servers (from OpenStack when it answers)."""
    from affordml import console
    from affordml.status import project_status, server_lines

    data = project_status(_project(), query_cloud=not offline)
    if json_out:
        console.print_json(data)
        return
    cloud, phases, kube = data.pop("cloud"), data.pop("phases"), data.pop("kubernetes", {})
    verify = data.pop("verify", None)
    for key, value in data.items():
        console.line(f"{key}: {value}")
    if isinstance(phases, dict):
        console.line("phases:")
        for name, record in phases.items():
            message = f": {record['message']}" if record.get("message") else ""
            console.line(f"  {name}  {record['status']}{message}")
    else:
        console.line(f"phases: {phases}")
    where = "from OpenStack" if cloud.get("source") == "api" else "as recorded by the last cloud phase"
    console.line(f"servers ({where}):" if cloud.get("servers") else f"servers: {cloud.get('note', 'none')}")
    for line in server_lines(cloud):
        console.line(line)
    if cloud.get("api_error"):
        console.line(f"  (OpenStack did not answer: {cloud['api_error']})")
    _kube_lines(kube)
    if verify is not None:
        from affordml.verify.record import status_lines

        for line in status_lines(verify):
            console.line(line)


def _kube_lines(kube: dict) -> None:
    from affordml import console
    from affordml.status import node_lines

    if kube.get("source") == "api":
        console.line(f"kubernetes (from the API, server {kube.get('server', '?')}):")
    elif kube.get("nodes"):
        console.line("kubernetes (as recorded by the last kubernetes phase):")
    else:
        console.line(f"kubernetes: {kube.get('note', 'no nodes')}")
    for line in node_lines(kube):
        console.line(line)
    if kube.get("api_error"):
        console.line(f"  (the Kubernetes API did not answer: {kube['api_error']})")


from affordml.cli import destroy as _destroy  # noqa: E402 - its own module; typer and a few names only

_destroy.register(app)


def _register_commands() -> None:
    from affordml.cli import backup as backup_cli
    from affordml.cli import restore as restore_cli
    from affordml.cli import upgrade as upgrade_cli

    upgrade_cli.register(app)
    backup_cli.register(app)
    restore_cli.register(app)


_register_commands()
report_command.register(app)
serve.register(app)


def run() -> None:
    """Console entry point: one-line errors, exit codes, tracebacks only with --debug."""
    debug = "--debug" in sys.argv or os.environ.get("AFFORDML_DEBUG") == "1"
    _stop_cleanly_on_signals()
    try:
        rc = app(standalone_mode=False)
    except KeyboardInterrupt:
        print("interrupted: run the same command again; `affordml init` resumes where it stopped", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the one place that turns every error into one line
        sys.exit(_report(exc, debug))
    sys.exit(rc if isinstance(rc, int) else 0)


def _stop_cleanly_on_signals() -> None:
    """SIGTERM and SIGHUP raise like Ctrl-C does, so that every `with`/`finally` runs: the phase is recorded as
    stopped, a running ansible-playbook is stopped (see run/executor.py) and the run lock is released."""
    import signal

    def stop(signum, _frame) -> None:
        from affordml.errors import Interrupted

        raise Interrupted(
            signum,
            f"stopped by {signal.Signals(signum).name}",
            "run the same command again; `affordml init` resumes where it stopped",
        )

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)


from affordml.cli import bench as _bench  # noqa: E402 - after `app` exists

_bench.register(app)


def _click_exceptions() -> tuple[tuple, tuple, tuple]:
    """(exit, abort, usage) exception classes: typer's own (newer typer vendors click) and click's."""
    exits, aborts, usage = [typer.Exit], [typer.Abort], []
    try:
        from typer._click import exceptions as vendored

        usage.append(vendored.ClickException)
    except ImportError:
        pass
    try:
        import click

        exits.append(click.exceptions.Exit)
        aborts.append(click.exceptions.Abort)
        usage.append(click.ClickException)
    except ImportError:
        pass
    return tuple(exits), tuple(aborts), tuple(usage)


def _usage_of(exc) -> str:
    """`affordml SUBCOMMAND...` of a usage error, however affordml was started (python -m affordml too)."""
    names, ctx = [], getattr(exc, "ctx", None)
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(["affordml", *reversed(names)])


def _report(exc: Exception, debug: bool) -> int:
    from affordml.errors import AffordmlError

    exits, aborts, usage = _click_exceptions()
    if isinstance(exc, exits):
        return exc.exit_code
    if isinstance(exc, aborts):
        return 130
    if isinstance(exc, usage) and type(exc).__name__ == "NoArgsIsHelpError":  # `affordml bench`: the help
        exc.show()
        return exc.exit_code
    if isinstance(exc, usage):
        from affordml import console

        console.error_line("usage", f"{' '.join(exc.format_message().split())} — fix: see `{_usage_of(exc)} --help`")
        return exc.exit_code
    if debug:
        import traceback

        traceback.print_exception(exc)
    from affordml import console

    if isinstance(exc, AffordmlError):
        console.error_line(exc.label, exc.one_line())
        return exc.exit_code
    console.error_line("internal", f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")
    return 70
