"""A reproducible report, not a test: hostile inputs run through the real `affordml` command, one table row each
(issue 8, "Trust"). `python -m tests.hostile_report > docs/hostile-inputs.md` from the repository root.

runner.py runs one case in a sandbox and watches everything outside the project folder; values.py holds the
hostile values (config, facts, terminal text, bad input), files.py the hostile project files (links, wrong
types, modes, state, secrets, run lock, destroy); backups.py and commands.py (gathered by lifecycle.py) the
inputs of the lifecycle commands. tests/unit/test_hostile_report_cases.py keeps the list whole;
tests/cli/test_hostile_lifecycle.py runs the lifecycle cases as tests."""

from tests.hostile_report.files import file_cases
from tests.hostile_report.lifecycle import lifecycle_cases
from tests.hostile_report.runner import ISSUE_CLASSES, Case
from tests.hostile_report.values import value_cases


def all_cases(marker: str) -> list[Case]:
    """Every case; value payloads touch files named `marker`-KIND when anything evaluates them."""
    return [*value_cases(marker), *file_cases(), *lifecycle_cases()]


__all__ = ["ISSUE_CLASSES", "Case", "all_cases"]
