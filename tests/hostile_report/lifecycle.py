"""Hostile inputs to the lifecycle commands (backup, restore, upgrade, destroy, add-node, verify, serve, status,
report, bench): backups.py holds the backups and project files, commands.py the other commands' flags, names,
paths and what a Prometheus answers. tests/cli/test_hostile_lifecycle.py runs them all as tests."""

from __future__ import annotations

from tests.hostile_report.backups import BACKUP_TABLE, full_disk
from tests.hostile_report.commands import COMMAND_TABLE
from tests.hostile_report.runner import Case


def lifecycle_cases() -> list[Case]:
    cases = []
    for issue_class, kind, field, shown, setup, args, *more in [*BACKUP_TABLE, *COMMAND_TABLE]:
        shown = shown.replace("{tmp}", "<tmp>")
        cases.append(Case(issue_class, kind, field, shown, tuple(args), setup, **(more[0] if more else {})))
    return cases


__all__ = ["full_disk", "lifecycle_cases"]
