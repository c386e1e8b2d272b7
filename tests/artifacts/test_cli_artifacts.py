"""The CLI side: `affordml bundle` errors are one line naming artifact, URL and fix; `init --mirror` and the
`artifacts.mirror` key; `affordml plan` says where each download comes from."""

from __future__ import annotations

import hashlib
import json
import sys

import pytest

from affordml.artifacts.lock import artifact_from_entry, lock_artifacts
from affordml.cli import main
from tests.artifacts.loopback import Loopback, Route
from tests.cli.conftest import cli  # noqa: F401 (the real console script in a subprocess)

FILE = "tool-v1.tar.gz"


def tool_artifact(base: str):
    return artifact_from_entry(
        {
            "name": "tool",
            "component": "test",
            "version": "v1",
            "url": f"{base}/{FILE}",
            "file": FILE,
            "verify": "sha256sums",
            "checksum_url": f"{base}/{FILE}.sha256sum",
            "checksum_source": "loopback",
        }
    )


@pytest.fixture
def fast_policy(monkeypatch):
    from affordml.artifacts import download

    original = download.Policy
    monkeypatch.setattr(download, "Policy", lambda: original(timeout_s=1.0, tries=2, backoff_s=0.0))


@pytest.mark.parametrize(
    ("route", "words"),
    [(Route(status=404), "HTTP 404"), (Route(status=500), "HTTP 500"), (Route(stall_s=2.0), "no answer within 1 s")],
    ids=["404", "500", "timeout"],
)
def test_bundle_failure_is_one_line(monkeypatch, capfd, tmp_path, fast_policy, route, words) -> None:
    from affordml.artifacts import store

    with Loopback() as server:
        server.routes[f"/{FILE}.sha256sum"] = Route(body=f"{'0' * 64}  {FILE}\n".encode())
        server.routes[f"/{FILE}"] = route
        monkeypatch.setattr(store, "lock_artifacts", lambda: {"tool": tool_artifact(server.url)})
        monkeypatch.setattr(sys, "argv", ["affordml", "bundle", str(tmp_path / "b")])
        with pytest.raises(SystemExit) as done:
            main.run()
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert done.value.code == 9
    assert len(err) == 1, err
    assert err[0].startswith("error (artifact): tool: ") and f"{server.url}/{FILE}" in err[0] and words in err[0]
    assert "fix:" in err[0] and "affordml bundle" in err[0]
    assert not (tmp_path / "b" / "manifest.json").exists()


def test_bundle_command_writes_the_manifest(monkeypatch, capfd, tmp_path, fast_policy) -> None:
    from affordml.artifacts import store

    body = b"tool release\n" * 1000
    with Loopback() as server:
        server.routes[f"/{FILE}"] = Route(body=body)
        server.routes[f"/{FILE}.sha256sum"] = Route(body=f"{hashlib.sha256(body).hexdigest()}  {FILE}\n".encode())
        monkeypatch.setattr(store, "lock_artifacts", lambda: {"tool": tool_artifact(server.url)})
        monkeypatch.setattr(sys, "argv", ["affordml", "bundle", str(tmp_path / "b")])
        with pytest.raises(SystemExit) as done:
            main.run()
    out = " ".join(capfd.readouterr().out.split())
    assert done.value.code == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["artifacts"][0]["size"] == len(body)
    assert f"affordml init --mirror {tmp_path / 'b'}" in out


def test_init_mirror_refuses_a_folder_that_is_no_bundle(cli, tmp_path) -> None:  # noqa: F811
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("init", "--mirror", empty)
    assert result.rc == 9
    assert result.err_lines == [
        f"error (artifact): {empty} is not an affordml bundle: no manifest.json — fix: point --mirror "
        "at a folder made by `affordml bundle DIR` (it holds manifest.json)"
    ]
    assert not (cli.project / "state.json").exists()


def test_plan_shows_mirror_and_missing_artifacts(cli, tmp_path) -> None:  # noqa: F811
    helm = lock_artifacts()["helm"]
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    entry = {"name": "helm", "version": helm.version, "file": f"helm/{helm.file}", "sha256": "0" * 64, "size": 12345}
    manifest = {"format": "affordml-bundle", "format_version": 1, "lock": "x", "artifacts": [entry], "images": []}
    (mirror / "manifest.json").write_text(json.dumps(manifest))
    facts = "tests/fixtures/hardware/desktop-rtx4090.json"
    shown = cli("plan", "--facts", facts, "--json", env={"AFFORDML_ARTIFACTS__MIRROR": str(mirror)})
    assert shown.rc == 0, shown.err
    rows = {r["name"]: r for r in json.loads(shown.out)["downloads"]["artifacts"]}
    assert rows["helm"]["source"] == "mirror" and rows["helm"]["size"] == 12345
    assert rows["kubespray"]["source"] == "missing" and "affordml bundle" in rows["kubespray"]["where"]
    text = cli("plan", "--facts", facts, env={"AFFORDML_ARTIFACTS__MIRROR": str(mirror)})
    assert f"helm {helm.version}: mirror {mirror / 'helm' / helm.file}" in text.out.replace("\n", "")
