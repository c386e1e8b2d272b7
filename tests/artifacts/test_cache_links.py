"""The artifact cache never writes through links: a planted hard link as the download's .part is refused before
anything is truncated, and a cache inside the project folder is made without following a linked folder."""

from __future__ import annotations

import pytest

from affordml.artifacts.project_store import project_store
from affordml.errors import UnsafeFile
from tests.artifacts.test_store import TARBALL, serve_helm, store_for

SENTINEL = b"short"  # shorter than the body: the download resumes after it (Range), appending


@pytest.fixture
def server():
    from tests.artifacts.loopback import Loopback

    with Loopback() as loop:
        yield loop


def test_a_hard_linked_part_file_is_refused_and_its_other_name_kept(tmp_path, server):
    serve_helm(server, b"x" * 4096)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(SENTINEL)
    store = store_for(tmp_path, server)
    folder = store.path("helm").parent
    folder.mkdir(parents=True)
    (folder / f"{TARBALL}.part").hardlink_to(outside)
    with pytest.raises(UnsafeFile, match="hard links"):
        store.fetch("helm")
    assert outside.read_bytes() == SENTINEL


def test_a_linked_cache_folder_inside_the_project_is_refused(tmp_path):
    root = tmp_path / "project"
    root.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "cache").symlink_to(elsewhere)
    store = project_store(root)
    with pytest.raises(UnsafeFile, match="cache is a symbolic link"):
        store.fetch(store.names()[0])
    assert list(elsewhere.iterdir()) == []
