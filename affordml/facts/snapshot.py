"""The raw host snapshot: what a host's files and commands said, before any parsing.

A snapshot is a JSON object::

    {
      "format": "affordml-host-snapshot/1",
      "captured": "2026-11-27T08:00:00Z",        # free text
      "source": "local" | "ssh://user@host" | "fixture: <what>",
      "files":    {"/proc/cpuinfo": "<text>", "/sys/bus/pci/devices/0000:01:00.0/vendor": "0x10de\\n", ...},
      "links":    {"/sys/bus/pci/devices/0000:01:00.0/driver": "../../../bus/pci/drivers/nvidia", ...},
      "dirs":     {"/sys/bus/pci/devices": ["0000:00:00.0", ...], "/sys/kernel/iommu_groups": ["0", ...], ...},
      "commands": {"nvidia-smi -q -x": "<xml>", "ip -j addr": "<json>", ...}
    }

A missing key means "absent on the host" (file missing, command not installed). The same snapshot comes from
the local host, from a remote host over SSH (one shell script, one round trip) and from test fixtures, and the
pure parsers in :mod:`affordml.facts.parse` turn it into :class:`affordml.facts.model.HostFacts`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

SNAPSHOT_FORMAT = "affordml-host-snapshot/1"


@dataclass
class Snapshot:
    """Raw text read from one host, keyed by path or command."""

    files: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    dirs: dict[str, list[str]] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)
    source: str = "unknown"
    captured: str = ""

    def file(self, path: str) -> str | None:
        return self.files.get(path)

    def link(self, path: str) -> str | None:
        return self.links.get(path)

    def listdir(self, path: str) -> list[str]:
        return sorted(self.dirs.get(path, []))

    def command(self, name: str) -> str | None:
        return self.commands.get(name)

    def to_dict(self) -> dict:
        return {
            "format": SNAPSHOT_FORMAT,
            "captured": self.captured,
            "source": self.source,
            "files": self.files,
            "links": self.links,
            "dirs": self.dirs,
            "commands": self.commands,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Snapshot:
        return cls(
            files=dict(data.get("files", {})),
            links=dict(data.get("links", {})),
            dirs={k: list(v) for k, v in data.get("dirs", {}).items()},
            commands=dict(data.get("commands", {})),
            source=str(data.get("source", "unknown")),
            captured=str(data.get("captured", "")),
        )


def snapshot_text(snapshot: Snapshot) -> str:
    return json.dumps(snapshot.to_dict(), indent=1, sort_keys=True) + "\n"


def is_snapshot_text(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and str(data.get("format", "")).startswith("affordml-host-snapshot")


def save_snapshot(snapshot: Snapshot, path: Path) -> None:
    """Save to a file of the user's choice (`facts --save`): its folder must exist; an existing file is replaced
    only when it is a facts file, never through a link, and by a rename (never rewritten in place)."""
    from affordml.safefile import write_beside

    write_beside(path, snapshot_text(snapshot), 0o644, may_replace=is_snapshot_text)


def save_project_snapshot(snapshot: Snapshot, project) -> None:
    """The project's facts.json; a facts.json that affordml did not write is never replaced."""
    from affordml.errors import UnsafeFile
    from affordml.safefile import read_text, write_text

    current = read_text(project.root, "facts.json")
    if current is not None and not is_snapshot_text(current):
        raise UnsafeFile(
            f"{project.facts_file} exists and is not a facts file that affordml saved; it was left as it is",
            f"move it aside (`mv {project.facts_file} {project.facts_file}.moved`), or choose another folder with -p",
        )
    write_text(project.root, "facts.json", snapshot_text(snapshot), 0o600)
