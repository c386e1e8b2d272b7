"""`python -m tests.hostile_report > docs/hostile-inputs.md`: run every case, print the markdown report."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.hostile_report import all_cases
from tests.hostile_report.runner import REPO, Row, run_case

INTRO = """\
# Hostile inputs through the real `affordml` command

Every input of issue 8 ("Trust") that a hostile or careless user could hand to affordml, run through the real
`affordml` command of this checkout, one row each. Regenerate from the repository root with

    python -m tests.hostile_report > docs/hostile-inputs.md

Each case runs in a fresh folder under the system temp folder (`<tmp>/case-NNN`): the project folder (`-p`), HOME,
and `outside/` with sentinel files and folders. Columns:

- **class**: the section of issue 8 the input belongs to; **kind**: a finer class.
- **field / file**: the config or facts field, the project file or the option the input goes into.
- **input**: the value or what was planted (control characters shown escaped; `<tmp>/MARKER-…` is the file
  a payload creates if anything evaluates it).
- **rc**: affordml's exit code. **result**: the first line on stderr (the one-line error), or what success
  printed or means; `N stderr lines` marks an error that is not one line.
- **write outside?**: what changed outside the project folder (HOME and `outside/` included), compared by type,
  content hash, mode, link count and owner before and after; `no` when nothing did.

Payload markers are counted after the whole run. The payloads' run on a real test host (check mode and for real):
tests/integration/hosts/test_hostile_values_host_phase.py. Cases: tests/hostile_report/ (values.py, files.py,
backups.py, commands.py). The lifecycle commands' rows (backup, restore, upgrade, destroy, add-node, verify,
serve, status, report, bench) also run as tests: tests/cli/test_hostile_lifecycle.py. A restore row ends with
`project unchanged` when every entry of the project folder (type, content hash, mode, links, owner) is as it was
before the command.
"""


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="affordml-hostile-"))
    marker = str(root / "MARKER")
    started = time.monotonic()
    rows = [run_case(case, root / f"case-{i:03d}") for i, case in enumerate(all_cases(marker), 1)]
    wall = time.monotonic() - started
    markers = sorted(p.name for p in root.glob("MARKER*"))
    shutil.rmtree(root, ignore_errors=True)
    clean = _cleaner(root)
    print(INTRO)
    print(f"Run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on git {_revision()}, {wall:.0f} s.\n")
    print("| # | class | kind | field / file | input | rc | result | write outside? |")
    print("|---|---|---|---|---|---|---|---|")
    for i, row in enumerate(rows, 1):
        case = row.case
        cells = [
            str(i),
            case.issue_class,
            case.kind,
            _code(clean(case.field)),
            _code(clean(case.shown)),
            str(row.rc),
            _visible(clean(row.result)),
            _visible(clean(", ".join(row.outside) or "no")),
        ]
        print("| " + " | ".join(cells) + " |")
    summary = _summary(rows, markers)
    print(f"\n**{summary}**")
    print(summary, file=sys.stderr)
    return 0


def _summary(rows: list[Row], markers: list[str]) -> str:
    return (
        f"{len(rows)} inputs; {sum(r.internal for r in rows)} internal errors; "
        f"{sum(r.multi_line for r in rows)} multi-line errors; "
        f"{sum(bool(r.outside) for r in rows)} writes outside the project; "
        f"{len(markers)} payload markers left{(' ' + ', '.join(markers)) if markers else ''}; "
        f"{sum(r.leaked for r in rows)} secrets echoed"
    )


def _cleaner(root: Path):
    def clean(text: str) -> str:
        return text.replace(str(root), "<tmp>").replace(str(REPO), "<repo>")

    return clean


def _visible(text: str) -> str:
    """Control and non-ASCII characters escaped, so that the table shows what was typed."""
    shown = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
    return shown.replace("|", "\\|")


def _code(text: str) -> str:
    text = _visible(text)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _revision() -> str:
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "(not a git checkout)"


if __name__ == "__main__":
    raise SystemExit(main())
