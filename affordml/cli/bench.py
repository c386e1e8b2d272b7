"""`affordml bench sharing`: N jobs at a time under each GPU sharing mode, measured, with the mode to choose and
the affordml.yaml lines that apply it. Heavy imports stay inside the command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from affordml.errors import ConfigError

MAX_JOBS = 64

bench_app = typer.Typer(help="Measure before you choose: GPU sharing modes under your workload.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--n {text!r} is not a list of whole numbers", "use e.g. --n 1,2,4,8") from None
    if not counts or any(not 1 <= n <= MAX_JOBS for n in counts):
        raise ConfigError(f"--n {text!r}: each count must be 1 to {MAX_JOBS}", "use e.g. --n 1,2,4,8")
    return sorted(set(counts))


def parse_modes(text: str) -> list[str]:
    from affordml.bench.result import MODES

    modes = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise ConfigError(f"--modes: unknown mode {(unknown or [text])[0]!r}", f"use some of: {', '.join(MODES)}")
    return modes


def parse_command(text: str | None) -> list[str] | None:
    import shlex

    if text is None:
        return None
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise ConfigError(f"--command: {exc}", "quote the command as you would in a shell") from None
    if not argv:
        raise ConfigError("--command is empty", "give the command to run, e.g. --command 'python train.py'")
    return argv


@bench_app.command("sharing")
def sharing(
    local: Annotated[bool, typer.Option("--local", help="run the jobs on this PC (no cluster needed)")] = False,
    modes: Annotated[str, typer.Option("--modes", help="modes to compare")] = "exclusive,time-slicing,mps,mig,hami",
    counts: Annotated[str, typer.Option("--n", help="jobs at a time, comma-separated")] = "1,2,4,8",
    workload: Annotated[str, typer.Option("--workload", help="built-in workload: mlp, cnn, matmul")] = "mlp",
    command: Annotated[
        str | None, typer.Option("--command", help="your own command instead (each copy's wall time is measured)")
    ] = None,
    seconds: Annotated[float, typer.Option("--seconds", help="how long each run counts steps")] = 5.0,
    device: Annotated[str, typer.Option("--device", help="auto, cuda, or cpu (the CPU stand-in)")] = "auto",
    role: Annotated[
        str, typer.Option("--role", help="the work the GPU serves: any, notebooks, training, inference")
    ] = "any",
    gpu_address: Annotated[
        str | None, typer.Option("--gpu-address", help="write the lines for this GPU only (gpu.per_gpu)")
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="cluster: the image the Jobs run (Python + PyTorch for built-ins)")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    png: Annotated[Path | None, typer.Option("--png", help="also draw the chart into this PNG file")] = None,
) -> None:
    """Run a workload N at a time under each sharing mode; print throughput, latency, memory, fairness, the crash
    blast radius, and the recommended mode with its affordml.yaml lines."""
    from affordml import console
    from affordml.bench import report
    from affordml.bench.recommend import ROLES, recommend
    from affordml.bench.workloads import WORKLOADS, names

    wanted_modes, wanted_counts, argv = parse_modes(modes), parse_counts(counts), parse_command(command)
    if workload not in WORKLOADS:
        raise ConfigError(f"--workload: no built-in workload {workload!r}", f"use one of: {names()}")
    if role not in ROLES:
        raise ConfigError(f"--role: {role!r} is not a role", f"use one of: {', '.join(ROLES)}")
    if not 0.2 <= seconds <= 600:
        raise ConfigError(f"--seconds {seconds:g} is out of range", "use 0.2 to 600")
    if device not in ("auto", "cuda", "cpu"):
        raise ConfigError(f"--device: {device!r} is not a device", "use auto, cuda or cpu")
    if gpu_address:
        from affordml import values

        problem = values.pci_address_problem(gpu_address)
        if problem:
            raise ConfigError(f"--gpu-address: {problem}", "use the address `affordml plan` shows, e.g. 0000:01:00.0")
    if png:
        report.check_png(png)  # a path that cannot be written is said now, not after the run
    say = (lambda _line: None) if json_out else (lambda text: console.err.print(console.plain(text, "dim")))
    if local:
        from affordml.bench.local import detect_device, run_local

        found = detect_device(device)
        result = run_local(found, WORKLOADS[workload], argv, wanted_modes, wanted_counts, seconds, say)
    else:
        from affordml.bench.cluster import run_in_cluster
        from affordml.cli.main import _config, _project

        project = _project()
        result = run_in_cluster(
            project, _config(project), WORKLOADS[workload], argv, image, wanted_modes, wanted_counts, seconds, say
        )
    result.recommendation = recommend(
        result.rows,
        result.blasts,
        role,
        stand_in=result.device.stand_in,
        gpu_address=gpu_address and gpu_address.lower(),
    )
    if png:
        report.write_png(result, png)
    if json_out:
        console.print_json(result.to_dict())
        return
    for text in report.text_report(result):
        console.line(text)
    if png:
        console.line(f"chart written to {png}")
