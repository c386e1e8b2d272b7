"""The driver's decisions, pure: skip an unchanged release, and how to undo a failed one."""

from __future__ import annotations

from dataclasses import dataclass

from affordml.helm.release import ReleaseStamp


@dataclass(frozen=True)
class Undo:
    action: str  # "rollback" | "uninstall" | "none"
    revision: int | None = None

    def said(self) -> str:
        if self.action == "rollback":
            return f"rolled back to revision {self.revision}"
        if self.action == "uninstall":
            return "removed again (it was its first install)"
        return "left as it was"


def unchanged(history: list[dict], deployed_values: dict | None, stamp: ReleaseStamp) -> bool:
    """True when the newest revision is deployed, carries our stamp, and its values are ours (nobody changed them
    with helm by hand since)."""
    if not history:
        return False
    last = max(history, key=lambda entry: int(entry.get("revision", 0)))
    return (
        last.get("status") == "deployed"
        and last.get("description") == stamp.description
        and (deployed_values or {}) == stamp.values
    )


def undo_for(history_before: list[dict]) -> Undo:
    """After a failed upgrade: back to the newest revision that was deployed before it, else remove the release."""
    deployed = [int(e["revision"]) for e in history_before if e.get("status") in ("deployed", "superseded")]
    current = [int(e["revision"]) for e in history_before if e.get("status") == "deployed"]
    if current:
        return Undo("rollback", max(current))
    if deployed:
        return Undo("rollback", max(deployed))
    return Undo("uninstall")  # first install, or only failed revisions: nothing good to go back to
