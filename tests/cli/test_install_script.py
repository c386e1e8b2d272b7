"""README's install command on the system Python of a Debian/Ubuntu machine (PEP 668: externally managed).

`scripts/install` must give a working `affordml` where `python3 -m pip install .` is refused. Slow (a real pip
install of affordml and its dependencies into a fresh virtualenv), so it runs once."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")


def _externally_managed(python: Path) -> bool:
    code = "import os, sysconfig; print(os.path.exists(sysconfig.get_path('stdlib') + '/EXTERNALLY-MANAGED'))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return done.stdout.strip() == "True"


@pytest.mark.slow
def test_install_script_works_where_pip_is_refused(tmp_path):
    if not SYSTEM_PYTHON.exists() or not _externally_managed(SYSTEM_PYTHON):
        pytest.skip("no externally managed system python3 (PEP 668) on this machine")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "PYTHON": str(SYSTEM_PYTHON),
        "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")),
    }
    install = ["sh", str(REPO / "scripts" / "install")]
    done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr
    command = home / ".local" / "bin" / "affordml"
    assert command.is_symlink() and command.resolve().is_relative_to(home / ".local" / "share" / "affordml" / "venv")
    assert "PATH" in done.stdout  # ~/.local/bin is not on this PATH: the script says how to add it

    plan = subprocess.run(
        [str(command), "--project-dir", str(tmp_path / "p"), "plan", "--example", "desktop-rtx4090"],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "160", "NO_COLOR": "1"},
        timeout=120,
    )
    assert plan.returncode == 0, plan.stderr
    assert "worker-1" in plan.stdout


def test_install_script_names_a_missing_python(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHON": "python3-that-does-not-exist"}
    done = subprocess.run(["sh", str(REPO / "scripts" / "install")], capture_output=True, text=True, env=env)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "fix: sudo apt install python3" in done.stderr
