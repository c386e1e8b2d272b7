"""One hostile case through the real `affordml` command in a fresh sandbox under the system temp folder: the
project folder, HOME, and an `outside/` folder with sentinels. Everything in the sandbox but the project folder
is snapshotted before and after the command; any difference is a write outside the project."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.cli.conftest import console_script

REPO = Path(__file__).resolve().parents[2]
DESKTOP = REPO / "tests" / "fixtures" / "hardware" / "desktop-rtx4090.json"
STAMP = ".affordml-env.yaml"
GOOD_STAMP = "affordml_version: '0.1'\nplan_hash: abc\nfiles: []\n"
SENTINEL = "sentinel: must never change\n"
SECRET = "hunter2"  # planted in broken secrets files: it must never be printed

# The headings of issue 8; every case belongs to one.
VALUES = "code execution through values"
FILES = "files outside the project"
LOCK = "runs that outlive their lock"
TERMINAL = "what reaches the terminal"
DESTROY = "destroy only what is this project's"
BAD_INPUT = "every bad input a one-line error"
ISSUE_CLASSES = (VALUES, FILES, LOCK, TERMINAL, DESTROY, BAD_INPUT)


@dataclass
class Sandbox:
    tmp: Path  # the case's own folder
    project: Path  # what -p points at
    outside: Path  # sentinels that must never change
    home: Path
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    url: str = ""  # a loopback server the setup started ("{url}" in the arguments)
    seen: dict = field(default_factory=dict)  # what the setup recorded for the case's note


Setup = Callable[[Sandbox], None]


@dataclass(frozen=True)
class Case:
    issue_class: str  # one of ISSUE_CLASSES
    kind: str  # a finer class, shown in the table
    field: str  # the config/facts field or project file
    shown: str  # the input, as the table shows it
    args: tuple[str, ...]  # after `affordml -p PROJECT`; "{tmp}" stands for the sandbox folder
    setup: Setup | None = None
    project: Callable[[Path], Path] | None = None  # another -p than {tmp}/project (given the sandbox folder)
    times: int = 1  # run the command this many times
    echo: str | None = None  # text the command prints back: it must come out as is
    accepted: str = ""  # what a success means, when the command prints nothing telling
    ok_rcs: tuple[int, ...] = (0,)  # exit codes that are not errors (doctor: 1 = a check failed)
    note: Callable[[Sandbox], str] | None = None  # one more observation after the run
    said: str = ""  # the stdout line starting with this is shown too (what the run said before its result)


@dataclass(frozen=True)
class Row:
    case: Case
    rc: int
    result: str
    outside: list[str]
    internal: bool
    multi_line: bool
    leaked: bool


def run_case(case: Case, tmp: Path) -> Row:
    """Run `case` in the fresh folder `tmp` (created here, removed afterwards)."""
    tmp.mkdir(mode=0o700)
    sandbox = _sandbox(tmp, case)
    try:
        before = snapshot(tmp, sandbox.project)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AFFORDML_", "ANSIBLE_"))}
        pythonpath = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.update({"HOME": str(sandbox.home), "PYTHONPATH": pythonpath, "COLUMNS": "400", "NO_COLOR": "1"})
        argv = [*console_script(), "-p", str(sandbox.project), *(_arg(a, sandbox) for a in case.args)]
        for _ in range(case.times):
            done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, cwd=tmp)
        after = snapshot(tmp, sandbox.project)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        extra = f"; {case.note(sandbox)}" if case.note else ""
    finally:
        for cleanup in sandbox.cleanups:
            cleanup()
        subprocess.run(["chattr", "-R", "-i", str(tmp)], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    return Row(
        case=case,
        rc=done.returncode,
        result=_said(case, done.stdout) + _result(case, done, errors) + extra,
        outside=changed,
        internal="Traceback" in done.stderr or "(internal)" in done.stderr,
        multi_line=done.returncode not in case.ok_rcs and len(errors) != 1,
        leaked=SECRET in done.stdout + done.stderr,
    )


def _arg(arg: str, sandbox: Sandbox) -> str:
    return arg.replace("{tmp}", str(sandbox.tmp)).replace("{url}", sandbox.url)


def _sandbox(tmp: Path, case: Case) -> Sandbox:
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "file").write_text(SENTINEL)
    (outside / "dir").mkdir()
    (outside / "dir" / STAMP).write_text(GOOD_STAMP)
    (outside / "dir" / "keep.txt").write_text(SENTINEL)
    (outside / "savelink.json").symlink_to(outside / "file")
    os.link(outside / "file", outside / "hardsave.json")
    home = tmp / "home"
    home.mkdir()
    project = case.project(tmp) if case.project else tmp / "project"
    if case.project is None:
        project.mkdir(mode=0o700)
    sandbox = Sandbox(tmp, project, outside, home)
    if case.setup:
        case.setup(sandbox)
    return sandbox


def snapshot(tmp: Path, project: Path) -> dict[str, tuple | None]:
    """Every entry under tmp but the project folder: type, link target or content hash, mode, links, owner."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(tmp, followlinks=False):
        here = Path(dirpath)
        for name in dirnames + filenames:
            path = here / name
            if path != project:
                seen[str(path.relative_to(tmp))] = snapshot_entry(path)
        dirnames[:] = [d for d in dirnames if here / d != project]
    return seen


def snapshot_entry(path: Path) -> tuple | None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if path.is_symlink():
        value = "link:" + os.readlink(path)
    elif path.is_file():
        value = hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        value = "dir" if path.is_dir() else "other"
    return (value, info.st_mode, info.st_nlink, info.st_uid)


def _result(case: Case, done: subprocess.CompletedProcess, errors: list[str]) -> str:
    """The one line a user saw: the error, the echoed text, or what success means."""
    if case.echo is not None and case.echo in done.stdout and not errors:
        why = " (a check failed: the doctor's exit code)" if done.returncode == 1 else ""
        return f"accepted{why}; printed as text, markup not interpreted"
    if done.returncode != 0 or errors:
        return errors[0] if len(errors) == 1 else f"{len(errors)} stderr lines: " + " / ".join(errors)[:300]
    if case.accepted:
        return case.accepted
    shown = [x for x in done.stdout.splitlines() if x.startswith(("env:", "phases:", "wrote"))]
    return " / ".join(shown) or (done.stdout.strip().splitlines() or ["(no output)"])[-1]


def _said(case: Case, stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if case.said and line.startswith(case.said)]
    return f"said: {lines[0]}; then: " if lines else ""
