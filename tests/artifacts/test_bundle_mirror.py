"""`affordml bundle` into a folder from a loopback server, then a mirror-only fetch with every socket refused.

Real files: the helm release tarball (binary from PyPI), a chart packaged and indexed by that helm
(`helm package`, `helm repo index`: the digest is helm's), a `git archive` of a real git repository, and the
same chart served by a loopback OCI registry that asks for a bearer token as ghcr.io does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from affordml.artifacts import ArtifactError, ArtifactStore
from affordml.artifacts.bundle import run_bundle
from affordml.artifacts.download import Policy
from affordml.artifacts.lock import artifact_from_entry
from affordml.artifacts.progress import Silent
from tests.artifacts import realfiles
from tests.artifacts.loopback import Loopback, Route

FAST = Policy(timeout_s=5.0, tries=2, backoff_s=0.01)
CHART_DIR = Path(__file__).parent / "data" / "tinychart"
TOKEN = "loopback-token"


@pytest.fixture(scope="module")
def helm() -> Path:
    return realfiles.helm_binary()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory, helm):
    """Files as upstream publishes them, built once: helm tarball, chart + index.yaml, git archive."""
    root = tmp_path_factory.mktemp("upstream")
    charts = root / "charts"
    subprocess.run([helm, "package", CHART_DIR, "-d", charts], check=True, capture_output=True)
    repo = root / "repo"
    repo.mkdir()
    (repo / "site.yml").write_text("- hosts: all\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@e"
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "c"]):
        subprocess.run(["git", "-C", repo, *args], check=True, env=env, capture_output=True)
    tree = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD^{tree}"], capture_output=True, text=True).stdout
    archive = root / "spray.tar.gz"
    subprocess.run(["git", "-C", repo, "archive", "--prefix=spray-1/", "-o", archive, "HEAD"], check=True)
    return {
        "helm": realfiles.helm_release_tarball().read_bytes(),
        "chart": (charts / "tinychart-0.1.0.tgz").read_bytes(),
        "charts_dir": charts,
        "archive": archive.read_bytes(),
        "tree": tree.strip(),
    }


def serve(server: Loopback, upstream: dict, helm: Path) -> dict:
    base = server.url
    helm_name = "helm-v9.9.9-linux-amd64.tar.gz"
    sha = hashlib.sha256(upstream["helm"]).hexdigest()
    server.routes[f"/{helm_name}"] = Route(body=upstream["helm"])
    server.routes[f"/{helm_name}.sha256sum"] = Route(body=f"{sha}  {helm_name}\n".encode())
    charts = upstream["charts_dir"]
    subprocess.run([helm, "repo", "index", charts, "--url", f"{base}/charts"], check=True, capture_output=True)
    server.routes["/charts/index.yaml"] = Route(body=(charts / "index.yaml").read_bytes())
    server.routes["/charts/tinychart-0.1.0.tgz"] = Route(body=upstream["chart"])
    server.routes["/spray/v1.tar.gz"] = Route(body=upstream["archive"])
    serve_oci(server, upstream["chart"])
    common = {"component": "test", "checksum_source": "loopback test upstream"}
    entries = [
        {
            "name": "helm",
            "version": "v9.9.9",
            "url": f"{base}/helm-{{version}}-linux-amd64.tar.gz",
            "file": "helm-{version}-linux-amd64.tar.gz",
            "verify": "sha256sums",
            "checksum_url": f"{base}/helm-{{version}}-linux-amd64.tar.gz.sha256sum",
        },
        {
            "name": "chart/tinychart",
            "version": "0.1.0",
            "url": f"{base}/charts/tinychart-{{version}}.tgz",
            "file": "tinychart-{version}.tgz",
            "verify": "chart-index",
            "index_url": f"{base}/charts/index.yaml",
            "chart": "tinychart",
            "images": ["example.org/tiny/app:0.1.0"],
        },
        {
            "name": "chart/tiny-oci",
            "version": "0.1.0",
            "oci": "loopback/charts/tinychart",
            "url": f"{base}/v2/charts/tinychart/manifests/{{version}}",
            "file": "tinychart-oci-{version}.tgz",
            "verify": "oci",
        },
        {
            "name": "spray",
            "version": "v1",
            "url": f"{base}/spray/{{version}}.tar.gz",
            "file": "spray-{version}.tar.gz",
            "verify": "git-tree",
            "git_tree": upstream["tree"],
        },
    ]
    return {e["name"]: artifact_from_entry({**common, **e}) for e in entries}


def serve_oci(server: Loopback, chart: bytes) -> None:
    digest = hashlib.sha256(chart).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": "sha256:" + "0" * 64, "size": 2},
        "layers": [
            {
                "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                "digest": f"sha256:{digest}",
                "size": len(chart),
            }
        ],
    }
    challenge = {
        "WWW-Authenticate": f'Bearer realm="{server.url}/token",service="loopback",'
        'scope="repository:charts/tinychart:pull"'
    }
    auth = f"Bearer {TOKEN}"
    server.routes["/token"] = Route(body=json.dumps({"token": TOKEN}).encode())
    server.routes["/v2/charts/tinychart/manifests/0.1.0"] = Route(
        body=json.dumps(manifest).encode(), require_auth=auth, headers=challenge
    )
    server.routes[f"/v2/charts/tinychart/blobs/sha256:{digest}"] = Route(
        body=chart, require_auth=auth, headers=challenge
    )


@pytest.fixture
def bundled(tmp_path, upstream, helm):
    with Loopback() as server:
        artifacts = serve(server, upstream, helm)
        dest = tmp_path / "bundle"
        store = ArtifactStore(dest, artifacts=artifacts, reporter=Silent(), policy=FAST)
        started = time.monotonic()
        manifest = run_bundle(dest, images=False, say=lambda _t: None, store=store)
        seconds = time.monotonic() - started
        yield {"dest": dest, "artifacts": artifacts, "manifest": manifest, "seconds": seconds, "server": server}


@pytest.fixture
def no_network(monkeypatch):
    """Every socket connect (TCP, UDP, unix) fails and is recorded."""
    attempts = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def test_bundle_writes_verified_files_and_a_versioned_manifest(bundled) -> None:
    manifest, dest = bundled["manifest"], bundled["dest"]
    assert manifest["format"] == "affordml-bundle" and manifest["format_version"] == 1 and manifest["lock"]
    on_disk = json.loads((dest / "manifest.json").read_text())
    assert on_disk == manifest
    assert [e["name"] for e in manifest["artifacts"]] == list(bundled["artifacts"])
    for entry in manifest["artifacts"]:
        path = dest / entry["file"]
        assert entry["size"] == path.stat().st_size > 0
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry["version"] == bundled["artifacts"][entry["name"]].version
        assert entry["evidence"] is None or (dest / entry["evidence"]).is_file()
    total = sum(e["size"] for e in manifest["artifacts"])
    print(f"\nFIGURE bundle: {len(manifest['artifacts'])} artifacts, {total} bytes, {bundled['seconds']:.2f} s")


def test_bundle_rerun_downloads_nothing(bundled) -> None:
    before = len(bundled["server"].log)
    store = ArtifactStore(bundled["dest"], artifacts=bundled["artifacts"], reporter=Silent(), policy=FAST)
    run_bundle(bundled["dest"], images=False, say=lambda _t: None, store=store)
    assert len(bundled["server"].log) == before


def test_mirror_fetch_opens_no_socket(bundled, tmp_path, no_network) -> None:
    bundled["server"].server.shutdown()  # nothing listens any more, and connecting is refused anyway
    store = ArtifactStore(
        tmp_path / "cache", bundled["dest"], artifacts=bundled["artifacts"], reporter=Silent(), policy=FAST
    )
    started = time.monotonic()
    paths = [store.fetch(name) for name in store.names()]
    seconds = time.monotonic() - started
    assert no_network == [], f"the mirror path opened sockets: {no_network}"
    for entry, path in zip(bundled["manifest"]["artifacts"], paths, strict=True):
        assert path == tmp_path / "cache" / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    print(f"\nFIGURE mirror: {len(paths)} artifacts copied and verified in {seconds:.2f} s, 0 sockets")


def test_mirror_missing_artifact_names_it_and_the_fix(bundled, tmp_path, no_network) -> None:
    shutil.rmtree(bundled["dest"] / "chart" / "tinychart")
    store = ArtifactStore(tmp_path / "c", bundled["dest"], artifacts=bundled["artifacts"], reporter=Silent())
    assert store.fetch("helm").is_file()
    with pytest.raises(ArtifactError) as caught:
        store.fetch("chart/tinychart")
    line = caught.value.one_line()
    assert "chart/tinychart 0.1.0 is not in the mirror" in line and "affordml bundle" in line and "\n" not in line
    assert no_network == []


def test_mirror_tampered_file_is_refused(bundled, tmp_path) -> None:
    (bundled["dest"] / "spray" / "spray-v1.tar.gz").write_bytes(b"not the archive")
    store = ArtifactStore(tmp_path / "c", bundled["dest"], artifacts=bundled["artifacts"], reporter=Silent())
    with pytest.raises(ArtifactError) as caught:
        store.fetch("spray")
    assert "does not match the sha256" in caught.value.one_line() and "affordml bundle" in caught.value.one_line()
    assert not list((tmp_path / "c" / "spray").iterdir())


def test_mirror_with_forged_manifest_still_fails_the_upstream_check(bundled, tmp_path) -> None:
    """Replace the chart and fix up manifest.json: helm's index.yaml digest beside it still catches it."""
    dest = bundled["dest"]
    forged = dest / "chart" / "tinychart" / "tinychart-0.1.0.tgz"
    forged.write_bytes(bundled["dest"].joinpath("spray", "spray-v1.tar.gz").read_bytes())
    manifest = json.loads((dest / "manifest.json").read_text())
    for entry in manifest["artifacts"]:
        if entry["name"] == "chart/tinychart":
            entry["sha256"] = hashlib.sha256(forged.read_bytes()).hexdigest()
    (dest / "manifest.json").write_text(json.dumps(manifest))
    store = ArtifactStore(tmp_path / "c", dest, artifacts=bundled["artifacts"], reporter=Silent())
    with pytest.raises(ArtifactError) as caught:
        store.fetch("chart/tinychart")
    assert "deleted, not used" in caught.value.one_line()
    assert not (tmp_path / "c" / "chart" / "tinychart" / "tinychart-0.1.0.tgz").exists()


def test_chart_index_digest_mismatch_is_refused(tmp_path, upstream, helm) -> None:
    with Loopback() as server:
        artifacts = serve(server, upstream, helm)
        index = server.routes["/charts/index.yaml"]
        real = hashlib.sha256(upstream["chart"]).hexdigest()
        assert real.encode() in index.body, "helm repo index records the sha256 of the package as its digest"
        index.body = index.body.replace(real.encode(), b"f" * 64)
        store = ArtifactStore(tmp_path, artifacts=artifacts, reporter=Silent(), policy=FAST)
        with pytest.raises(ArtifactError, match="sha256"):
            store.fetch("chart/tinychart")
        assert not list((tmp_path / "chart" / "tinychart").glob("tinychart-0.1.0.tgz*"))


def test_oci_chart_uses_the_token_and_the_manifest_digest(tmp_path, upstream, helm) -> None:
    with Loopback() as server:
        artifacts = serve(server, upstream, helm)
        path = ArtifactStore(tmp_path, artifacts=artifacts, reporter=Silent(), policy=FAST).fetch("chart/tiny-oci")
        assert path.read_bytes() == upstream["chart"]
        assert "/token?service=loopback&scope=repository%3Acharts%2Ftinychart%3Apull" in server.paths_requested()
    done = subprocess.run([helm, "show", "chart", path], capture_output=True, text=True)
    assert done.returncode == 0 and "name: tinychart" in done.stdout


def test_images_need_a_tool(bundled) -> None:
    with pytest.raises(ArtifactError) as caught:
        store = ArtifactStore(bundled["dest"], artifacts=bundled["artifacts"], reporter=Silent(), policy=FAST)
        run_bundle(bundled["dest"], images=True, say=lambda _t: None, store=store, which=lambda _name: None)
    assert "needs skopeo or docker" in caught.value.one_line() and "apt-get install skopeo" in caught.value.one_line()


def test_images_saved_with_the_tool_found(bundled, tmp_path) -> None:
    """A stand-in `skopeo` (no registry is reachable here) shows the calls made and the manifest entries."""
    fake = tmp_path / "skopeo"
    script = ["#!/bin/sh", 'echo "$@" >> "$(dirname "$0")/calls"', 'out="${5#docker-archive:}"']
    fake.write_text("\n".join([*script, 'printf archive > "${out%%:*}"', ""]))
    fake.chmod(0o755)
    store = ArtifactStore(bundled["dest"], artifacts=bundled["artifacts"], reporter=Silent(), policy=FAST)
    which = {"skopeo": str(fake)}.get
    manifest = run_bundle(bundled["dest"], images=True, say=lambda _t: None, store=store, which=which)
    assert manifest["images"] == [
        {
            "image": "example.org/tiny/app:0.1.0",
            "for": "chart/tinychart",
            "file": "images/example.org_tiny_app_0.1.0.tar",
            "sha256": hashlib.sha256(b"archive").hexdigest(),
            "size": 7,
        }
    ]
    calls = (tmp_path / "calls").read_text().split()
    assert calls[:4] == ["copy", "--retry-times", "3", "docker://example.org/tiny/app:0.1.0"]
