"""The run state: phase -> status, run ident, inputs hash, times. Written atomically."""

from __future__ import annotations

import json
import os
import tempfile
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


def load_state(path: Path) -> State:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return State()
    except (OSError, ValueError) as exc:
        raise StateError(
            f"{path} is unreadable ({exc})",
            f"move it aside (`mv {path} {path}.broken`) and run again: every phase runs again",
        ) from None
    if raw.get("version") != STATE_VERSION:
        raise StateError(
            f"{path} has state version {raw.get('version')!r}, this affordml reads {STATE_VERSION}",
            "use the affordml version that wrote it",
        )
    return State(
        plan_hash=raw.get("plan_hash", ""),
        phases={k: PhaseState(**v) for k, v in raw.get("phases", {}).items()},
        data=raw.get("data", {}),
    )


def save_state(path: Path, state: State) -> None:
    """Write to a temporary file beside it, fsync, then rename: a crash leaves the old or the new state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump(state.to_dict(), handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def now() -> float:
    return round(time.time(), 3)
