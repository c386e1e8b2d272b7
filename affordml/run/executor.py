"""Run one playbook with ansible-runner, under a scrubbed environment, and map its outcome to clear errors."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from affordml import ansible_data
from affordml.errors import RunError
from affordml.run.args import RunArgs, environment, run_vars_file, runner_kwargs
from affordml.run.progress import Progress


@dataclass(frozen=True)
class RunResult:
    ident: str
    rc: int
    status: str
    artifacts: str
    progress: Progress


@contextmanager
def scrubbed_environ(env: dict[str, str]) -> Iterator[None]:
    """ansible-runner copies os.environ into the job and its artifacts: show it only `env` while it runs."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def execute(args: RunArgs, progress: Progress, on_event: Callable[[Progress, dict], None] | None = None) -> RunResult:
    import ansible_runner

    args.private_data_dir.mkdir(parents=True, exist_ok=True)
    if args.extravars:
        run_vars_file(args).write_text(ansible_data.dump(dict(args.extravars)))

    def handler(event: dict) -> bool:
        progress.on_event(event)
        if on_event:
            on_event(progress, event)
        return True

    env = environment(args, dict(os.environ))
    with scrubbed_environ(env):
        runner = ansible_runner.run(**runner_kwargs(args), envvars=env, event_handler=handler)
    return RunResult(args.ident, runner.rc, runner.status, str(runner.config.artifact_dir), progress)


def check_result(result: RunResult, phase: str) -> None:
    """Raise a one-line RunError for anything but success."""
    where = f"logs: {result.artifacts}"
    if result.rc == 0 and result.status == "successful":
        if result.progress.no_hosts_matched or not result.progress.hosts:
            raise RunError(
                f"[{phase}] the playbook matched no host: nothing was done",
                f"check the hosts in affordml.yaml and the rendered inventory ({where})",
            )
        return
    p = result.progress
    unreachable = [f for f in p.failures if p.hosts.get(f[0]) and p.hosts[f[0]].unreachable]
    if unreachable:
        host, _, msg = unreachable[0]
        raise RunError(
            f"[{phase}] host {host} is unreachable: {msg}",
            f"check that it is on, that SSH works for the configured user and key ({where})",
        )
    if p.failures:
        host, task, msg = p.failures[0]
        more = f" (and {len(p.failures) - 1} more failure(s))" if len(p.failures) > 1 else ""
        raise RunError(
            f"[{phase}] task '{task}' failed on {host}: {msg}{more}",
            f"fix the cause, then run `affordml init` again: it resumes at this phase ({where})",
        )
    if result.rc == 127:
        raise RunError(
            f"[{phase}] ansible-playbook was not found", f"reinstall affordml; its toolchain is broken ({where})"
        )
    if result.status == "canceled":
        raise RunError(f"[{phase}] the run was interrupted", "run `affordml init` again: it resumes at this phase")
    raise RunError(
        f"[{phase}] ansible-playbook ended with status {result.status} (rc {result.rc}) before any task "
        "failed: a syntax error or a missing file",
        f"see {where}/stdout",
    )
