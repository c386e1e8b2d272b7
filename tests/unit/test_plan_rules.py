"""Plan rules that span GPUs: one sharing mode per VM (the device plugin configures a node as a whole)."""

from __future__ import annotations

from pathlib import Path

import pytest

from affordml.config.model import Config
from affordml.errors import PlanError
from affordml.facts.parse import facts_from_snapshot
from affordml.facts.sources import load_snapshot_file
from affordml.plan.build import make_plan
from affordml.versions import load_lock, version_table

TWO_GPUS = Path(__file__).parents[1] / "fixtures" / "hardware" / "workstation-2gpu.json"


def _plan(config: dict):
    facts = facts_from_snapshot(load_snapshot_file(TWO_GPUS))
    return make_plan(facts, Config.model_validate(config), version_table(load_lock()))


def test_two_modes_in_one_vm_is_refused_by_the_planner():
    config = {"vms": {"workers": {"count": 1}}, "gpu": {"per_gpu": {"0000:31:00.0": {"mode": "exclusive"}}}}
    with pytest.raises(PlanError, match="gpu.per_gpu: the GPUs in worker-1 .* have different sharing modes"):
        _plan(config)


def test_two_modes_on_two_vms_are_fine():
    plan = _plan({"gpu": {"per_gpu": {"0000:31:00.0": {"mode": "exclusive"}}}})
    assert {g.vm: g.sharing.mode for g in plan.gpus} == {"worker-1": "mps", "worker-2": "exclusive"}
