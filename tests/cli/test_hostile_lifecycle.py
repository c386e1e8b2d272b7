"""The lifecycle commands' hostile inputs (tests/hostile_report/lifecycle.py; their rows in docs/hostile-inputs.md)
as tests, each through the real console script in its own sandbox: a refusal is one line with its fix, no
traceback, nothing outside the project written, no payload run, no secret echoed; a restore refused leaves
every entry of the project folder as it was; the cases that are accepted say what they did."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.hostile_report.lifecycle import full_disk, lifecycle_cases
from tests.hostile_report.runner import run_case

CASES = lifecycle_cases()

# input -> words its row must hold (the error names the problem; the note says what stayed as it was)
WORDS = {
    "`..` out of the backup": ["outside the backup's folder", "nothing restored", "project unchanged"],
    "absolute path outside": ["outside the backup's folder", "project unchanged"],
    "a file of another backup folder": ["outside the backup's folder", "project unchanged"],
    "restores into env/ (not a file a backup takes)": ["not a file a backup takes", "project unchanged"],
    "restores run.lock": ["not a file a backup takes", "project unchanged"],
    "restores into backups/": ["not a file a backup takes", "project unchanged"],
    "a symlink to a file outside (sha256 of it in the manifest)": ["symbolic link", "project unchanged"],
    "a hard link to a file outside": ["hard link"],
    "the backup folder is a link to a folder outside": ["symbolic link", "project unchanged"],
    "17 MiB (sha256 right)": ["larger than", "project unchanged"],
    "mode 0644": ["mode 0644", "not 0600", "project unchanged"],
    "mode 0666 (writable by others)": ["mode 0666", "project unchanged"],
    "taken of another project folder": ["another project folder", "project unchanged"],
    "a newer affordml (99.0.0)": ["newer than this affordml", "project unchanged"],
    "false (a backup stopped half-way by Ctrl-C)": ["did not finish", "project unchanged"],
    "names another backup": ["names backup", "project unchanged"],
    "a text, not a list": ["'items' is not a list", "project unchanged"],
    "a text, not a number of bytes": ["'size'", "project unchanged"],
    "not a digest": ["sha256", "project unchanged"],
    "the same file twice": ["a second time", "project unchanged"],
    "another state version (sha256 right)": ["state version 99", "project unchanged"],
    "changed after the backup (sha256 wrong)": ["does not match its sha256", "project unchanged"],
    "escape sequences, shown escaped": ["\\x1b[2J"],
    "`../outside`": ["no complete backup named '../outside'", "project unchanged"],
    "left out": ["--yes-i-really-really-mean-it", "project unchanged"],
    "the project's secret is now a link to a file outside": ["symbolic link", "project unchanged"],
    "a good backup, secret changed since": ["secret back: True, mode 0o600", "pre-restore backups kept: 1"],
    "full disk (tmpfs, 256 KiB left, a 320 KiB secret)": ["no space left", "1 listed, 0 complete"],
    "false (stopped half-way)": ["incomplete"],
    "answers a redirect to another server": ["redirects", "reached the other server: 0"],
    "a password in the URL (not echoed)": ["***@"],
    "65 MiB": ["more than 64 MiB"],
    "NaN and Inf samples": ["left out"],
    "`$` (matplotlib mathtext) with --png": ["PNG written: True"],
    "a file of the user's (not a PNG)": ["not a file affordml wrote", "left as it is"],
    "a text": ["data.lock is a str"],
    "kubernetes: `garbage`": ["data.lock.kubernetes"],
    "no kubespray": ["no 'kubespray'"],
}


def _id(case) -> str:
    return f"{case.kind}|{case.field}|{case.shown}"[:90]


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_lifecycle_hostile_input(case, tmp_path):
    if case.setup is full_disk and (os.geteuid() != 0 or not shutil.which("mount")):
        pytest.skip("a full disk is a tmpfs mounted for the case: that needs root")
    if "immutable" in case.shown and (os.geteuid() != 0 or not shutil.which("chattr")):
        pytest.skip("an immutable folder needs root and chattr")
    row = run_case(case, tmp_path / "case")
    assert not row.internal, row.result
    assert not row.multi_line, row.result
    assert not row.outside, row.outside
    assert not row.leaked, row.result
    assert not list(tmp_path.rglob("MARKER*")), "a payload ran"
    accepted = bool(case.accepted or case.echo) or case.shown in ("a good backup, secret changed since",)
    accepted = accepted or "matplotlib" in case.shown or case.shown.startswith("`echo hi;")
    assert (row.rc == 0) == accepted, row.result
    if not accepted:
        assert " — fix: " in row.result, row.result
    for word in WORDS.get(case.shown, []):
        assert word in row.result, row.result
    if "created:" in row.result:
        assert "created: False" in row.result
