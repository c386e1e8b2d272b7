"""A release as data: what to install, from which pinned chart archive, with which values files, in which order."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from affordml.artifacts.verify import sha256_file

STAMP_PREFIX = "affordml stamp "  # the release description carries the stamp; `helm history` shows it


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    chart: str  # artifact name in the version lock, e.g. "chart/gpu-operator"
    values: tuple[str, ...] = ()  # paths relative to env/, applied in this order
    chart_subdir: str = ""  # a chart inside the archive (e.g. "charts/crds"); empty: the archive's chart itself
    no_hooks: bool = False  # hooks whose Jobs never finish without a kubelet serving them
    timeout_s: int = 600
    fix_hint: str = ""  # what to tell the user when the release does not become ready
    wait_on_removal: bool = True  # False: an object the cluster re-creates itself would keep `uninstall --wait` busy
    # folders of CRD files in the chart that helm installs once and never upgrades (a chart's crds/, also a
    # subchart's): the phase applies them from the chart it is about to install, before every install or upgrade
    crd_folders: tuple[str, ...] = ()
    # the chart's templated CRDs carry `helm.sh/resource-policy: keep` (post-renderer, affordml.helm.keep): removing
    # the release leaves them, and with them the users' objects; `destroy --delete-data` deletes them
    keep_crds: bool = False


@dataclass(frozen=True)
class ReleaseStamp:
    """What decides whether a deployed release is already what we want."""

    chart_sha256: str
    values: dict = field(default_factory=dict)  # the merged values files (what `helm get values -o json` returns)

    @property
    def digest(self) -> str:
        text = json.dumps({"chart": self.chart_sha256, "values": self.values}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def description(self) -> str:
        return f"{STAMP_PREFIX}{self.digest}"


def merged_values(files: list[Path]) -> dict:
    """The values files merged as Helm merges them: later files win, mappings merge key by key."""
    merged: dict = {}
    for path in files:
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: values must be a mapping, not {type(data).__name__}")
        merged = _merge(merged, data)
    return merged


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def release_stamp(
    chart_archive: Path, chart_subdir: str, values_files: list[Path], keep_crds: bool = False
) -> ReleaseStamp:
    """keep_crds is part of what is deployed: a release installed before it was set is upgraded once."""
    chart = sha256_file(chart_archive) + (f":{chart_subdir}" if chart_subdir else "") + (":keep-crds" * keep_crds)
    return ReleaseStamp(chart, merged_values(values_files))
