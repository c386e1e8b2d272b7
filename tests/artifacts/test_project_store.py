"""Which cache and mirror a project uses, and the plain progress lines."""

from __future__ import annotations

import io
from pathlib import Path

from affordml.artifacts.progress import PlainLines
from affordml.artifacts.project_store import project_store
from affordml.config.model import Config


def test_defaults_to_the_project_cache_and_no_mirror(tmp_path) -> None:
    store = project_store(tmp_path, Config())
    assert store.cache_dir == tmp_path / "cache" / "artifacts" and store.mirror is None


def test_config_key_relative_to_the_project_and_option_wins(tmp_path) -> None:
    config = Config.model_validate({"artifacts": {"mirror": "bundle", "cache_dir": "~/shared-cache"}})
    store = project_store(tmp_path, config)
    assert store.mirror == tmp_path / "bundle"
    assert store.cache_dir == Path("~/shared-cache").expanduser()
    assert project_store(tmp_path, config, Path("/media/usb/b")).mirror == Path("/media/usb/b")


def test_phase_context_store_uses_the_init_option(tmp_path) -> None:
    from affordml.phases.workflow import PhaseContext
    from affordml.project import Project

    ctx = PhaseContext(Project(tmp_path), Config(), None, {}, None, print, mirror=tmp_path / "usb")
    assert ctx.artifact_store().mirror == tmp_path / "usb"


def test_plain_lines_name_source_size_and_time() -> None:
    stream = io.StringIO()
    reporter = PlainLines(stream, every_s=0.0)
    reporter.start("helm", "http://127.0.0.1/x.tgz", 4 * 1024**2, 1024**2)
    reporter.advance(3 * 1024**2)
    reporter.finish()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "helm: from http://127.0.0.1/x.tgz (resuming at 1.0 MiB)"
    assert lines[1] == "helm: 4.0 MiB of 4.0 MiB"
    assert lines[2].startswith("helm: 4.0 MiB of 4.0 MiB in ") and lines[2].endswith(" s")


def test_cloud_phase_takes_the_lock_image_from_the_mirror_offline(tmp_path, monkeypatch) -> None:
    """The real lock entry `guest-image`, a hand-made bundle (image + SHA256SUMS + manifest), sockets refused."""
    import hashlib
    import json
    import socket

    from affordml.artifacts.lock import lock_artifacts
    from affordml.cloud.carve import CloudOptions
    from affordml.cloud.phase import _image_file
    from affordml.phases.workflow import PhaseContext
    from affordml.project import Project
    from affordml.versions import load_lock

    image = lock_artifacts()["guest-image"]
    mirror = tmp_path / "usb"
    (mirror / "guest-image").mkdir(parents=True)
    body = b"QFI\xfb" + b"\0" * 4096
    (mirror / "guest-image" / image.file).write_bytes(body)
    digest = hashlib.sha256(body).hexdigest()
    (mirror / "guest-image" / "SHA256SUMS").write_text(f"{'1' * 64} *other.img\n{digest} *{image.file}\n")
    entry = {"name": "guest-image", "version": image.version, "sha256": digest, "size": len(body)}
    manifest = {"format": "affordml-bundle", "format_version": 1, "artifacts": [entry]}
    (mirror / "manifest.json").write_text(json.dumps(manifest))

    def refuse(self, address, *args):
        raise AssertionError(f"socket opened to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    said = []
    ctx = PhaseContext(Project(tmp_path / "p"), Config(), None, load_lock(), None, said.append, mirror=mirror)
    path = _image_file(ctx, CloudOptions(image=None))
    assert path == tmp_path / "p" / "cache" / "artifacts" / "guest-image" / image.file
    assert path.read_bytes() == body and said == [f"[cloud] guest image from {mirror}"]
