"""Thin I/O: run the read-only collector script locally or over SSH and turn its output into a Snapshot."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from importlib import resources

from affordml.facts.snapshot import Snapshot

MARKER = "@@AFFORDML@@"
_KINDS = {"file", "link", "dir", "cmd"}


def collector_script() -> str:
    """The POSIX shell script that prints a host's snapshot records."""
    return resources.files("affordml.facts").joinpath("collect.sh").read_text()


def parse_records(text: str, source: str = "unknown") -> Snapshot:
    """Parse the collector's record stream (pure)."""
    snap = Snapshot(source=source, captured=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    kind, key, body = None, "", []
    for line in text.split("\n"):
        if line.startswith(MARKER + " "):
            head = line[len(MARKER) + 1 :]
            if head == "end" and kind:
                _store(snap, kind, key, body)
                kind, key, body = None, "", []
                continue
            word, _, rest = head.partition(" ")
            if word in _KINDS and kind is None:
                kind, key, body = word, rest, []
                continue
        if kind is not None:
            body.append(line)
    return snap


def _store(snap: Snapshot, kind: str, key: str, body: list[str]) -> None:
    # The collector prints one newline after a file or command so that the marker starts its own line; joining
    # the lines drops exactly that newline, so the text is the content as it was, trailing newline or not.
    text = "\n".join(body)
    if kind == "file":
        snap.files[key] = text
    elif kind == "cmd":
        snap.commands[key] = text
    elif kind == "link":
        snap.links[key] = text.strip()
    else:
        snap.dirs[key] = [name for name in text.split("\n") if name]


def collect_local(timeout: float = 60.0) -> Snapshot:
    """Snapshot the machine this runs on (read-only)."""
    done = subprocess.run(
        ["sh", "-s"], input=collector_script(), capture_output=True, text=True, timeout=timeout, check=False
    )
    return parse_records(done.stdout, source="local")
