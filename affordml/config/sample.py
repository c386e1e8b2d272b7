"""A commented affordml.yaml that shows every default, generated from the typed models themselves."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from affordml.config.model import Config
from affordml.errors import ConfigError

HEADER = """\
# affordml.yaml: what affordml builds on this PC.
# Every line below is commented out and shows the default. Uncomment and change only what you need:
# only the values you set are yours; the rest follow affordml's defaults, also after an upgrade.
# Environment overrides: AFFORDML_<SECTION>__<KEY>=value, e.g. AFFORDML_GPU__SHARING__MODE=mps
"""

SHARING_HELP = """\
##  sharing modes (gpu.sharing.mode, or per GPU in gpu.per_gpu):
##    auto          MIG on MIG-capable cards (A30/A100/H100/H200), else MPS sized by GPU memory
##    exclusive     one job holds the GPU (best when a job fills it)
##    time-slicing  replicas: N   jobs take turns; no memory isolation
##    mps           clients: N    jobs run together; memory split evenly and enforced
##    mig           layout: NAME  hardware slices, e.g. all-balanced, all-1g.10gb
##    hami          split: N, memory_percent: P, cores_percent: P   per-job limits by HAMi
"""


class _SampleDumper(yaml.SafeDumper):
    """Lists of plain values on one line (`days: [mon, tue]`), so that each one is a key line to uncomment."""


_SampleDumper.add_representer(
    list,
    lambda dumper, data: dumper.represent_sequence(
        "tag:yaml.org,2002:seq", data, flow_style=all(not isinstance(x, dict | list) for x in data)
    ),
)


def sample_text() -> str:
    lines = [HEADER]
    defaults = Config().model_dump(mode="json")
    for name, field in Config.model_fields.items():
        lines.append(f"\n# --- {name}: {field.description}")
        if name == "gpu":
            lines.append(SHARING_HELP.rstrip("\n"))
        block = yaml.dump(
            {name: defaults[name]}, Dumper=_SampleDumper, sort_keys=False, default_flow_style=False
        ).rstrip("\n")
        lines += [_with_comment("# " + text, name, text) for text in block.split("\n")]
    return "\n".join(lines) + "\n"


_FIELD_HELP: dict[str, str] = {}


def _field_help() -> dict[str, str]:
    if not _FIELD_HELP:
        from affordml.config import model

        for cls in (model.Host, model.Network, model.NodeGroup, model.Gpu, model.Ml, model.AfterHours):
            for key, field in cls.model_fields.items():
                if field.description:
                    _FIELD_HELP.setdefault(key, field.description)
    return _FIELD_HELP


def _with_comment(text: str, section: str, raw: str) -> str:
    key = raw.strip().lstrip("- ").split(":", 1)[0]
    help_text = _field_help().get(key)
    return f"{text:<44} # {help_text}" if help_text and ":" in raw else text


def write_sample(path: Path, force: bool = False) -> tuple[Path, Path | None]:
    """Write the sample; an existing file is kept unless --force, and then kept under the next free
    numbered name (affordml.yaml.bak.1, .bak.2, ...), so that no run of --force ever loses a file."""
    from affordml import safefile

    root = path.parent
    safefile.check_root(root, create=True)
    backup = None
    if os.path.lexists(path):
        if not force:
            raise ConfigError(
                f"{path} exists already; it was left as it is",
                f"edit it, or run `affordml config init --force` (the old file is kept as {path.name}.bak.N)",
            )
        backup = safefile.backup_name(root, path.name)
    safefile.write_text(root, path.name, sample_text(), 0o600, replace_links=True)
    return path, backup
