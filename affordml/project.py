"""The project folder: the user's config, saved facts, rendered env/, run state, logs and secrets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CONFIG_NAME = "affordml.yaml"


def default_project_dir() -> Path:
    return Path(os.environ.get("AFFORDML_HOME") or Path.home() / ".affordml")


@dataclass(frozen=True)
class Project:
    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def facts_file(self) -> Path:
        return self.root / "facts.json"

    @property
    def env_dir(self) -> Path:
        return self.root / "env"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def lock_file(self) -> Path:
        return self.root / "run.lock"

    def check(self, create: bool = False) -> Project:
        """Refuse a project folder that is a link, a file, someone else's or open to group/others; with
        create, make a missing one (mode 0700)."""
        from affordml.safefile import check_root

        check_root(self.root, create)
        return self

    def refuse_non_folder(self) -> None:
        """For every command: -p must name a folder (or nothing yet), never a link or a file."""
        from affordml.safefile import refuse_link_or_file

        refuse_link_or_file(self.root)
