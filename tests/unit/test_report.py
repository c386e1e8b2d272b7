"""`affordml report` on recorded answers of a real Prometheus (tests/fixtures/prometheus, recorded by
tests/promreal/record.py from Prometheus 2.42: 2026-11-25 08:00-20:00 UTC of the tests/promreal/dcgm_week pattern,
step 60 s). A loopback HTTP server plays Prometheus, and the Kubernetes API server's service proxy, with them."""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from datetime import UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from affordml.errors import ConfigError, RunError, UnsafeFile
from affordml.report import period, queries, usage
from affordml.report.collect import collect
from affordml.report.prometheus import ProxyPrometheus, UrlPrometheus, query_range

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "prometheus"
START, END, STEP = 1795593600, 1795636800, 60  # 2026-11-25 08:00 and 20:00 UTC
PROXY_PREFIX = "/api/v1/namespaces/monitoring/services/prometheus-operated:9090/proxy"


def recorded(name: str) -> list[dict]:
    return json.loads((RECORDED / f"{name}.json").read_text())["data"]["result"]


def matrices() -> dict[str, list[dict]]:
    return {name: recorded(name) for name in queries.QUERIES}


def test_recorded_answers_are_for_the_report_queries():
    """The fixtures hold each query's answer: the labels kept by each `by (...)` and nothing else."""
    for series in recorded("pod_util") + recorded("pod_memory"):
        assert set(series["metric"]) == {queries.NAMESPACE, queries.POD}
    for name in ("total_util", "total_memory", "gpus"):
        assert [series["metric"] for series in recorded(name)] == [{}]


def test_owners_from_recorded_answers():
    report = usage.build_report(matrices(), START, END, STEP, UTC)
    owners = {row["owner"]: row for row in report["owners"]}
    assert list(owners) == ["ml", "alice (jupyterhub)"]  # most GPU-hours first
    ml, alice = owners["ml"], owners["alice (jupyterhub)"]
    # ml: 09:00-17:00 at 80 %; the answer also holds 17:00-17:04, while the last sample is in the 5 min lookback
    assert ml["hours_holding_gpu"] == pytest.approx(8 + 5 / 60, abs=1e-3)
    assert ml["gpu_hours"] == pytest.approx(0.8 * (8 + 5 / 60), abs=1e-3)
    assert (ml["mean_util_pct"], ml["mean_memory_mib"], ml["peak_memory_mib"]) == (80.0, 30000.0, 30000.0)
    # alice from 19:00 to the end (20:00, inclusive)
    assert alice["hours_holding_gpu"] == pytest.approx(1 + 1 / 60, abs=1e-3)
    assert alice["gpu_hours"] == pytest.approx(0.5 * (1 + 1 / 60), abs=1e-3)
    assert report["gpus"] == 2 and report["period"]["hours_in"] == "UTC"


def test_hours_from_recorded_answers():
    hours = usage.per_hour(recorded("total_util"), recorded("total_memory"), UTC)
    assert len(hours) == 24 and [row["hour"] for row in hours] == list(range(24))
    by_hour = {row["hour"]: row for row in hours}
    assert by_hour[3] == {"hour": 3, "mean_util_pct": None, "mean_memory_mib": None, "samples": 0}
    assert by_hour[8]["mean_util_pct"] == 0.0 and by_hour[8]["mean_memory_mib"] == 2.0
    assert by_hour[12]["mean_util_pct"] == 40.0 and by_hour[12]["mean_memory_mib"] == 30001.0
    assert by_hour[20]["samples"] == 1 and by_hour[20]["mean_util_pct"] == 25.0


def test_hours_follow_the_time_zone():
    from datetime import timedelta
    from datetime import timezone as tz

    plus_two = tz(timedelta(hours=2))
    by_hour = {row["hour"]: row for row in usage.per_hour(recorded("total_util"), recorded("total_memory"), plus_two)}
    assert by_hour[14]["mean_util_pct"] == 40.0  # 12:00 UTC


def test_nan_and_inf_samples_say_nothing():
    series = [{"metric": {}, "values": [[1, "NaN"], [2, "+Inf"], [3, "40"]]}]
    assert usage.per_hour(series, [], UTC)[0]["mean_util_pct"] == 40.0


@pytest.mark.parametrize(
    ("labels", "who"),
    [
        ({"exported_namespace": "ml", "exported_pod": "train-a"}, "ml"),
        ({"exported_namespace": "jupyterhub", "exported_pod": "jupyter-alice"}, "alice (jupyterhub)"),
        ({"exported_namespace": "jupyterhub", "exported_pod": "jupyter-bob--gpu"}, "bob (jupyterhub)"),
        ({"exported_namespace": "jupyterhub", "exported_pod": "hub-5d9f"}, "jupyterhub"),
        ({}, "(no namespace)"),
    ],
)
def test_owner(labels, who):
    assert queries.owner(labels) == who


@pytest.mark.parametrize(("text", "seconds"), [("7d", 604800), ("24h", 86400), ("90m", 5400), ("2w", 1209600)])
def test_since(text, seconds):
    assert period.parse_since(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "-1d", "0m", "91d", "1d; rm"])
def test_since_refused_in_one_line(text):
    with pytest.raises(ConfigError, match="--since"):
        period.parse_since(text)


@pytest.mark.parametrize("seconds", [60, 3600, 86400, 604800, 90 * 86400])
def test_step_keeps_series_small(seconds):
    step = period.step_for(seconds)
    assert step % 60 == 0 and seconds // step + 1 <= period.POINTS_PER_SERIES + 1


class _FakePrometheus(BaseHTTPRequestHandler):
    """Answers query_range with the recorded answer of the query asked; anything else as Prometheus would."""

    prefix = ""
    seen: list[str] = []

    def do_GET(self):  # noqa: N802
        parts = urlsplit(self.path)
        self.seen.append(parts.path)
        asked = parse_qs(parts.query).get("query", [""])[0]
        names = [name for name, query in queries.QUERIES.items() if query == asked]
        if parts.path != f"{self.prefix}/api/v1/query_range":
            self._send(404, b"404 page not found\n")
        elif not names:
            self._send(400, (RECORDED / "bad_query.json").read_bytes())
        else:
            self._send(200, (RECORDED / f"{names[0]}.json").read_bytes())

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def fake_prometheus(prefix: str = ""):
    handler = type("Handler", (_FakePrometheus,), {"prefix": prefix, "seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_collect_through_a_url():
    with fake_prometheus() as (url, seen):
        report = collect(UrlPrometheus(url), 12 * 3600, END + 30, UTC)
    assert len(seen) == len(queries.QUERIES)
    assert [row["owner"] for row in report["owners"]] == ["ml", "alice (jupyterhub)"]


def test_a_refused_query_is_one_line():
    with fake_prometheus() as (url, _), pytest.raises(RunError) as refused:
        query_range(UrlPrometheus(url), "sum(", START, END, STEP)
    assert "refused the query: 1:5: parse error: unclosed left parenthesis" in refused.value.one_line()


def test_not_prometheus_is_one_line():
    with fake_prometheus() as (url, _), pytest.raises(RunError, match="not JSON"):
        query_range(UrlPrometheus(url + "/elsewhere"), queries.QUERIES["gpus"], START, END, STEP)


def test_unreachable_is_one_line():
    with pytest.raises(RunError, match=r"Prometheus at http://127\.0\.0\.1:9 is unreachable"):
        query_range(UrlPrometheus("http://127.0.0.1:9"), "up", START, END, STEP)


@pytest.mark.parametrize("url", ["127.0.0.1:9090", "ftp://x", "file:///etc/passwd", ""])
def test_a_url_that_is_not_http_is_refused(url):
    with pytest.raises(RunError, match="--prometheus"):
        UrlPrometheus(url)


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


def test_collect_through_the_api_server_service_proxy(tmp_path):
    with fake_prometheus(PROXY_PREFIX) as (url, seen):
        source = ProxyPrometheus(_kubeconfig(tmp_path / "kubeconfig", url))
        report = collect(source, 12 * 3600, END, UTC)
    assert set(seen) == {f"{PROXY_PREFIX}/api/v1/query_range"}
    assert report["gpus"] == 2


def test_the_proxy_without_prometheus_is_one_line(tmp_path):
    with fake_prometheus("/somewhere-else") as (url, _), pytest.raises(RunError) as missing:
        query_range(ProxyPrometheus(_kubeconfig(tmp_path / "kubeconfig", url)), "up", START, END, STEP)
    assert "is unreachable: HTTP 404" in missing.value.one_line() and "monitoring" in missing.value.one_line()


def test_the_proxy_without_kubeconfig_is_one_line(tmp_path):
    with pytest.raises(RunError, match="no cluster kubeconfig"):
        ProxyPrometheus(tmp_path / "kubeconfig")


def _cli(*args: str, project: Path):
    from affordml.cli.main import app

    return CliRunner().invoke(app, ["-p", str(project), "report", *args], env={"TZ": "UTC", "COLUMNS": "120"})


def test_cli_json_and_png(tmp_path, monkeypatch):
    monkeypatch.setattr("time.time", lambda: END + 30)
    png = tmp_path / "out.png"
    with fake_prometheus() as (url, _):
        done = _cli("--prometheus", url, "--since", "12h", "--json", "--png", str(png), project=tmp_path)
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert data["period"]["since"] == "12h" and data["png"] == str(png)
    assert png.read_bytes()[:4] == b"\x89PNG" and (png.stat().st_mode & 0o777) == 0o644


def test_cli_table_and_chart(tmp_path, monkeypatch):
    monkeypatch.setattr("time.time", lambda: END + 30)
    with fake_prometheus() as (url, _):
        done = _cli("--prometheus", url, "--since", "12h", project=tmp_path)
    assert done.exit_code == 0, done.output
    assert "alice (jupyterhub)" in done.output and "29.3" in done.output  # ml's mean memory, GiB
    assert "  12h  40.0 %  ████████████████  29.3 GiB" in done.output


def test_png_never_writes_through_a_link(tmp_path, monkeypatch):
    monkeypatch.setattr("time.time", lambda: END + 30)
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    os.symlink(victim, tmp_path / "out.png")
    with fake_prometheus() as (url, _):
        done = _cli("--prometheus", url, "--since", "12h", "--png", str(tmp_path / "out.png"), project=tmp_path)
    assert done.exit_code != 0 and isinstance(done.exception, UnsafeFile)
    assert "symbolic link" in done.exception.one_line() and victim.read_text() == "keep me"


def test_empty_period_prints_a_line_not_an_error(tmp_path, capsys):
    from affordml.report.show import print_report

    empty = {name: [] for name in queries.QUERIES}
    print_report(usage.build_report(empty, START, END, STEP, UTC), "12h")
    shown = capsys.readouterr().out
    assert "no samples" in shown and "no pod held a GPU" in shown


def test_local_hours_follow_daylight_saving(monkeypatch):
    """Without a zone the hours are this machine's local time, the offset of each sample's own date."""
    import time as clock

    monkeypatch.setenv("TZ", "Europe/Berlin")
    clock.tzset()
    try:
        winter, summer = 1795593600, 1795593600 - 180 * 86400  # 2026-11-25 and 2026-05-29, 08:00 UTC
        series = [{"metric": {}, "values": [[winter, "10"], [summer, "30"]]}]
        by_hour = {row["hour"]: row["mean_util_pct"] for row in usage.per_hour(series, [], None)}
        assert by_hour[9] == 10.0 and by_hour[10] == 30.0  # CET +1, CEST +2
    finally:
        monkeypatch.undo()  # TZ as it was, then read again
        clock.tzset()


def test_hostile_names_from_prometheus_stay_text(tmp_path, capsys):
    """Label values of any Prometheus (--prometheus URL) reach the terminal and the PNG as text."""
    from affordml.report.show import print_report, save_png

    hostile = "\x1b]0;owned\x07$\\nosuchcommand{$ [bold]x[/bold]"
    pod_util = [{"metric": {"exported_namespace": hostile, "exported_pod": "p"}, "values": [[START, "50"]]}]
    report = usage.build_report({**{name: [] for name in queries.QUERIES}, "pod_util": pod_util}, START, END, STEP, UTC)
    print_report(report, "12h")
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "\\x1b]0;owned\\x07" in shown and "[bold]x[/bold]" in shown
    assert save_png(report, "12h", tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
