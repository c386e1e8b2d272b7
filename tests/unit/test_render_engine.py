"""The renderer's contract: StrictUndefined fails with one line naming the value, env/ is replaced whole, the stamp
holds the version and plan hash, and the same plan renders the same bytes."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from affordml import __version__
from affordml.config.model import Config
from affordml.errors import ConfigError
from affordml.facts.parse import facts_from_snapshot
from affordml.facts.sources import load_snapshot_file
from affordml.plan.build import make_plan
from affordml.project import Project
from affordml.render.context import build_context, plan_hash
from affordml.render.engine import OUTPUTS, STAMP, read_stamp, render_files, write_env
from affordml.render.project import render_project
from affordml.resources import data_dir
from affordml.versions import load_lock, version_table

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hardware"


def _plan(fixture: str = "desktop-rtx4090", **config):
    facts = facts_from_snapshot(load_snapshot_file(FIXTURES / f"{fixture}.json"))
    cfg = Config.model_validate({"hosts": [{"name": facts.hostname}], **config})
    return make_plan(facts, cfg, version_table(load_lock())), cfg


@pytest.fixture
def context():
    plan, cfg = _plan()
    return build_context(plan, cfg, load_lock())


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------ StrictUndefined


@pytest.mark.parametrize(
    ("expression", "name"),
    [("{{ no_such_value }}", "no_such_value"), ("{{ kube.no_such_field }}", "no_such_field")],
)
def test_a_missing_value_is_a_one_line_config_error_naming_it(context, tmp_path, expression, name):
    templates = tmp_path / "templates"
    shutil.copytree(data_dir("templates"), templates)
    target = templates / "kubespray" / "addons.yml.j2"
    target.write_text(target.read_text() + f"broken: {expression}\n")
    with pytest.raises(ConfigError) as caught:
        render_files(context, templates)
    line = caught.value.one_line()
    assert "\n" not in line
    assert name in line and "kubespray/addons.yml.j2" in line, line
    assert caught.value.fix


def test_a_missing_value_in_a_loop_body_is_caught_too(context, tmp_path):
    templates = tmp_path / "templates"
    shutil.copytree(data_dir("templates"), templates)
    target = templates / "kubespray" / "inventory.yml.j2"
    target.write_text(target.read_text().replace("{{ vm.address | quote }}", "{{ vm.ipv4 | quote }}", 1))
    with pytest.raises(ConfigError, match="ipv4"):
        render_files(context, templates)


def test_the_shipped_templates_render_with_the_real_context(context):
    files = render_files(context)
    applicable = [o for o in OUTPUTS if o.when in {"always", "gpu", "jupyterhub", "training_queue"}]
    assert {o.target for o in applicable} <= set(files)
    assert not any("Undefined" in text for text in files.values())


def test_every_template_file_is_an_output():
    shipped = {p.relative_to(data_dir("templates")).as_posix() for p in data_dir("templates").rglob("*.j2")}
    assert shipped == {o.template for o in OUTPUTS}


# ------------------------------------------------------------------------------------------ env/ swapped in whole


def test_env_is_replaced_whole_and_a_stale_file_disappears(context, tmp_path):
    env_dir = tmp_path / "project" / "env"
    stamp = "affordml_version: '0.0'\nplan_hash: old\nfiles: []\n"
    write_env(env_dir, {"old/only-in-old.yml": "a: 1\n", "kolla/globals.yml": "old\n", STAMP: stamp})
    (env_dir / "hand-made.txt").write_text("edited by hand\n")
    files = render_files(context)
    write_env(env_dir, files)
    assert _tree(env_dir) == {rel: text.encode() for rel, text in files.items()}
    assert not (env_dir / "old").exists() and not (env_dir / "hand-made.txt").exists()
    assert sorted(p.name for p in env_dir.parent.iterdir()) == ["env"], "staging or .old folders were left behind"


def test_a_cpu_only_render_drops_the_gpu_files_of_an_earlier_render(tmp_path):
    project = Project(tmp_path)
    plan, cfg = _plan()
    render_project(project, plan, cfg, load_lock())
    assert (project.env_dir / "gpu" / "device-plugin-config.yaml").exists()
    plan, cfg = _plan(gpu={"exclude": ["0000:01:00.0"]})
    files = render_project(project, plan, cfg, load_lock())
    assert not (project.env_dir / "gpu").exists()
    assert not (project.env_dir / "kolla" / "config").exists()
    assert set(_tree(project.env_dir)) == set(files)


# ------------------------------------------------------------------------------------------ stamp


def test_the_stamp_holds_version_plan_hash_and_files(tmp_path):
    plan, cfg = _plan()
    project = Project(tmp_path)
    files = render_project(project, plan, cfg, load_lock())
    stamp = read_stamp(project.env_dir)
    assert stamp == {
        "affordml_version": __version__,
        "plan_hash": plan_hash(plan),
        "files": sorted(set(files) - {STAMP}),
    }
    assert len(stamp["plan_hash"]) == 16 and int(stamp["plan_hash"], 16) >= 0
    for rel, text in files.items():
        if rel != STAMP and rel.endswith((".yml", ".yaml", ".conf")):
            assert f"plan {stamp['plan_hash']}" in text.splitlines()[0] + text.splitlines()[1], rel


def test_the_plan_hash_follows_the_plan():
    first, _ = _plan()
    same, _ = _plan()
    other, _ = _plan(gpu={"sharing": {"mode": "time-slicing", "replicas": 3}})
    assert plan_hash(first) == plan_hash(same)
    assert plan_hash(first) != plan_hash(other)


def test_read_stamp_of_a_missing_or_damaged_env(tmp_path):
    assert read_stamp(tmp_path / "nothing") is None
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / STAMP).write_text("a: [unclosed\n")
    assert read_stamp(tmp_path / "env") is None


# ------------------------------------------------------------------------------------------ deterministic


def test_rendering_twice_gives_identical_bytes(tmp_path):
    plan, cfg = _plan("workstation-2gpu")
    first = Project(tmp_path / "a")
    second = Project(tmp_path / "b")
    render_project(first, plan, cfg, load_lock())
    render_project(second, copy.deepcopy(plan), cfg.model_copy(deep=True), copy.deepcopy(load_lock()))
    render_project(first, plan, cfg, load_lock())  # again over the first: same bytes
    assert _tree(first.env_dir) == _tree(second.env_dir)
    again = render_files(build_context(*_plan("workstation-2gpu"), load_lock()))
    assert {rel: text.encode() for rel, text in again.items()} == _tree(first.env_dir)
    assert yaml.safe_load(again[STAMP])["plan_hash"] == plan_hash(plan)
