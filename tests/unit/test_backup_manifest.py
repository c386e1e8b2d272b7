"""A backup's manifest is data: make_backup's own passes the check, a backup stopped half-way is never complete,
and the report reaches only the URL given (no proxy from the environment) or the API server (a redirect
through its service proxy is refused, not followed)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from affordml.errors import StateError
from affordml.lifecycle.backup import list_backups, make_backup, read_manifest_json
from affordml.lifecycle.manifest import ManifestProblem, check_manifest, project_id, version_tuple
from affordml.lifecycle.restore import run_restore
from affordml.project import Project


def a_project(tmp_path: Path) -> Project:
    root = tmp_path / "p"
    root.mkdir(mode=0o700)
    (root / "affordml.yaml").write_text("hosts:\n  - name: pc1\n    address: local\n")
    (root / "state.json").write_text('{"version": 1, "phases": {}}')
    return Project(root)


def test_make_backups_own_manifest_passes_and_names_this_project(tmp_path):
    project = a_project(tmp_path)
    taken = make_backup(project, "manual", None, {}, lambda _line: None)
    manifest = check_manifest(read_manifest_json(project, taken.name), taken.name, project_id(project.root))
    assert manifest["finished"] is True and manifest["project"] == str(project.root.resolve())
    with pytest.raises(ManifestProblem, match="another project folder"):
        check_manifest(manifest, taken.name, "/elsewhere")


def test_a_backup_stopped_half_way_is_never_complete_nor_restored(tmp_path):
    project = a_project(tmp_path)

    def stopped(_dest):
        raise KeyboardInterrupt  # Ctrl-C while kolla's mariadb-backup runs

    with pytest.raises(KeyboardInterrupt):
        make_backup(project, "manual", None, {"openstack": stopped}, lambda _line: None)
    (row,) = list_backups(project)
    assert row["complete"] is False and "did not finish" in row["why"]
    with pytest.raises(StateError, match="did not finish"):
        run_restore(project, row["name"], True, lambda _line: None)
    assert not [p for p in (project.root / "backups").iterdir() if p.name.endswith("pre-restore")]


@pytest.mark.parametrize(("older", "newer"), [("0.1.0", "0.10.0"), ("0.9", "1.0.0"), ("1.2.3", "1.2.4+local")])
def test_versions_compare_as_numbers(older, newer):
    assert version_tuple(older) < version_tuple(newer)


class _Count(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.hits.append(self.path)
        body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Count)
    server.hits = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_prometheus_url_is_asked_directly_never_through_the_environments_proxy(monkeypatch):
    from affordml.report.prometheus import UrlPrometheus, query_range

    prometheus, proxy = _server(), _server()
    try:
        for name in ("http_proxy", "HTTP_PROXY", "all_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        source = UrlPrometheus(f"http://127.0.0.1:{prometheus.server_address[1]}")
        assert query_range(source, "up", 0, 60, 60) == []
        assert len(prometheus.hits) == 1 and proxy.hits == []
    finally:
        for server in (prometheus, proxy):
            server.shutdown()
            server.server_close()


class _Redirect(BaseHTTPRequestHandler):
    """An API server whose service proxy answers 302 to another server."""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.hits.append(self.path)
        self.send_response(302)
        self.send_header("Location", self.server.elsewhere + "/api/v1/query_range")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_through_the_api_server_a_redirect_is_refused_not_followed(tmp_path):
    from affordml.errors import RunError
    from affordml.report.prometheus import ProxyPrometheus, query_range

    elsewhere = _server()
    api = ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    api.hits, api.elsewhere = [], f"http://127.0.0.1:{elsewhere.server_address[1]}"
    threading.Thread(target=api.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: 'http://127.0.0.1:{api.server_address[1]}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    try:
        with pytest.raises(RunError, match="HTTP 302"):
            query_range(ProxyPrometheus(kubeconfig), "up", 0, 60, 60)
        assert len(api.hits) == 1 and elsewhere.hits == []
    finally:
        for server in (api, elsewhere):
            server.shutdown()
            server.server_close()
