"""The built wheel carries its templates, playbooks and sample facts: installed away from the source tree, it plans
and renders without them (what `pipx install .` gives a user)."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtualenv with only the wheel installed in it; its dependencies come from this Python's site-packages."""
    root = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if built.returncode != 0:
        pytest.skip(f"could not build the wheel (needs hatchling from PyPI): {built.stderr.strip()[-300:]}")
    env = root / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env)
    wheel = next((root / "dist").glob("affordml-*.whl"))
    subprocess.run(
        [str(env / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return env


def run(env: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(env / "bin" / "affordml"), "-p", str(cwd / "project"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_installed_wheel_plans_from_its_own_data(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import affordml, affordml.resources as r; "
            "print(affordml.__file__); print(r.data_dir('playbooks')); print(r.data_dir('templates'))",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout.split()
    assert all(str(REPO) not in line for line in where), where  # nothing comes from the source tree
    plan = run(installed, "plan", "--example", "desktop-rtx4090", "--json", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["gpus"][0]["sharing"]["mode"] == "mps"
    assert (Path(where[1]) / "site.yml").is_file()
    rendered = subprocess.run(
        [str(installed / "bin" / "python"), "-c", RENDER_EXAMPLE],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert "kolla/globals.yml" in rendered.stdout.split() and "gpu/device-plugin-config.yaml" in rendered.stdout.split()


RENDER_EXAMPLE = r"""
from affordml.config.model import Config
from affordml.facts.parse import facts_from_snapshot
from affordml.facts.sources import load_snapshot_file
from affordml.plan.build import make_plan
from affordml.render.context import build_context
from affordml.render.engine import render_files
from affordml.resources import data_dir
from affordml.versions import load_lock, version_table
facts = facts_from_snapshot(load_snapshot_file(data_dir("inventories") / "examples" / "desktop-rtx4090.json"))
lock = load_lock()
plan = make_plan(facts, Config(), version_table(lock))
print("\n".join(render_files(build_context(plan, Config(), lock))))
"""
