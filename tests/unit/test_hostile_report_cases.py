"""The hostile-input report (tests/hostile_report, docs/hostile-inputs.md) keeps covering what issue 8 asks for:
at least 100 inputs, every class of the issue, every string field of the config and of the facts."""

from __future__ import annotations

from tests.hostile import CONFIG_FREE_TEXT, CONFIG_SHAPED, FACTS_FIELDS, payloads
from tests.hostile_report import all_cases
from tests.hostile_report.runner import VALUES

# The section headings of issue 8 ("Trust"), as the issue names them.
ISSUE_8 = (
    "code execution through values",
    "files outside the project",
    "runs that outlive their lock",
    "what reaches the terminal",
    "destroy only what is this project's",
    "every bad input a one-line error",
)
MARKER = "/nonexistent/MARKER"


def test_at_least_100_inputs_in_every_class_of_issue_8():
    cases = all_cases(MARKER)
    assert len(cases) >= 100
    assert {case.issue_class for case in cases} == set(ISSUE_8)


def test_every_config_field_gets_every_payload_kind():
    carried = {(case.field, case.shown) for case in all_cases(MARKER) if case.issue_class == VALUES}
    missing = [
        (field, kind)
        for field in (*CONFIG_SHAPED, *CONFIG_FREE_TEXT)
        for kind, value in payloads(MARKER).items()
        if (field, value) not in carried
    ]
    assert not missing


def test_every_facts_field_gets_a_payload():
    values = set(payloads(MARKER).values())
    fields = {case.field for case in all_cases(MARKER) if case.issue_class == VALUES and case.shown in values}
    assert not [f.name for f in FACTS_FIELDS if f.name not in fields]
