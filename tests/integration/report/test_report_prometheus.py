"""`affordml report` against a real Prometheus (Debian's package, loopback only): a week of dcgm-exporter samples
backfilled with the real promtool, the real CLI asked for `--since 7d --json --png`, its figures checked against
the known pattern (tests/promreal/dcgm_week.py); a live scrape of an endpoint in the exporter's format shows that
Prometheus stores the exporter's namespace/pod as exported_namespace/exported_pod (what the queries use)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.promreal import dcgm_week, server

REPO = Path(__file__).resolve().parents[3]
WEEK_S = 7 * 86400
PNG_OUT_ENV = "AFFORDML_REPORT_PNG_OUT"  # where to keep the run's PNG (docs/images/report-example.png)
RESULTS: list[str] = []


class _Exporter(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = dcgm_week.exporter_scrape().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory):
    found = server.binaries()
    if isinstance(found, str):
        pytest.skip(found)
    prometheus, promtool = found
    work = tmp_path_factory.mktemp("prometheus")
    end = int(time.time()) // 60 * 60
    source = work / "week.om"
    started = time.monotonic()
    source.write_text(dcgm_week.openmetrics(end - WEEK_S - 3600, end))
    generated = time.monotonic() - started
    data = work / "data"
    backfilled = server.backfill(promtool, source, data)
    exporter = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    threading.Thread(target=exporter.serve_forever, daemon=True).start()
    config = f"""
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: nvidia-dcgm-exporter
    honor_labels: false
    static_configs:
      - targets: ["127.0.0.1:{exporter.server_address[1]}"]
        labels: {{namespace: gpu-operator, pod: nvidia-dcgm-exporter-x7k2p, container: nvidia-dcgm-exporter}}
"""
    try:
        with server.running(prometheus, data, config, work / "prometheus.log") as url:
            RESULTS.append(
                f"{source.stat().st_size // 1024} KiB OpenMetrics generated in {generated:.1f} s, backfilled by "
                f"promtool in {backfilled:.1f} s ({len(list(data.glob('01*')))} blocks)"
            )
            yield url
    finally:
        exporter.shutdown()
        exporter.server_close()
        for line in RESULTS:
            print(f"[report-prometheus] {line}")


def affordml(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TZ": "UTC", "COLUMNS": "120", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "affordml", *args], capture_output=True, text=True, timeout=120, env=environment
    )


def active_hours(owner_gpu: int, start: int, end: int) -> float:
    minutes = sum(1 for t in range(start, end, 60) if dcgm_week.workload(owner_gpu, t)[0])
    return minutes / 60


def _stamp(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text).timestamp())


def test_week_report_matches_the_pattern(prometheus_url, tmp_path):
    png = tmp_path / "report.png"
    started = time.monotonic()
    done = affordml("report", "--prometheus", prometheus_url, "--since", "7d", "--json", "--png", str(png))
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    start, end, step = _stamp(report["period"]["start"]), _stamp(report["period"]["end"]), report["period"]["step_s"]
    assert end - start == WEEK_S and step == 360
    assert report["gpus"] == 2
    owners = {row["owner"]: row for row in report["owners"]}
    assert set(owners) == {"ml", "alice (jupyterhub)"}
    # one query step per active stretch of slack: the last sample before a pod stops is seen up to 5 min later
    for who, gpu, util, memory, stretches in (("ml", 0, 80, 30000, 7), ("alice (jupyterhub)", 1, 50, 12000, 9)):
        expected = active_hours(gpu, start, end)
        row = owners[who]
        assert abs(row["hours_holding_gpu"] - expected) <= stretches * step / 3600, (who, row, expected)
        assert abs(row["gpu_hours"] - expected * util / 100) <= stretches * step / 3600, (who, row, expected)
        assert row["mean_util_pct"] == util and row["peak_memory_mib"] == memory == row["mean_memory_mib"]
    hours = {row["hour"]: row for row in report["hours"]}
    assert hours[3]["mean_util_pct"] == 0 and hours[3]["mean_memory_mib"] == 2.0  # two idle GPUs at 1 MiB
    assert 25 <= hours[10]["mean_util_pct"] <= 32  # GPU 0 at 80 % on 5 days of 7, GPU 1 idle: 28.6
    assert hours[20]["mean_util_pct"] == pytest.approx(25, abs=0.5)  # GPU 1 at 50 % every evening
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get(PNG_OUT_ENV):
        shutil.copyfile(png, os.environ[PNG_OUT_ENV])
    RESULTS.append(
        f"report --since 7d --json --png: {took:.1f} s, owners {sorted(owners)}, "
        f"ml {owners['ml']['gpu_hours']} GPU-hours (pattern {active_hours(0, start, end) * 0.8:.2f})"
    )


def test_terminal_report_names_users_and_hours(prometheus_url):
    done = affordml("report", "--prometheus", prometheus_url, "--since", "2d")
    assert done.returncode == 0, done.stderr
    assert "alice (jupyterhub)" in done.stdout and "by user / namespace" in done.stdout
    assert "20h  25.0 %" in done.stdout and "03h   0.0 %" in done.stdout


def test_prometheus_stores_the_exporters_pod_labels_as_exported(prometheus_url):
    query = 'DCGM_FI_DEV_GPU_UTIL{exported_namespace="ml",exported_pod="train-a",namespace="gpu-operator"}'
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = server.get_json(f"{prometheus_url}/api/v1/query?query={quote(query)}")
        live = [s for s in answer["data"]["result"] if s["metric"].get("instance", "").startswith("127.0.0.1")]
        if live:
            assert live[0]["metric"]["pod"] == "nvidia-dcgm-exporter-x7k2p" and live[0]["value"][1] == "80"
            return
        time.sleep(0.5)
    pytest.fail("the live scrape never produced exported_namespace/exported_pod")


def test_a_query_prometheus_refuses_is_one_line(prometheus_url):
    done = affordml("report", "--prometheus", prometheus_url + "/nothing-here", "--since", "1h")
    assert done.returncode == 6 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Prometheus at" in done.stderr
