"""The post-renderer plugin that keeps a release's CRDs (and so the users' objects) when the release is removed:
written into helm's own plugin folder in the project (helm reads it from there; nothing is installed system-wide)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

PLUGIN = "affordml-keep-crds"
SCRIPT = Path(__file__).with_name("keep_crds_plugin") / "keep_crds.py"


def plugin_manifest() -> dict:
    return {
        "apiVersion": "v1",
        "type": "postrenderer/v1",
        "name": PLUGIN,
        "version": "1.0.0",
        "runtime": "subprocess",
        "runtimeConfig": {"platformCommand": [{"command": sys.executable, "args": [str(SCRIPT)]}]},
    }


def ensure_plugin(home: Path) -> Path:
    """HELM_DATA_HOME (home/data)/plugins/affordml-keep-crds/plugin.yaml, rewritten when it differs (another
    interpreter runs affordml now)."""
    from affordml.safefile import read_text, write_text

    rel = Path("data") / "plugins" / PLUGIN / "plugin.yaml"
    text = yaml.safe_dump(plugin_manifest(), sort_keys=False)
    if read_text(home, rel) != text:
        write_text(home, rel, text)
    return home / rel.parent
