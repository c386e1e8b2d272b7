"""Render a project's env/ for a plan."""

from __future__ import annotations

from affordml.config.model import Config
from affordml.plan.model import Plan
from affordml.project import Project
from affordml.render.context import build_context
from affordml.render.engine import render_files, write_env


def render_project(project: Project, plan: Plan, config: Config, lock: dict) -> dict[str, str]:
    files = render_files(build_context(plan, config, lock))
    write_env(project.env_dir, files)
    return files
