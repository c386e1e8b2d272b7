"""Where the shipped playbooks, templates and inventories live: inside the wheel, or beside the package in a
source checkout (editable install)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """playbooks | templates | inventories."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"affordml's {name} folder is missing from the installation; reinstall affordml")
