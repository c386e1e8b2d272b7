"""The run state: phase -> status, run ident, inputs hash, times. Written atomically."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from affordml.errors import StateError

STATE_VERSION = 1


@dataclass
class PhaseState:
    status: str = "pending"  # pending | running | done | failed | skipped
    ident: str = ""
    inputs_hash: str = ""
    started: float | None = None
    ended: float | None = None
    message: str = ""


@dataclass
class State:
    plan_hash: str = ""
    phases: dict[str, PhaseState] = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # what phases record for later ones (server ids, addresses)

    def phase(self, name: str) -> PhaseState:
        return self.phases.setdefault(name, PhaseState())

    def to_dict(self) -> dict:
        return {
            "version": STATE_VERSION,
            "plan_hash": self.plan_hash,
            "phases": {k: asdict(v) for k, v in self.phases.items()},
            "data": self.data,
        }


STATE_FIX = "move it aside (`mv {path} {path}.broken`) and run again: every phase runs again"
PHASE_FIELDS = {f for f in PhaseState.__dataclass_fields__}
TOP_FIELDS = {"version", "plan_hash", "phases", "data"}


def load_state(path: Path) -> State:
    from affordml.safefile import read_text

    text = read_text(path.parent, path.name)
    if text is None:
        return State()
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise _broken(path, f"is unreadable (not JSON: {exc})") from None
    if not isinstance(raw, dict):
        raise _broken(path, f"must hold a JSON object, not {type(raw).__name__}")
    if raw.get("version") != STATE_VERSION:
        raise StateError(
            f"{path} has state version {raw.get('version')!r}, this affordml reads {STATE_VERSION}",
            "use the affordml version that wrote it",
        )
    unknown = sorted(set(raw) - TOP_FIELDS)
    if unknown:
        raise _broken(path, f"has unknown field {unknown[0]!r}")
    return State(
        plan_hash=_typed(path, raw, "plan_hash", str, ""),
        phases={name: _phase(path, name, record) for name, record in _typed(path, raw, "phases", dict, {}).items()},
        data=_typed(path, raw, "data", dict, {}),
    )


def _typed(path: Path, raw: dict, key: str, kind: type, default):
    value = raw.get(key, default)
    if not isinstance(value, kind):
        raise _broken(path, f"field {key!r} must be {kind.__name__}, not {type(value).__name__}")
    return value


def _phase(path: Path, name: str, record) -> PhaseState:
    if not isinstance(record, dict):
        raise _broken(path, f"field 'phases.{name}' must be an object")
    unknown = sorted(set(record) - PHASE_FIELDS)
    if unknown:
        raise _broken(path, f"field 'phases.{name}' has unknown field {unknown[0]!r}")
    for key in ("status", "ident", "inputs_hash", "message"):
        if not isinstance(record.get(key, ""), str):
            raise _broken(path, f"field 'phases.{name}.{key}' must be text")
    for key in ("started", "ended"):
        value = record.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _broken(path, f"field 'phases.{name}.{key}' must be a time or null")
    return PhaseState(**record)


def _broken(path: Path, what: str) -> StateError:
    return StateError(f"state file {path} {what}", STATE_FIX.format(path=path))


def save_state(path: Path, state: State) -> None:
    """Write to a temporary file beside it, fsync, then rename: a crash leaves the old or the new state.
    Never through a link; the project folder is made (0700) when missing."""
    from affordml.safefile import write_text

    text = json.dumps(state.to_dict(), indent=1, sort_keys=True)
    write_text(path.parent, path.name, text, 0o600)


def now() -> float:
    return round(time.time(), 3)
