"""The report on a terminal (a Rich table and a bar chart by hour of day) and as a PNG (matplotlib, imported only
when --png is asked)."""

from __future__ import annotations

from pathlib import Path

BAR_WIDTH = 40
BLOCKS = " ▏▎▍▌▋▊▉█"


def _bar(value: float | None, full: float, width: int = BAR_WIDTH) -> str:
    if value is None or full <= 0:
        return ""
    eighths = round(max(0.0, min(value, full)) / full * width * 8)
    return "█" * (eighths // 8) + (BLOCKS[eighths % 8] if eighths % 8 else "")


def _inert(text: str) -> str:
    """A name from Prometheus as matplotlib shows it literally: `$` would start mathtext, control characters are
    dropped."""
    return "".join(char for char in str(text) if char.isprintable()).replace("$", r"\$")


def _gib(mib: float | None) -> str:
    return "-" if mib is None else f"{mib / 1024:.1f}"


def print_report(report: dict, since: str) -> None:
    from rich.table import Table

    from affordml.console import out, plain

    period = report["period"]
    mean = report["mean_util_pct"]
    out.print(
        plain(
            f"GPU use over the last {since} ({period['start']} .. {period['end']}, one sample every "
            f"{period['step_s']} s): {report['gpus']} GPU(s), mean utilisation "
            + ("no samples" if mean is None else f"{mean:.1f} %")
        )
    )
    table = Table(title="by user / namespace", title_justify="left")
    for heading in ("who", "GPU-hours", "hours holding a GPU", "mean util %", "mean memory GiB", "peak memory GiB"):
        table.add_column(heading, justify="left" if heading == "who" else "right")
    for row in report["owners"]:
        table.add_row(
            plain(row["owner"]),
            f"{row['gpu_hours']:.2f}",
            f"{row['hours_holding_gpu']:.1f}",
            f"{row['mean_util_pct']:.1f}",
            _gib(row["mean_memory_mib"]),
            _gib(row["peak_memory_mib"]),
        )
    if not report["owners"]:
        table.add_row(plain("no pod held a GPU in this period"), "", "", "", "", "")
    out.print(table)
    out.print(plain(f"mean GPU utilisation by hour of day ({period['hours_in']}), all GPUs:"))
    for row in report["hours"]:
        util = row["mean_util_pct"]
        label = "   -" if util is None else f"{util:5.1f} %"
        out.print(plain(f"  {row['hour']:02d}h {label}  {_bar(util, 100)}  {_gib(row['mean_memory_mib'])} GiB"))


def write_png(report: dict, since: str, target) -> None:
    """Two panels: GPU-hours per user/namespace, and utilisation and memory by hour of day."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (left, right) = pyplot.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    owners = report["owners"][:15]
    names = [_inert(row["owner"]) for row in owners]
    left.barh(names[::-1], [row["gpu_hours"] for row in owners][::-1], color="#76b900")
    left.set_xlabel("GPU-hours (utilisation-weighted)")
    left.set_title(f"By user / namespace, last {since}")
    hours = report["hours"]
    right.bar([h["hour"] for h in hours], [h["mean_util_pct"] or 0 for h in hours], color="#1f77b4")
    right.set_xticks(range(0, 24, 3))
    right.set_ylim(0, 100)
    right.set_xlabel(f"hour of day ({report['period']['hours_in']})")
    right.set_ylabel("mean GPU utilisation %")
    right.set_title(f"By hour of day, {report['gpus']} GPU(s)")
    memory = right.twinx()
    memory.plot(
        [h["hour"] for h in hours], [(h["mean_memory_mib"] or 0) / 1024 for h in hours], color="#d62728", marker="."
    )
    memory.set_ylabel("GPU memory used, GiB", color="#d62728")
    figure.tight_layout()
    figure.savefig(target, format="png")
    pyplot.close(figure)


def is_png(current: str) -> bool:
    """An existing file --png may replace: a PNG (an earlier report), never a file of another kind."""
    return current[1:4] == "PNG"


def check_png(path: Path) -> Path:
    """Before any question to Prometheus: the folder exists and is writable, nothing but a PNG is at the path."""
    import os

    from affordml import safefile

    path = Path(os.path.abspath(path))
    safefile.check_beside(path, is_png)
    return path


def save_png(report: dict, since: str, path: Path) -> Path:
    """Render in memory, then temp-then-rename beside the target; a link, a folder, a hard link or a file that
    is not a PNG there is refused, never followed nor replaced."""
    import io

    from affordml import safefile

    path = check_png(path)
    buffer = io.BytesIO()
    write_png(report, since, buffer)
    return safefile.write_beside(path, buffer.getvalue(), 0o644, may_replace=is_png)
