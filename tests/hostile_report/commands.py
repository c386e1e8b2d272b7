"""Hostile inputs to the other lifecycle commands: report (--png, --since, --prometheus and what Prometheus
answers, from a loopback server), bench (the user's command as data, output paths, counts), verify, destroy,
upgrade, status, serve and add-node (garbage flags and names, Jinja payloads, recorded state of another shape)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.hostile_report.backups import (
    BACKUP,
    CONFIG,
    JINJA,
    SHOWN,
    STATUS,
    marker,
    project_then,
    recorded,
    state_data,
    state_lock,
)
from tests.hostile_report.runner import BAD_INPUT, DESKTOP, DESTROY, FILES, SECRET, SENTINEL, TERMINAL, VALUES, Sandbox

NOWHERE = "http://127.0.0.1:9"  # loopback, nothing listens
REPORT = ("report", "--prometheus", NOWHERE)
BENCH = ("bench", "sharing", "--local", "--device", "cpu", "--modes", "exclusive", "--n", "1", "--seconds", "0.2")
PNG = b"\x89PNG"
R, T = BAD_INPUT, TERMINAL


# ------------------------------------------------------------------ a loopback Prometheus


class Answer(BaseHTTPRequestHandler):
    body = b""
    status = 200
    location = ""
    hits: list

    def do_GET(self):  # noqa: N802 - http.server's name
        self.hits.append(self.path)
        self.send_response(self.status)
        if self.location:
            self.send_header("Location", self.location)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def serve(sandbox: Sandbox, body: bytes, status: int = 200, location: str = "") -> list:
    hits: list = []
    handler = type("Handler", (Answer,), {"body": body, "status": status, "location": location, "hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sandbox.cleanups.append(lambda: (server.shutdown(), server.server_close()))
    sandbox.url = sandbox.url or f"http://127.0.0.1:{server.server_address[1]}"
    return hits


def prometheus(body: bytes | str, status: int = 200):
    return lambda sandbox: serve(sandbox, body.encode() if isinstance(body, str) else body, status)


def matrix(values) -> str:
    series = [{"metric": {"namespace": "ml", "pod": "p", "gpu": "0"}, "values": values}]
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": series}})


def redirect_elsewhere(sandbox: Sandbox) -> None:
    """The given URL answers 302 to another loopback server, which counts what reaches it."""
    elsewhere = serve(sandbox, matrix([]).encode())
    target, sandbox.url = sandbox.url, ""
    serve(sandbox, b"", 302, f"{target}/api/v1/query_range")
    sandbox.seen["elsewhere"] = elsewhere


def elsewhere_hits(sandbox: Sandbox) -> str:
    return f"requests that reached the other server: {len(sandbox.seen['elsewhere'])}"


def users_file(sandbox: Sandbox) -> None:
    (sandbox.outside / "notes.txt").write_text(SENTINEL)


def matplotlib_cache(sandbox: Sandbox) -> None:
    """The user's matplotlib has built its font cache (~/.cache/matplotlib) before, as after any first use."""
    code = "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot"
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "HOME": str(sandbox.home)}, check=True)


def png_written(sandbox: Sandbox) -> str:
    written = (sandbox.project / "chart.png").read_bytes()[:4] == PNG
    return f"PNG written: {written}"


# ------------------------------------------------------------------ add-node on an installed first PC


def platform(sandbox: Sandbox) -> None:
    """The first PC's host and openstack phases done with the inputs this affordml renders."""
    from tests.installed import installed_first_pc

    installed_first_pc(sandbox.project, CONFIG, DESKTOP)


def add_node(name: str, *extra: str) -> tuple:
    return ("add-node", name, "--plan", "--base-facts", str(DESKTOP), "--facts", str(DESKTOP), *extra)


# (issue class, kind, field, input, setup, args, keyword arguments for Case)
COMMAND_TABLE = [
    # report: --png, --since, --prometheus, and what Prometheus answers
    (
        FILES,
        "report",
        "--png",
        "existing link to a file outside",
        None,
        (*REPORT, "--png", "{tmp}/outside/savelink.json"),
    ),
    (FILES, "report", "--png", "a folder", None, (*REPORT, "--png", "{tmp}/outside/dir")),
    (
        FILES,
        "report",
        "--png",
        "a file of the user's (not a PNG)",
        users_file,
        (*REPORT, "--png", "{tmp}/outside/notes.txt"),
    ),
    (
        FILES,
        "report",
        "--png",
        "a hard link to a file outside",
        None,
        (*REPORT, "--png", "{tmp}/outside/hardsave.json"),
    ),
    (R, "report", "--png", "in a folder that does not exist", None, (*REPORT, "--png", "{tmp}/nowhere/r.png")),
    (
        R,
        "report",
        "--png",
        "in a read-only (immutable) folder",
        lambda s: subprocess.run(["chattr", "+i", str(s.outside / "dir")], check=True),
        (*REPORT, "--png", "{tmp}/outside/dir/r.png"),
    ),
    (R, "report", "--since", "`7x`", None, ("report", "--since", "7x", "--prometheus", NOWHERE)),
    (R, "report", "--since", "`-1d`", None, ("report", "--since", "-1d", "--prometheus", NOWHERE)),
    (
        R,
        "report",
        "--since",
        "`99999999999999d`",
        None,
        ("report", "--since", "99999999999999d", "--prometheus", NOWHERE),
    ),
    (R, "report", "--since", "`0m`", None, ("report", "--since", "0m", "--prometheus", NOWHERE)),
    (R, "report", "--prometheus", "`file:///etc/passwd`", None, ("report", "--prometheus", "file:///etc/passwd")),
    (R, "report", "--prometheus", "`gopher://127.0.0.1:9`", None, ("report", "--prometheus", "gopher://127.0.0.1:9")),
    (
        R,
        "report",
        "--prometheus",
        "a password in the URL (not echoed)",
        None,
        ("report", "--prometheus", f"http://u:{SECRET}@127.0.0.1:9"),
    ),
    (R, "report", "--prometheus", "a query in the URL", None, ("report", "--prometheus", "http://127.0.0.1:9/?x=1")),
    (R, "report", "--prometheus", "`http://[::1` (broken)", None, ("report", "--prometheus", "http://[::1")),
    (R, "report", "--prometheus", "port 99999", None, ("report", "--prometheus", "http://127.0.0.1:99999")),
    (
        R,
        "report",
        "--prometheus",
        "answers a redirect to another server",
        redirect_elsewhere,
        ("report", "--prometheus", "{url}"),
        {"note": elsewhere_hits},
    ),
    (R, "report", "Prometheus answer", "not JSON", prometheus("<html>"), ("report", "--prometheus", "{url}")),
    (R, "report", "Prometheus answer", "a JSON list", prometheus("[1, 2]"), ("report", "--prometheus", "{url}")),
    (
        R,
        "report",
        "Prometheus answer",
        "a vector, not a matrix",
        prometheus('{"status": "success", "data": {"resultType": "vector", "result": []}}'),
        ("report", "--prometheus", "{url}"),
    ),
    (
        R,
        "report",
        "Prometheus answer",
        "a matrix of texts",
        prometheus('{"status": "success", "data": {"resultType": "matrix", "result": ["a"]}}'),
        ("report", "--prometheus", "{url}"),
    ),
    (
        R,
        "report",
        "Prometheus answer",
        "sample values that are not numbers",
        prometheus(matrix([[1.7e9, "abc"]])),
        ("report", "--prometheus", "{url}"),
    ),
    (
        R,
        "report",
        "Prometheus answer",
        "time stamps of year 10^12",
        prometheus(matrix([[1e20, "1"]])),
        ("report", "--prometheus", "{url}"),
    ),
    (
        R,
        "report",
        "Prometheus answer",
        "NaN and Inf samples",
        prometheus(matrix([[1.7e9, "NaN"], [1.7e9 + 60, "+Inf"]])),
        ("report", "--prometheus", "{url}", "--json"),
        {"accepted": "accepted: NaN and Inf are left out of the figures"},
    ),
    (
        R,
        "report",
        "Prometheus answer",
        "65 MiB",
        prometheus(b'{"status": "success", "data": {"x": "' + b"x" * (65 * 2**20) + b'"}}'),
        ("report", "--prometheus", "{url}"),
    ),
    (
        T,
        "report",
        "Prometheus answer",
        "an error with escape sequences",
        prometheus('{"status": "error", "error": "\\u001b[2J\\u001b[31mEVIL"}', 400),
        ("report", "--prometheus", "{url}"),
    ),
    # bench: the user's command is data, never a shell line; the output paths; counts
    (
        VALUES,
        "bench",
        "--command",
        "`echo hi; touch <tmp>/MARKER-bench`",
        None,
        (*BENCH, "--command", "echo hi; touch {tmp}/MARKER-bench"),
        {"note": marker("MARKER-bench"), "accepted": "accepted: echo ran with the rest as its arguments"},
    ),
    (
        VALUES,
        "bench",
        "--command",
        "`$(touch <tmp>/MARKER-sub)`",
        None,
        (*BENCH, "--command", "$(touch {tmp}/MARKER-sub)"),
        {"note": marker("MARKER-sub")},
    ),
    (
        T,
        "bench",
        "--command",
        "`$` (matplotlib mathtext) with --png",
        matplotlib_cache,
        (*BENCH, "--command", "echo $\\frac{a$", "--png", "{tmp}/project/chart.png"),
        {"note": png_written},
    ),
    (
        FILES,
        "bench",
        "--png",
        "existing link to a file outside",
        None,
        (*BENCH, "--png", "{tmp}/outside/savelink.json"),
    ),
    (
        FILES,
        "bench",
        "--png",
        "a file of the user's (not a PNG)",
        users_file,
        (*BENCH, "--png", "{tmp}/outside/notes.txt"),
    ),
    (R, "bench", "--png", "a folder", None, (*BENCH, "--png", "{tmp}/outside/dir")),
    (R, "bench", "--png", "in a folder that does not exist", None, (*BENCH, "--png", "{tmp}/nowhere/c.png")),
    (R, "bench", "--json", "given a path (it is a flag)", None, (*BENCH, "--json", "{tmp}/outside/out.json")),
    (R, "bench", "--n", "`a,b`", None, ("bench", "sharing", "--local", "--n", "a,b")),
    (R, "bench", "--n", "`0`", None, ("bench", "sharing", "--local", "--n", "0")),
    (R, "bench", "--n", "`-1`", None, ("bench", "sharing", "--local", "--n", "-1")),
    (R, "bench", "--n", "`1e3`", None, ("bench", "sharing", "--local", "--n", "1e3")),
    (R, "bench", "--n", "`99999999999999999999`", None, ("bench", "sharing", "--local", "--n", "99999999999999999999")),
    (R, "bench", "--n", "`,`", None, ("bench", "sharing", "--local", "--n", ",")),
    (R, "bench", "--seconds", "`nan`", None, ("bench", "sharing", "--local", "--seconds", "nan")),
    (R, "bench", "--seconds", "`inf`", None, ("bench", "sharing", "--local", "--seconds", "inf")),
    (VALUES, "bench", "--modes", JINJA, None, ("bench", "sharing", "--local", "--modes", JINJA)),
    (VALUES, "bench", "--workload", JINJA, None, ("bench", "sharing", "--local", "--workload", JINJA)),
    (VALUES, "bench", "--gpu-address", JINJA, None, ("bench", "sharing", "--local", "--gpu-address", JINJA)),
    (VALUES, "bench", "--image", JINJA, None, ("bench", "sharing", "--image", JINJA)),
    # verify, destroy, upgrade, serve: garbage flags and names
    (R, "verify", "--skip-check", "unknown check", None, ("verify", "--skip-check", "nope")),
    (VALUES, "verify", "--skip-check", JINJA, None, ("verify", "--skip-check", JINJA)),
    (R, "verify", "--nope", "unknown option", None, ("verify", "--nope")),
    (DESTROY, "destroy", "--only", "unknown phase", None, ("destroy", "--only", "nope")),
    (VALUES, "destroy", "--only", JINJA, None, ("destroy", "--only", JINJA, "--yes-i-really-really-mean-it")),
    (DESTROY, "destroy", "--only + --releases", "both", None, ("destroy", "--only", "ml", "--releases")),
    (DESTROY, "destroy", "--yes", "a short flag for the confirmation", None, ("destroy", "--yes")),
    (R, "upgrade", "--nope", "unknown option", None, ("upgrade", "--nope")),
    (
        R,
        "upgrade",
        "state.json",
        "no version lock recorded",
        project_then(),
        ("upgrade", "--yes-i-really-really-mean-it"),
    ),
    (R, "upgrade", "state.json data.lock", "a text", state_lock("x"), ("upgrade", "--plan")),
    (
        R,
        "upgrade",
        "state.json data.lock",
        "kubernetes: `garbage`",
        state_lock(recorded(kubernetes="garbage")),
        ("upgrade", "--plan"),
    ),
    (
        R,
        "upgrade",
        "state.json data.lock",
        "cert_manager: a number",
        state_lock(recorded(cert_manager=3)),
        ("upgrade", "--plan"),
    ),
    (R, "upgrade", "state.json data.lock", "no kubespray", state_lock(recorded(kubespray=None)), ("upgrade", "--plan")),
    (
        VALUES,
        "upgrade",
        "state.json data.lock",
        f"name: {JINJA}",
        state_lock(recorded(name=JINJA)),
        ("upgrade", "--plan"),
        {"note": marker("MARKER-lifecycle"), "accepted": "accepted: the plan shows the name as text"},
    ),
    (R, "backup", "state.json data.lock", "a list", state_lock([1]), BACKUP),
    (R, "status", "state.json data.lock", "a list", state_data("lock", [1]), STATUS, SHOWN),
    (
        R,
        "status",
        "state.json data.upgrade",
        "hops a text, done a text",
        state_data("upgrade", {"hops": "x", "done": "x"}),
        STATUS,
        SHOWN,
    ),
    (R, "status", "state.json data.nodes", "a PC's record a number", state_data("nodes", {"pc2": 3}), STATUS, SHOWN),
    (
        R,
        "status",
        "state.json data.kubernetes",
        "nodes a text",
        state_data("kubernetes", {"nodes": "x"}),
        STATUS,
        SHOWN,
    ),
    (
        R,
        "status",
        "state.json data.cloud",
        "servers a list of numbers",
        state_data("cloud", {"servers": [1]}),
        STATUS,
        SHOWN,
    ),
    (R, "serve", "env/ml/serving-sample.yaml", "not rendered", None, ("serve", "sample")),
    (R, "serve", "subcommand", "unknown", None, ("serve", "nope")),
    # add-node on an installed first PC: the host name and the flags are data
    (VALUES, "add-node", "HOST", JINJA, platform, add_node(JINJA), {"note": marker("MARKER-lifecycle")}),
    (VALUES, "add-node", "HOST", "`pc2; id`", platform, add_node("pc2; id")),
    (VALUES, "add-node", "HOST", "`$(id)`", platform, add_node("$(id)")),
    (VALUES, "add-node", "HOST", "`pc2\\nhosts: []` (YAML)", platform, add_node("pc2\nhosts: []")),
    (R, "add-node", "HOST", "the first PC", platform, add_node("pc1")),
    (R, "add-node", "HOST", "not in affordml.yaml", platform, add_node("pc9")),
    (VALUES, "add-node", "--accept-host-key", JINJA, platform, add_node("pc2", "--accept-host-key", JINJA)),
    (VALUES, "add-node", "--skip-phase", JINJA, platform, add_node("pc2", "--skip-phase", JINJA)),
    (VALUES, "add-node", "--ignore-check", JINJA, platform, add_node("pc2", "--ignore-check", JINJA)),
]
