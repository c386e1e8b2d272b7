"""Record the report's query_range answers from a real Prometheus into tests/fixtures/prometheus/ (the unit
tests' data): 2026-11-25 08:00-20:00 UTC (a Wednesday) of the dcgm_week pattern, step 60 s, and the answer to a
query Prometheus refuses. Run: AFFORDML_PROMETHEUS_DIR=... python -m tests.promreal.record"""

from __future__ import annotations

import tempfile
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from affordml.report.queries import QUERIES
from tests.promreal import dcgm_week, server

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "prometheus"
END = int(datetime(2026, 11, 25, 20, 0, tzinfo=UTC).timestamp())
START = END - 12 * 3600
STEP_S = 60


def main() -> None:
    found = server.binaries()
    if isinstance(found, str):
        raise SystemExit(found)
    prometheus, promtool = found
    work = Path(tempfile.mkdtemp(prefix="affordml-record-"))
    source = work / "samples.om"
    source.write_text(dcgm_week.openmetrics(START - 3600, END))
    server.backfill(promtool, source, work / "data")
    with server.running(prometheus, work / "data", "global: {scrape_interval: 1m}\n", work / "log") as url:
        for name, query in QUERIES.items():
            params = urllib.parse.urlencode({"query": query, "start": START, "end": END, "step": STEP_S})
            with urllib.request.urlopen(f"{url}/api/v1/query_range?{params}", timeout=30) as answer:  # noqa: S310
                (OUT / f"{name}.json").write_bytes(answer.read())
        params = urllib.parse.urlencode({"query": "sum(", "start": START, "end": END, "step": STEP_S})
        try:
            urllib.request.urlopen(f"{url}/api/v1/query_range?{params}", timeout=30)  # noqa: S310
        except urllib.error.HTTPError as refused:
            (OUT / "bad_query.json").write_bytes(refused.read())


if __name__ == "__main__":
    main()
