"""`affordml serve sample` as the user runs it: one-line errors when there is nothing to apply, no cluster
kubeconfig, or no API answering (a closed port on loopback); nothing written into the project."""

from __future__ import annotations

import os
import socket
from pathlib import Path

GOLDEN_SAMPLE = Path(__file__).resolve().parents[1] / "golden" / "desktop-rtx4090" / "ml" / "serving-sample.yaml"


def _project_with_sample(project: Path) -> None:
    (project / "env" / "ml").mkdir(parents=True)
    for folder in (project, project / "env", project / "env" / "ml"):
        os.chmod(folder, 0o700)
    (project / "env" / "ml" / "serving-sample.yaml").write_text(GOLDEN_SAMPLE.read_text())


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens there


def _one_line(result, *words: str) -> None:
    lines = result.err_lines
    assert result.rc == 6, (result.rc, result.out, result.err)
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    for word in words:
        assert word in lines[0], lines[0]


def test_serve_sample_without_a_rendered_sample_says_so(cli):
    result = cli("serve", "sample")
    _one_line(result, "error (serve): no ", "serving-sample.yaml", "ml.inference", "fix: run `affordml init`")
    assert not cli.project.exists(), "a failed serve must not create the project folder"


def test_serve_sample_without_a_kubeconfig_says_so(cli):
    _project_with_sample(cli.project)
    _one_line(cli("serve", "sample"), "no cluster kubeconfig at", "secrets/kubeconfig")


def test_serve_sample_when_the_api_does_not_answer(cli):
    _project_with_sample(cli.project)
    secrets = cli.project / "secrets"
    secrets.mkdir(mode=0o700)
    kubeconfig = secrets / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{_closed_port()}'}}}}]\n"
        "users: [{name: u, user: {token: not-a-secret}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    kubeconfig.chmod(0o600)
    before = sorted(p.relative_to(cli.project) for p in cli.project.rglob("*"))
    for args in (("serve", "sample"), ("serve", "sample", "--remove")):
        _one_line(cli(*args), "the Kubernetes API did not answer", "fix: check the cluster")
    assert sorted(p.relative_to(cli.project) for p in cli.project.rglob("*")) == before


def test_serve_sample_with_a_broken_kubeconfig_says_so(cli):
    _project_with_sample(cli.project)
    secrets = cli.project / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "kubeconfig").write_text("apiVersion: v1\nkind: Config\nclusters: 3\n")
    (secrets / "kubeconfig").chmod(0o600)
    _one_line(cli("serve", "sample"), "is not a kubeconfig the Kubernetes client can use", "fix: run `affordml init")
