"""The host role's deploy order where order is the fix: docker's configuration exists before any package step
can start docker (apt starts it right after installing it; a first start with docker's defaults sets the
iptables FORWARD policy to DROP, and a later restart with "iptables": false does not undo it)."""

from __future__ import annotations

from pathlib import Path

import yaml

TASKS = Path(__file__).resolve().parents[2] / "playbooks" / "roles" / "host" / "tasks"


def included_files() -> list[str]:
    steps = yaml.safe_load((TASKS / "deploy.yml").read_text())
    return [step["ansible.builtin.include_tasks"] for step in steps if "ansible.builtin.include_tasks" in step]


def test_docker_is_configured_before_packages_are_installed():
    files = included_files()
    assert files.index("0005-docker-config.yml") < files.index("0010-packages.yml") < files.index("0060-docker.yml")
    config = yaml.safe_load((TASKS / "0005-docker-config.yml").read_text())
    written = next(
        task for task in config if task.get("ansible.builtin.copy", {}).get("dest") == "/etc/docker/daemon.json"
    )
    assert written["vars"]["host_docker_config"]["iptables"] is False


def test_no_step_before_the_docker_configuration_installs_or_starts_docker():
    files = included_files()
    for name in files[: files.index("0005-docker-config.yml")]:
        text = (TASKS / name).read_text()
        assert "ansible.builtin.apt" not in text and "docker" not in text, name
