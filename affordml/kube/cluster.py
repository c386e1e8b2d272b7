"""Kubespray's cluster.yml through ansible-runner: arguments (pure), the run, and its failures in one line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from affordml.errors import RunError
from affordml.run.args import RunArgs, build_run_args

PLAYBOOK = "cluster.yml"
ASSERTION_ROLES = ("validate_inventory",)


@dataclass(frozen=True)
class ClusterRun:
    """Everything one Kubespray run needs; paths only (secrets stay in their files)."""

    ident: str
    runs_dir: Path
    tree: Path  # the unpacked Kubespray tree
    env_inventory: Path  # env/kubespray/inventory.yml (groups; group_vars beside it)
    connection_inventory: Path  # how to reach the VMs (written per run)
    toolchain_bin: Path
    vars_files: tuple[Path, ...] = ()  # e.g. the project's extra-vars.yml
    check: bool = False
    playbook: str = PLAYBOOK
    limit: str | None = None  # scale.yml --limit: the new nodes only (Kubespray's docs/operations/nodes.md)


def run_args(run: ClusterRun) -> RunArgs:
    """Kubespray's own ansible.cfg (its roles, plugins and callbacks), its playbook, both inventories."""
    return build_run_args(
        ident=run.ident,
        runs_dir=run.runs_dir,
        playbook=run.tree / run.playbook,
        inventories=[run.env_inventory, run.connection_inventory],
        vars_files=list(run.vars_files),
        extravars={},
        toolchain_bin=run.toolchain_bin,
        check=run.check,
        limit=run.limit,
        config_file=run.tree / "ansible.cfg",
    )


@dataclass
class FailureRoles:
    """ansible-runner events -> the role of each failed task (the progress model keeps host, task, message)."""

    roles: dict[tuple[str, str], str] = field(default_factory=dict)

    def on_event(self, event: dict) -> None:
        if event.get("event") in ("runner_on_failed", "runner_on_unreachable"):
            data = event.get("event_data") or {}
            if not data.get("ignore_errors"):
                self.roles.setdefault((data.get("host", ""), data.get("task", "")), data.get("role") or "")


def execute(run: ClusterRun, progress, on_event: Callable | None = None, on_child: Callable | None = None):
    """Run cluster.yml; returns (RunResult, FailureRoles). on_child gets ansible-playbook's pid (the run lock
    records it, so that a later run finds an orphan of this one)."""
    from affordml.run.executor import execute as execute_run

    roles = FailureRoles()

    def both(prog, event: dict) -> None:
        roles.on_event(event)
        if on_event:
            on_event(prog, event)

    return execute_run(run_args(run), progress, both, on_child), roles


def explain_failure(result, roles: FailureRoles, addresses: dict[str, str]) -> None:
    """Nothing on success; a Kubespray assertion and an unreachable VM each get their own line; anything else the
    generic one (host, task, message, log folder)."""
    from affordml.run.executor import check_result

    where = f"logs: {result.artifacts}"
    progress = result.progress
    if result.rc == 0 and result.status == "successful" and progress.hosts:
        return  # Kubespray's optional plays (bastion, calico route reflectors, ...) match no host: that is normal
    for host, task, message in progress.failures:
        role = roles.roles.get((host, task), "")
        counts = progress.hosts.get(host)
        if counts is not None and counts.unreachable:
            raise RunError(
                f"[kubernetes] VM {host} ({addresses.get(host, '?')}) is unreachable over SSH: {message}",
                "check that the VM is ACTIVE (`affordml status`), that its address answers from this PC and that "
                f"it accepts the platform's SSH key; then run `affordml init` again ({where})",
            )
        if role in ASSERTION_ROLES:
            raise RunError(
                f"[kubernetes] Kubespray refused the inventory: {task}: {message}",
                "the settings in env/kubespray/ do not fit this Kubespray version: check the kubernetes settings "
                f"in affordml.yaml, or report it as a bug with `affordml plan --json` ({where})",
            )
    check_result(result, "kubernetes")
