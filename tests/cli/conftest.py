"""Run the real `affordml` console script as a subprocess, in a throw-away project folder."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hardware"


def console_script() -> list[str]:
    """The installed entry point next to this interpreter (not a pyenv shim), else `python -m affordml`."""
    script = Path(sys.executable).parent / "affordml"
    return [str(script)] if script.exists() else [sys.executable, "-m", "affordml"]


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


@pytest.fixture
def cli(tmp_path):
    """cli("plan", "--facts", F, env={...}) -> Result; --project-dir is a fresh folder, HOME too."""
    project = tmp_path / "project"
    home = tmp_path / "home"
    home.mkdir()

    def run(*args: str, env: dict[str, str] | None = None, project_dir: Path | None = project) -> Result:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("AFFORDML_")}
        environ.update({"HOME": str(home), "COLUMNS": "160", "NO_COLOR": "1", **(env or {})})
        head = ["--project-dir", str(project_dir)] if project_dir is not None else []
        done = subprocess.run(
            [*console_script(), *head, *map(str, args)], capture_output=True, text=True, env=environ, timeout=120
        )
        return Result(done.returncode, done.stdout, done.stderr)

    run.project = project
    return run
