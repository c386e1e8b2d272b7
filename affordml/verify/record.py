"""The verify results: one record per check, kept in state.data["verify"] and shown by `affordml status`."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

STATE_KEY = "verify"
PASSED, FAILED, SKIPPED, NOT_APPLICABLE = "passed", "failed", "skipped", "not-applicable"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # passed | failed | skipped | not-applicable
    proves: str
    detail: str = ""  # what was seen (passed), what went wrong (failed), or why it did not run
    fix: str = ""  # only for failed checks
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        fix = f" — fix: {self.fix}" if self.status == FAILED and self.fix else ""
        return f"{self.name}  {self.status}  {self.detail}{fix}"


def record(results: list[CheckResult], clock=time.time) -> dict:
    counts = {s: sum(1 for r in results if r.status == s) for s in (PASSED, FAILED, SKIPPED, NOT_APPLICABLE)}
    return {"at": round(clock(), 3), "counts": counts, "results": [r.to_dict() for r in results]}


def summary(rec: dict) -> str:
    counts = rec.get("counts") if isinstance(rec.get("counts"), dict) else {}
    return ", ".join(f"{counts.get(s, 0)} {s}" for s in (PASSED, FAILED, SKIPPED, NOT_APPLICABLE))


def status_section(rec: dict | None) -> dict:
    """For `affordml status --json`: the last verify run as recorded, or a note."""
    if not isinstance(rec, dict) or not isinstance(rec.get("results"), list):
        return {"note": "the verify phase has not run yet (`affordml verify`)"}
    section = {"at": rec.get("at"), "summary": summary(rec), "results": rec["results"]}
    if isinstance(rec.get("jupyterhub_url"), str):
        section["jupyterhub_url"] = rec["jupyterhub_url"]
    return section


def status_lines(section: dict) -> list[str]:
    """For `affordml status`: a heading and one line per check."""
    if "results" not in section:
        return [f"verify: {section.get('note', '')}"]
    at = section.get("at")
    readable = isinstance(at, int | float) and not isinstance(at, bool) and 0 <= at < 1e11
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at)) if readable else "?"
    lines = [f"verify (last run {when}): {section['summary']}"]
    if section.get("jupyterhub_url"):
        lines.append(f"  JupyterHub: {section['jupyterhub_url']}")
    for row in section["results"]:
        if isinstance(row, dict):
            fix = f" — fix: {row.get('fix')}" if row.get("status") == FAILED and row.get("fix") else ""
            lines.append(f"  {row.get('name')}  {row.get('status')}  {row.get('detail', '')}{fix}")
    return lines
