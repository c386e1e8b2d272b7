"""The `affordml` command line, run as the real console script in a subprocess."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from affordml.artifacts.lock import lock_artifacts
from affordml.config.load import load_config
from affordml.config.model import Config
from affordml.facts.parse import facts_from_snapshot
from affordml.facts.sources import load_snapshot_file
from affordml.plan.build import make_plan
from affordml.plan.checks import plan_feasibility, run_checks
from affordml.versions import load_lock, version_table

from .conftest import FIXTURES

KEY_LINE = re.compile(r"^\s*(- )?[a-z0-9_]+:( |$)")
FIXTURE_NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))
PLANNABLE = {
    "desktop-rtx4090",
    "server-a100-mig",
    "workstation-2gpu",
    "one-nic-pc",
    "intel-default-off",  # no IOMMU groups yet: the host phase turns the IOMMU on
    "iommu-noncanonical",
    "vfio-ids-typo",
    "a100-mig-enabled",
    "two-gpus-one-group",
    "unknown-card",
    "nvidia-smi-no-driver",
}
DOCTOR_CLEAN = {"server-a100-mig", "a100-mig-enabled"}  # the others were captured without root or have problems


def fixture(name: str) -> Path:
    return FIXTURES / f"{name}.json"


def expected_plan(name: str) -> dict:
    facts = facts_from_snapshot(load_snapshot_file(fixture(name)))
    return json.loads(json.dumps(make_plan(facts, Config(), version_table(load_lock())).to_dict(), default=str))


def assert_one_line_error(result, *words: str) -> None:
    assert result.rc != 0
    assert len(result.err_lines) == 1, result.err
    line = result.err_lines[0]
    assert line.startswith("error (") and "fix:" in line and "Traceback" not in result.err
    for word in words:
        assert word in line, line


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_plan_per_fixture(cli, name):
    result = cli("plan", "--facts", fixture(name))
    if name in PLANNABLE:
        assert result.rc == 0, result.err
        assert result.err == ""
        facts = facts_from_snapshot(load_snapshot_file(fixture(name)))
        assert f"Plan for {facts.hostname}" in result.out
        assert "vfio-pci ids: " in result.out
        assert "Platform overhead" in result.out and "For ML work" in result.out
        assert "kolla_ansible 22.2.0" in result.out
    else:
        assert result.rc == 4
        assert result.out == ""
        assert_one_line_error(result, "error (plan)")


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_doctor_per_fixture(cli, name):
    result = cli("doctor", "--facts", fixture(name))
    assert result.rc == (0 if name in DOCTOR_CLEAN else 1), result.out + result.err
    lines = result.out.splitlines()
    assert any(line.split()[:2] == ["pass", "architecture"] for line in lines)
    assert lines[-1].endswith("skipped") and " passed, " in lines[-1]
    status = "pass" if name in PLANNABLE else "fail"
    assert any(line.split()[:2] == [status, "plan"] for line in lines), result.out
    if name not in DOCTOR_CLEAN:
        assert any(line.strip().startswith("fix: ") for line in lines)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_json_outputs_parse_and_match_the_core(cli, name):
    result = cli("doctor", "--facts", fixture(name), "--json")
    data = json.loads(result.out)
    facts = facts_from_snapshot(load_snapshot_file(fixture(name)))
    config = Config()
    checks = run_checks(
        facts, config, set(), plan_feasibility(lambda: make_plan(facts, config, version_table(load_lock())))
    )
    assert data == {"host": facts.hostname, "checks": [c.to_dict() for c in checks]}
    plan = cli("plan", "--facts", fixture(name), "--json")
    if name in PLANNABLE:
        assert plan.rc == 0
        shown = json.loads(plan.out)
        downloads = shown.pop("downloads")
        assert shown == expected_plan(name)
        assert [a["name"] for a in downloads["artifacts"]] == list(lock_artifacts())
        assert {a["source"] for a in downloads["artifacts"]} == {"internet"}
    else:
        assert plan.rc == 4 and plan.out == ""
    facts_json = cli("facts", "--facts", fixture(name), "--json")
    assert facts_json.rc == 0
    assert json.loads(facts_json.out) == json.loads(json.dumps(facts.to_dict()))


def test_example_plan_says_it_is_a_sample_pc(cli):
    """Finding 22: `plan --example` shows a sample PC's plan, and says so before anything else."""
    result = cli("plan", "--example", "desktop-rtx4090")
    assert result.rc == 0, result.err
    first = result.out.splitlines()[0]
    assert first.startswith("SAMPLE PC: ") and "not this machine" in first
    assert "Plan for the sample PC " in result.out
    data = json.loads(cli("plan", "--example", "desktop-rtx4090", "--json").out)
    assert data["sample"] == "desktop-rtx4090"
    assert "SAMPLE PC" in cli("doctor", "--example", "desktop-rtx4090").out.splitlines()[0]
    assert "SAMPLE PC" not in cli("plan", "--facts", fixture("desktop-rtx4090")).out


def test_output_that_is_not_a_terminal_is_not_wrapped(cli):
    """Finding 24: a pipe (logs, CI, `| less`) gets whole lines, not Rich's 80 columns."""
    result = cli("doctor", "--facts", fixture("iommu-off"), env={"COLUMNS": ""})
    lines = result.out.splitlines()
    assert max(len(line) for line in lines) > 120  # long findings stay on their line
    for line in lines[:-1]:  # every line is a check or its fix, none a wrapped remainder
        assert line.split()[0] in ("pass", "warn", "fail", "skipped", "fix:"), line
    table = cli("facts", "--facts", fixture("workstation-2gpu"), env={"COLUMNS": ""}).out
    assert any(
        "NVIDIA RTX A6000 [10de:2230] 49140 MiB" in line and "IOMMU group 14" in line for line in table.splitlines()
    )


def test_facts_save_then_plan_from_the_saved_file(cli, tmp_path):
    saved = tmp_path / "saved.json"
    result = cli("facts", "--facts", fixture("workstation-2gpu"), "--save", saved)
    assert result.rc == 0 and f"saved to {saved}" in result.out.replace("\n", "")
    assert "NVIDIA RTX A6000" in result.out
    again = cli("plan", "--facts", saved, "--json")
    assert again.rc == 0
    shown = json.loads(again.out)
    shown.pop("downloads")
    assert shown == expected_plan("workstation-2gpu")


def test_facts_of_this_machine_saved_and_planned(cli, tmp_path):
    """Reads this machine (read-only), saves it, and plans from the file as from the live host."""
    saved = tmp_path / "here.json"
    result = cli("facts", "--save", saved)
    assert result.rc == 0, result.err
    snapshot = json.loads(saved.read_text())
    assert snapshot["format"] == "affordml-host-snapshot/1" and snapshot["source"] == "local"
    from_file = cli("plan", "--facts", saved, "--json")
    live = cli("plan", "--json")
    assert (from_file.rc, from_file.err) == (live.rc, live.err)
    if from_file.rc == 0:
        assert json.loads(from_file.out) == json.loads(live.out)
    else:
        assert_one_line_error(from_file)


def test_facts_save_refuses_to_overwrite_another_file(cli, tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("my notes\n")
    result = cli("facts", "--facts", fixture("one-nic-pc"), "--save", other)
    assert_one_line_error(result, "--save", "notes.txt")
    assert other.read_text() == "my notes\n"
    saved = tmp_path / "facts.json"
    assert cli("facts", "--facts", fixture("one-nic-pc"), "--save", saved).rc == 0
    assert cli("facts", "--facts", fixture("too-small"), "--save", saved).rc == 0  # an earlier facts file: replaced
    assert "small-box" in saved.read_text()


def test_config_init_writes_the_defaults(cli):
    result = cli("config", "init")
    config_file = cli.project / "affordml.yaml"
    assert result.rc == 0 and str(config_file) in result.out.replace("\n", "")
    text = config_file.read_text()
    assert all(line.startswith("#") or not line.strip() for line in text.splitlines())  # all commented out
    assert load_config(config_file, environ={}) == Config()
    # uncomment every key line: the sample's values are exactly the defaults
    keys = [line[2:] for line in text.splitlines() if KEY_LINE.match(line[2:]) and line.startswith("# ")]
    uncommented = yaml.safe_load("\n".join(keys))
    assert set(uncommented) == set(Config.model_fields)
    assert Config.model_validate(uncommented) == Config()
    printed = cli("config", "init", "--print")
    assert printed.rc == 0 and printed.out == text


def test_config_init_refuses_to_overwrite_and_keeps_numbered_backups_with_force(cli):
    config_file = cli.project / "affordml.yaml"
    config_file.parent.mkdir(parents=True)
    config_file.write_text("vms:\n  workers:\n    count: 1\n")
    refused = cli("config", "init")
    assert refused.rc == 2
    assert_one_line_error(refused, "exists already", "--force")
    assert config_file.read_text() == "vms:\n  workers:\n    count: 1\n"
    forced = cli("config", "init", "--force")
    assert forced.rc == 0 and "affordml.yaml.bak.1" in forced.out
    assert (cli.project / "affordml.yaml.bak.1").read_text() == "vms:\n  workers:\n    count: 1\n"
    assert load_config(config_file, environ={}) == Config()
    again = cli("config", "init", "--force")  # a second --force keeps the first backup: the user's original
    assert again.rc == 0 and "affordml.yaml.bak.2" in again.out
    assert (cli.project / "affordml.yaml.bak.1").read_text() == "vms:\n  workers:\n    count: 1\n"
    assert (cli.project / "affordml.yaml.bak.2").read_text() == config_file.read_text()


def test_config_file_is_used_by_plan(cli):
    config_file = cli.project / "affordml.yaml"
    config_file.parent.mkdir(parents=True)
    config_file.write_text("vms:\n  workers:\n    count: 1\ngpu:\n  sharing: exclusive\n")
    data = json.loads(cli("plan", "--facts", fixture("desktop-rtx4090"), "--json").out)
    assert [v["name"] for v in data["vms"]] == ["cp-1", "worker-1"]
    assert data["gpus"][0]["sharing"]["mode"] == "exclusive"


def test_env_override_reaches_the_plan(cli):
    result = cli(
        "plan", "--facts", fixture("server-a100-mig"), "--json", env={"AFFORDML_GPU__SHARING__MODE": "time-slicing"}
    )
    assert result.rc == 0, result.err
    assert json.loads(result.out)["gpus"][0]["sharing"]["mode"] == "time-slicing"


def test_destroy_asks_for_confirmation_first(cli):
    result = cli("destroy")
    assert result.rc == 8
    assert_one_line_error(result, "--yes-i-really-really-mean-it")
    assert not cli.project.exists()  # nothing was created, let alone deleted


def test_debug_shows_the_traceback(cli):
    plain = cli("plan", "--facts", fixture("too-small"))
    debug = cli("--debug", "plan", "--facts", fixture("too-small"))
    assert_one_line_error(plain, "RAM")
    assert debug.rc == plain.rc == 4
    assert "Traceback (most recent call last)" in debug.err and "PlanError" in debug.err
    assert debug.err_lines[-1] == plain.err_lines[0]


def test_debug_from_the_environment(cli):
    result = cli("plan", "--facts", fixture("too-small"), env={"AFFORDML_DEBUG": "1"})
    assert "Traceback" in result.err


def test_usage_errors_are_usage_errors(cli):
    result = cli("plan", "--no-such-option")
    assert result.rc == 2
    assert "No such option" in result.err and "internal" not in result.err and "Traceback" not in result.err


def test_version_and_help(cli):
    from affordml import __version__

    version = cli("--version")
    assert (version.rc, version.out.strip()) == (0, f"affordml {__version__}")
    help_text = cli("--help")
    assert help_text.rc == 0
    for command in ("facts", "doctor", "plan", "init", "add-node", "upgrade", "status", "destroy", "config"):
        assert f"  {command} " in help_text.out


def test_python_dash_m_runs_the_same_cli(cli, tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "affordml", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("affordml ")


def test_doctor_ignore_check_and_unknown_check(cli):
    result = cli("doctor", "--facts", fixture("desktop-rtx4090"), "--ignore-check", "privileges")
    assert result.rc == 0, result.out
    assert any(line.split()[:2] == ["skipped", "privileges"] for line in result.out.splitlines())
    unknown = cli("doctor", "--facts", fixture("desktop-rtx4090"), "--ignore-check", "nope")
    assert unknown.rc == 4
    assert_one_line_error(unknown, "--ignore-check", "'nope'")


def test_default_project_dir_is_home(cli, tmp_path):
    result = cli("config", "init", project_dir=None)
    assert result.rc == 0
    assert Path(tmp_path / "home" / ".affordml" / "affordml.yaml").exists()
