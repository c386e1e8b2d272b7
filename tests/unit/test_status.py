"""`affordml status` reads the project through the same readers the run uses (state file, env stamp)."""

from __future__ import annotations

from affordml.phases.state import State, save_state
from affordml.project import Project
from affordml.render.engine import STAMP
from affordml.status import project_status


def test_status_of_a_new_project(tmp_path):
    data = project_status(Project(tmp_path), query_cloud=False)
    assert data["env"] == "not rendered" and data["phases"] == "nothing has run yet"
    assert data["cloud"]["servers"] == []


def test_status_shows_phases_and_the_rendered_env(tmp_path):
    project = Project(tmp_path)
    state = State()
    state.phase("host").status = "done"
    save_state(project.state_file, state)
    project.env_dir.mkdir()
    (project.env_dir / STAMP).write_text("affordml_version: 9.9\nplan_hash: abc123\nfiles: []\n")
    data = project_status(project, query_cloud=False)
    assert data["phases"]["host"]["status"] == "done"
    assert data["env"] == "rendered by affordml 9.9 for plan abc123"


def test_unreadable_state_is_reported_with_its_fix(tmp_path):
    project = Project(tmp_path)
    project.state_file.write_text("{broken")
    data = project_status(project, query_cloud=False)
    assert "is unreadable" in data["phases"] and "fix: move it aside" in data["phases"]


def test_a_malformed_env_stamp_is_reported_not_a_crash(tmp_path):
    project = Project(tmp_path)
    project.env_dir.mkdir()
    for text in ("- a list\n", "affordml_version: [1]\nplan_hash: x\n", "plan_hash: abc\n", "{unclosed\n", ""):
        (project.env_dir / STAMP).write_text(text)
        data = project_status(project, query_cloud=False)
        assert "no valid affordml stamp" in data["env"], text
