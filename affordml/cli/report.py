"""`affordml report`: GPU use by user/namespace and by hour of day, from the platform's Prometheus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command(name="report")(report)


def report(
    since: Annotated[str, typer.Option("--since", help="the period up to now: 90m, 24h, 7d, 2w")] = "7d",
    prometheus: Annotated[
        str | None,
        typer.Option(
            "--prometheus",
            help="Prometheus's URL [default: the cluster's, through the Kubernetes API server (secrets/kubeconfig)]",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON instead of the table and chart")] = False,
    png: Annotated[Path | None, typer.Option("--png", help="also draw the report into this PNG file")] = None,
) -> None:
    """GPU utilisation and memory by user/namespace and by hour of day (dcgm-exporter's metrics in Prometheus)."""
    import time

    from affordml import console
    from affordml.report.collect import collect
    from affordml.report.period import parse_since

    period_s = parse_since(since)
    if png is not None:
        from affordml.report.show import check_png

        png = check_png(png)
    source = _prometheus(prometheus)
    data = collect(source, period_s, time.time())  # hours of day in this machine's local time
    data["period"]["since"] = since
    if png is not None:
        from affordml.report.show import save_png

        data["png"] = str(save_png(data, since, png))
    if json_out:
        console.print_json(data)
        return
    from affordml.report.show import print_report

    print_report(data, since)
    if png is not None:
        console.line(f"report drawn into {data['png']}")


def _prometheus(url: str | None):
    from affordml.report.prometheus import ProxyPrometheus, UrlPrometheus

    if url:
        return UrlPrometheus(url)
    from affordml.cli.main import _project
    from affordml.kube.kubeconfig import kubeconfig_path

    return ProxyPrometheus(kubeconfig_path(_project().secrets_dir))
