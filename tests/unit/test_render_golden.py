"""Golden files: the whole env/ rendered for every hardware fixture and a few config variants.

tests/golden/cases.yaml lists the cases; tests/golden/<case>/ holds what the renderer wrote for each (every file,
stamp included), or plan-error.txt where the plan fails. Rewrite them after an intended change with

    AFFORDML_UPDATE_GOLDEN=1 pytest tests/unit/test_render_golden.py

and review the diff. Nothing here depends on the machine: host names come from the fixtures, the plan hash and
the affordml version from the plan and the package.
"""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path

import pytest
import yaml

from affordml.errors import PlanError
from affordml.plan.build import make_plan
from affordml.render.context import build_context
from affordml.render.engine import STAMP, render_files
from affordml.versions import load_lock, version_table
from tests.cases import GOLDEN, case_config, case_facts, load_cases

PLAN_ERROR_FILE = "plan-error.txt"
UPDATE = os.environ.get("AFFORDML_UPDATE_GOLDEN") == "1"

# The fixtures whose README conclusion is "cannot host the platform": their plan must fail.
PLAN_FAILS = {
    "ci-machine",
    "h200-device",
    "h200-vm",
    "iommu-off",
    "shared-iommu-group",
    "too-small",
    "acs-override",  # isolation only by pcie_acs_override: refused
    "pascal-gtx1080ti",  # the pinned 595 driver branch does not support Pascal
    "ubuntu-iommu-default-on",  # too-small's hardware (IOMMU fine, resources not)
}


def render_case(case: dict) -> dict[str, str] | PlanError:
    """The env/ files of one case (path -> text), or the PlanError its plan raises."""
    facts = case_facts(case)
    config = case_config(facts, case)
    lock = load_lock()
    try:
        plan = make_plan(facts, config, version_table(lock))
    except PlanError as exc:
        return exc
    return render_files(build_context(plan, config, lock))


CASES = load_cases()


def _golden_files(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def _write_golden(folder: Path, files: dict[str, str]) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _expected(result: dict[str, str] | PlanError) -> dict[str, str]:
    if isinstance(result, PlanError):
        return {PLAN_ERROR_FILE: result.one_line() + "\n"}
    return result


def _diff(name: str, want: str, got: str) -> str:
    lines = difflib.unified_diff(
        want.splitlines(keepends=True), got.splitlines(keepends=True), f"golden/{name}", f"rendered/{name}"
    )
    return "".join(lines)


@pytest.mark.parametrize("case_name", sorted(CASES))
def test_rendered_env_matches_golden(case_name):
    case = CASES[case_name]
    result = render_case(case)
    if case_name == case["fixture"]:  # the fixture with the default config: the README says if it can work
        if case_name in PLAN_FAILS:
            assert isinstance(result, PlanError), f"{case_name}: the plan should fail, it rendered {len(result)} files"
        else:
            assert not isinstance(result, PlanError), f"{case_name}: the plan failed: {result.one_line()}"
    got = _expected(result)
    folder = GOLDEN / case_name
    if UPDATE:
        _write_golden(folder, got)
    want = _golden_files(folder)
    assert want, f"no golden files in {folder}; create them with AFFORDML_UPDATE_GOLDEN=1"
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    assert not missing and not extra, (
        f"{case_name}: golden files not rendered: {missing}; rendered files without golden: {extra} "
        "(AFFORDML_UPDATE_GOLDEN=1 rewrites the golden files)"
    )
    diffs = [_diff(rel, want[rel], got[rel]) for rel in sorted(got) if want[rel] != got[rel]]
    assert not diffs, f"{case_name}: rendered files differ from the golden ones:\n" + "\n".join(diffs)


@pytest.mark.parametrize("fixture", sorted(PLAN_FAILS))
def test_failing_fixture_gives_one_line_plan_error(fixture):
    result = render_case(CASES[fixture])
    assert isinstance(result, PlanError)
    line = result.one_line()
    assert "\n" not in line and " — fix: " in line, line
    assert result.problem.strip() and result.fix and result.fix.strip()


def test_every_golden_folder_belongs_to_a_case():
    folders = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
    orphans = sorted(set(folders) - set(CASES))
    if UPDATE:
        for name in orphans:
            shutil.rmtree(GOLDEN / name)
        orphans = []
    assert not orphans, (
        f"golden folders without a case in cases.yaml: {orphans} (AFFORDML_UPDATE_GOLDEN=1 removes them)"
    )


def test_cases_cover_every_sharing_mode_and_a_cpu_only_platform():
    """The golden set keeps one case per way the templates branch, so a template change shows up somewhere."""
    modes, cpu_only, remote = set(), False, False
    for case in CASES.values():
        result = render_case(case)
        if isinstance(result, PlanError):
            continue
        stamp = yaml.safe_load(result[STAMP])
        labels = yaml.safe_load(result["gpu/node-labels.yaml"]) if "gpu/node-labels.yaml" in result else None
        if labels is None:
            cpu_only = True
            assert not any(f.startswith("gpu/") for f in stamp["files"])
        else:
            modes |= {node["affordml.io/gpu-sharing"] for node in labels.values()}
        remote |= "ansible_host:" in result["inventory/hosts.yml"]
    assert modes == {"exclusive", "time-slicing", "mps", "mig", "hami"}
    assert cpu_only and remote
