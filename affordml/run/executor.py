"""Run one playbook with ansible-runner, under a scrubbed environment, and map its outcome to clear errors."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from affordml import ansible_data, procs
from affordml.errors import Interrupted, RunError
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


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopOnSignal:
    """While ansible-playbook runs: Ctrl-C, SIGTERM and SIGHUP stop its whole process group (SIGTERM, then
    SIGKILL after a grace period) before affordml goes on to release its lock. ansible-runner starts the child
    in a session of its own (a pty), so a terminal's Ctrl-C never reaches it: affordml must stop it.

    ansible-runner polls `cancel` about once a second; the first poll also finds the child (our only child, a
    session leader) and reports it to `on_child` (the run lock records it for a run after a SIGKILL)."""

    def __init__(self, on_child: Callable[[int], None] | None = None, grace_s: float = 5.0) -> None:
        self.on_child = on_child
        self.grace_s = grace_s
        self.signum: int | None = None
        self.child: procs.Proc | None = None
        self._saved: dict[int, object] = {}

    def __enter__(self) -> StopOnSignal:
        for signum in STOP_SIGNALS:
            self._saved[signum] = signal.signal(signum, self._note)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)

    def _note(self, signum, _frame) -> None:
        self.signum = self.signum or signum

    def cancel(self) -> bool:
        if self.child is None:
            self.child = next((p for p in procs.children(os.getpid()) if p.sid == p.pid), None)
            if self.child is not None and self.on_child:
                self.on_child(self.child.pid)
        if self.signum is None:
            return False
        if self.child is not None:
            procs.stop_group(self.child.pgid, self.grace_s)
        return True

    def finish(self) -> None:
        """After the runner returned: nothing of the child's group may be left; a signal ends the run."""
        if self.child is not None:
            procs.stop_group(self.child.pgid, self.grace_s)
        if self.signum is not None:
            name = signal.Signals(self.signum).name
            raise Interrupted(
                self.signum,
                f"stopped by {name}: ansible-playbook (process group {self.child.pgid if self.child else '-'}) "
                "was stopped before the lock was released",
                "run the same command again (`affordml init` resumes at this phase; a backup stopped half-way is "
                "listed as incomplete and a new one is taken)",
            )


def execute(
    args: RunArgs,
    progress: Progress,
    on_event: Callable[[Progress, dict], None] | None = None,
    on_child: Callable[[int], None] | None = None,
) -> RunResult:
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
    with StopOnSignal(on_child) as stopper:
        with scrubbed_environ(env):
            runner = ansible_runner.run(
                **runner_kwargs(args),
                envvars=env,
                event_handler=handler,
                cancel_callback=stopper.cancel,
                settings={"pexpect_timeout": 1},
            )
        stopper.finish()
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
