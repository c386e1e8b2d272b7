"""Ask Prometheus the report's queries for a period and build the report."""

from __future__ import annotations

from datetime import tzinfo

from affordml.report.period import step_for
from affordml.report.prometheus import query_range
from affordml.report.queries import QUERIES
from affordml.report.usage import build_report


def collect(prometheus, period_s: int, end: float, zone: tzinfo | None = None) -> dict:
    step = step_for(period_s)
    end = end // step * step  # aligned steps: the same samples whatever second the report runs
    start = end - period_s
    matrices = {name: query_range(prometheus, query, start, end, step) for name, query in QUERIES.items()}
    return build_report(matrices, start, end, step, zone)
