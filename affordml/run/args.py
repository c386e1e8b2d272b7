"""Build one ansible-runner run's arguments (pure). Secrets never appear here: only paths to 0600 files."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

RUN_VARS_FILE = "affordml-run-vars.yml"  # in the run's private data dir: extravars, every string !unsafe
SAFE_ENV_KEYS = ("HOME", "LANG", "LC_ALL", "TERM", "USER", "LOGNAME", "SSH_AUTH_SOCK", "TMPDIR")


@dataclass(frozen=True)
class RunArgs:
    ident: str
    private_data_dir: Path
    playbook: Path
    inventories: tuple[Path, ...]
    vars_files: tuple[Path, ...] = ()
    extravars: dict[str, str] = field(default_factory=dict)  # plain, non-secret values; Ansible reads them as data
    path_prepend: tuple[Path, ...] = ()
    check: bool = False
    limit: str | None = None
    config_file: Path | None = None


def build_run_args(
    ident: str,
    runs_dir: Path,
    playbook: Path,
    inventories: list[Path],
    vars_files: list[Path] = (),
    extravars: dict[str, str] | None = None,
    toolchain_bin: Path | None = None,
    check: bool = False,
    limit: str | None = None,
    config_file: Path | None = None,
) -> RunArgs:
    return RunArgs(
        ident=ident,
        private_data_dir=runs_dir / ident,
        playbook=playbook,
        inventories=tuple(inventories),
        vars_files=tuple(vars_files),
        extravars=dict(extravars or {}),
        path_prepend=(toolchain_bin,) if toolchain_bin else (),
        check=check,
        limit=limit,
        config_file=config_file,
    )


def run_vars_file(args: RunArgs) -> Path:
    return args.private_data_dir / RUN_VARS_FILE


def cmdline(args: RunArgs) -> str:
    words = []
    for path in args.vars_files:
        words += ["-e", f"@{path}"]
    if args.extravars:  # a file of !unsafe strings, not ansible-runner's extravars (Ansible would template those)
        words += ["-e", f"@{run_vars_file(args)}"]
    if args.check:
        words += ["--check", "--diff"]
    if args.limit:
        words += ["--limit", args.limit]
    return shlex.join(words)


def environment(args: RunArgs, base: dict[str, str]) -> dict[str, str]:
    """The whole environment ansible-playbook gets: a few safe keys from ours, PATH with the toolchain first.
    ansible-runner writes its environment into its artifacts, so nothing else goes in."""
    env = {k: base[k] for k in SAFE_ENV_KEYS if k in base}
    env["PATH"] = ":".join([str(p) for p in args.path_prepend] + [base.get("PATH", "/usr/bin:/bin")])
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_RETRY_FILES_ENABLED"] = "0"
    env["ANSIBLE_HOST_KEY_CHECKING"] = "True"
    env["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "True"  # a broken inventory must stop the run, not warn
    if args.config_file:
        env["ANSIBLE_CONFIG"] = str(args.config_file)
    return env


def runner_kwargs(args: RunArgs) -> dict:
    """Keyword arguments for ansible_runner.run (without the environment and callbacks)."""
    return {
        "private_data_dir": str(args.private_data_dir),
        "playbook": str(args.playbook),
        "inventory": [str(p) for p in args.inventories],
        "cmdline": cmdline(args),
        "ident": args.ident,
        "quiet": True,
    }
