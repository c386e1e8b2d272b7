"""The guest image cache in the project folder: downloaded (from a loopback HTTP server here) through a fresh
temporary file, checked against SHA256SUMS before it is kept, never written through or read from a planted link."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from affordml.cloud.faults import ImageUploadFailed
from affordml.cloud.image import download
from affordml.errors import UnsafeFile
from affordml.project import Project

IMAGE = b"QFI\xfb" + b"x" * 5000


@pytest.fixture
def server(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "guest.img").write_bytes(IMAGE)
    (site / "SHA256SUMS").write_text(f"{hashlib.sha256(IMAGE).hexdigest()} *guest.img\n")
    (site / "BADSUMS").write_text(f"{'0' * 64} *guest.img\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(site), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    root.mkdir(mode=0o700)
    return Project(root)


def test_download_is_checked_and_kept(server, project):
    path = download(project, f"{server}/guest.img", f"{server}/SHA256SUMS")
    assert path.read_bytes() == IMAGE and (path.stat().st_mode & 0o777) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["guest.img"]  # no temporary file left


def test_a_mismatching_download_is_not_kept(server, project):
    with pytest.raises(ImageUploadFailed, match="does not match"):
        download(project, f"{server}/guest.img", f"{server}/BADSUMS")
    assert list((project.root / "cache" / "images").iterdir()) == []


def test_a_planted_link_in_the_cache_is_neither_read_nor_written(server, project, tmp_path):
    outside = tmp_path / "outside.img"
    outside.write_bytes(b"secret data elsewhere")
    cache = project.root / "cache" / "images"
    cache.mkdir(parents=True, mode=0o700)
    (cache / "guest.img").symlink_to(outside)
    with pytest.raises(UnsafeFile, match="symbolic link"):
        download(project, f"{server}/guest.img", None)
    assert outside.read_bytes() == b"secret data elsewhere"


def test_a_symlinked_cache_folder_is_refused(server, project, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project.root / "cache").symlink_to(elsewhere)
    with pytest.raises(UnsafeFile, match="cache is a symbolic link"):
        download(project, f"{server}/guest.img", None)
    assert list(elsewhere.iterdir()) == []
