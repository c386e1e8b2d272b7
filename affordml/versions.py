"""The tested version set shipped with the package (affordml/versions.yaml)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml

from affordml.errors import ConfigError


@lru_cache(maxsize=1)
def load_lock() -> dict:
    text = resources.files("affordml").joinpath("versions.yaml").read_text()
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError("affordml/versions.yaml is damaged", "reinstall affordml")
    return data


def components(lock: dict) -> dict[str, dict]:
    """Every component entry: a mapping with at least a version."""
    return {name: entry for name, entry in lock.items() if isinstance(entry, dict) and "version" in entry}


def version_table(lock: dict) -> dict[str, str]:
    return {name: str(entry["version"]) for name, entry in components(lock).items()}
