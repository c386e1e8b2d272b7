"""A bench result as text: the table, the blast radius, a bar chart for the terminal, the recommendation; and as a
PNG (matplotlib, imported only when --png asks for it)."""

from __future__ import annotations

import io
from pathlib import Path

from affordml import safefile
from affordml.bench.result import BenchResult

BAR_WIDTH = 40


def _cell(value, digits: int = 2, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def table_lines(result: BenchResult) -> list[str]:
    unit = "runs/s" if result.workload.startswith("command:") else "steps/s"
    head = ("mode", "N", "done", unit, "vs alone", "p50 ms", "p95 ms", "MiB/job", "fairness", "note")
    body = [
        (
            r.mode,
            str(r.n),
            f"{r.jobs_ok}/{r.n}",
            _cell(r.throughput, 1),
            _cell(r.ratio, 2, "x"),
            _cell(r.latency_p50_ms, 1),
            _cell(r.latency_p95_ms, 1),
            _cell(r.memory_mib, 0),
            _cell(r.fairness, 3),
            r.note,
        )
        for r in result.rows
    ]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    fmt = [f"{{:<{w}}}" if i in (0, 9) else f"{{:>{w}}}" for i, w in enumerate(widths)]

    def join(cells) -> str:
        return "  ".join(f.format(c) for f, c in zip(fmt, cells, strict=True)).rstrip()

    return [join(head), join("-" * w for w in widths), *(join(row) for row in body)]


def blast_lines(result: BenchResult) -> list[str]:
    lines = []
    for b in result.blasts:
        crashed = "crashed" if b.crashed else "did NOT crash (fault not triggered)"
        note = f"  [{b.note}]" if b.note else ""
        lines.append(
            f"{b.mode:<13} N={b.n}: the faulting job {crashed}; {b.others_died} of {b.others} others died{note}"
        )
    return lines


def chart_lines(result: BenchResult) -> list[str]:
    """Aggregate throughput against one job alone, one bar per mode and N (| marks 1.00x)."""
    rows = [r for r in result.rows if r.ratio is not None]
    if not rows:
        return []
    top = max(max(r.ratio for r in rows), 1.0)
    one = round(BAR_WIDTH / top)
    lines = []
    for r in rows:
        filled = round(BAR_WIDTH * r.ratio / top)
        bar = "".join("#" if i < filled else ("|" if i == one - 1 else " ") for i in range(BAR_WIDTH))
        lines.append(f"{r.mode:<13} N={r.n:<3} {bar} {r.ratio:.2f}x")
    return lines


def recommendation_lines(result: BenchResult) -> list[str]:
    rec = result.recommendation
    if rec is None:
        return []
    lines = [f"recommended: {rec.mode}" + (f", {rec.jobs} jobs per GPU" if rec.jobs > 1 else ""), f"why: {rec.reason}"]
    if rec.caveat:
        lines.append(f"note: {rec.caveat}")
    lines.append("apply it with these lines in affordml.yaml, then `affordml plan`:")
    lines.extend("    " + line for line in rec.config_lines.rstrip("\n").splitlines())
    return lines


def text_report(result: BenchResult) -> list[str]:
    device = result.device
    title = f"{result.where} bench on {device.name}" + (f" ({device.memory_mib} MiB)" if device.memory_mib else "")
    if device.stand_in:
        title += ": CPU STAND-IN, modes are the same orchestration on the CPU, not GPU sharing"
    lines = [title, f"workload: {result.workload}; {result.seconds:g} s per run; N = {result.counts}", ""]
    lines += table_lines(result)
    if result.skipped:
        lines += ["", *(f"not run: {mode}: {why}" for mode, why in result.skipped.items())]
    lines += ["", "fault blast radius (one job crashes on purpose):", *blast_lines(result)]
    lines += ["", "throughput against one job alone:", *chart_lines(result)]
    lines += ["", *recommendation_lines(result)]
    return lines


def write_png(result: BenchResult, path: Path) -> None:
    """Throughput ratio against N, one line per mode."""
    from affordml.errors import ConfigError

    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            "--png needs matplotlib", "pip install 'affordml[bench]' (or pip install matplotlib)"
        ) from None
    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    for mode in dict.fromkeys(r.mode for r in result.rows):
        points = [(r.n, r.ratio) for r in result.rows if r.mode == mode and r.ratio is not None]
        axes.plot([n for n, _ in points], [v for _, v in points], marker="o", label=mode)
    axes.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    axes.set_xlabel("jobs at a time (N)")
    axes.set_ylabel("aggregate throughput / one job alone")
    axes.set_xticks(result.counts)
    # the user's command and the device's name as text: `$` would start matplotlib's mathtext
    axes.set_title(f"{result.workload} on {result.device.name}", fontsize=9, parse_math=False)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    pyplot.close(figure)
    safefile.write_beside(path, buffer.getvalue(), may_replace=_is_png)


def _is_png(current: str) -> bool:
    return current[1:4] == "PNG"


def check_png(path: Path) -> None:
    safefile.check_beside(path, _is_png)
