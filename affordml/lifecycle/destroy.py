"""`affordml destroy`: the destroy action of each selected phase, newest phase first, under the run lock. The run
state forgets each phase as soon as its destroy is done, so an interrupted destroy resumes where it stopped."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass

from affordml.errors import ConfigError, ConfirmationRequired, StateError
from affordml.phases.registry import PHASES, Phase, phase_names
from affordml.project import Project

RELEASE_PHASES = ("ml", "gpu")  # `destroy --releases`: the Helm releases only, the VMs stay
VM_PHASES = ("kubernetes", "cloud", "openstack")  # their destroy deletes the VMs' disks, and the homes on them
ALWAYS_TRIED = ("cloud",)  # finds only what carries the platform's marks, also after a lost state file
BACKUPS = "backups"
DATA_STEPS = {"ml": "affordml.lifecycle.destroy_steps:delete_ml_data"}  # with --delete-data, after the phase's destroy

WHAT_GOES = {
    "ml": "the ML Helm releases (JupyterHub, Kueue, KServe, cert-manager, monitoring)",
    "gpu": "the GPU Helm releases (HAMi, GPU Operator) and what they run",
    "kubernetes": "the cluster's admin kubeconfig (the cluster itself goes with its VMs)",
    "cloud": "the platform's VMs and everything on them, their network, image, flavors, keypair, project and user",
    "openstack": "OpenStack: kolla-ansible destroy removes its containers and volumes",
    "host": "the host changes, put back as they were before: kernel arguments, vfio binding, NAT, "
    "sysctls, /etc/hosts, docker settings, ufw, FORWARD policy",
}


@dataclass(frozen=True)
class Selection:
    phases: tuple[Phase, ...]
    delete_data: bool = False
    explicit: bool = False  # --only or --releases: the phases named run even where the state has no record

    def tried(self, state, name: str) -> bool:
        return self.explicit or name in ALWAYS_TRIED or recorded(state, name)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.phases]

    def deletes_vms(self) -> bool:
        return any(name in VM_PHASES for name in self.names)


def select_phases(only: list[str] | None = None, releases: bool = False, delete_data: bool = False) -> Selection:
    """Newest phase first: every phase with a destroy action, or those named (--only), or the releases."""
    from affordml.lifecycle.actions import has_action

    if only and releases:
        raise ConfigError("--only and --releases both choose what goes", "give one of them")
    wanted = set(only or (RELEASE_PHASES if releases else phase_names()))
    for name in wanted - set(phase_names()):
        raise ConfigError(f"--only {name}: unknown phase", f"use one of: {', '.join(WHAT_GOES)}")
    chosen = tuple(p for p in reversed(PHASES) if p.name in wanted and has_action(p, "destroy") and p.name in WHAT_GOES)
    if not chosen:
        names = ", ".join(sorted(wanted))
        raise ConfigError(f"--only {names}: nothing to destroy", f"use one of: {', '.join(WHAT_GOES)}")
    return Selection(chosen, delete_data, bool(only or releases))


def listing(selection: Selection) -> list[str]:
    lines = [f"{name}: {WHAT_GOES[name]}" for name in selection.names]
    if selection.delete_data:
        lines.append("data: the users' homes (volumes on the VMs), the CRDs kept with the users' queues and "
                     "InferenceServices, and the project's backups/ folder")  # fmt: skip
    else:
        lines.append("kept: the project's backups/ folder (add --delete-data to delete it too)")
    return lines


def confirmation(selection: Selection) -> ConfirmationRequired:
    names = ", ".join(selection.names)
    if set(selection.names) <= set(RELEASE_PHASES):
        what = f"destroy removes the platform's Helm releases ({names}), newest first; the VMs stay"
    else:
        what = f"destroy removes what affordml made in phase(s) {names} (listed above), newest first"
    kept = "backups/ and homes are deleted too (--delete-data)" if selection.delete_data else "backups/ is kept"
    return ConfirmationRequired(f"{what}; {kept}", "run again with --yes-i-really-really-mean-it")


def initialised_state(project: Project):
    """The project's state; refuses a folder that is not an initialised affordml project (neither a state file nor
    the project's own cloud credentials), before anything is created or asked of a cloud."""
    from affordml.phases.state import State, load_state
    from affordml.safefile import read_text

    project.refuse_non_folder()
    fix = "pass the folder of the project that ran `affordml init` (-p FOLDER); destroy touches only its things"
    if not project.root.is_dir():
        raise StateError(f"{project.root} is not an affordml project (the folder does not exist)", fix)
    project.check()
    has_state = read_text(project.root, "state.json") is not None
    has_clouds = read_text(project.root, "secrets/clouds.yaml") is not None
    if not has_state and not has_clouds:
        raise StateError(
            f"{project.root} is not an initialised affordml project (no state.json, no secrets/clouds.yaml)", fix
        )
    return load_state(project.state_file) if has_state else State()


def _releases_state(project: Project):
    """Removing Helm releases touches only the cluster the project's kubeconfig names: no state file needed, but
    that kubeconfig, checked before anything is created."""
    from affordml.errors import RunError
    from affordml.kube.kubeconfig import kubeconfig_path
    from affordml.phases.state import load_state

    project.refuse_non_folder()
    path = kubeconfig_path(project.secrets_dir)
    if not path.is_file() or path.is_symlink():
        raise RunError(f"no cluster kubeconfig at {path}", "run `affordml init phase kubernetes` first (it writes it)")
    project.check()
    return load_state(project.state_file)


def recorded(state, name: str) -> bool:
    """Whether the phase left something to destroy: it ran (done, failed or stopped) by the run state."""
    record = state.phases.get(name)
    return (record is not None and record.status in ("done", "failed", "running")) or bool(state.data.get(name))


def holds_user_data(state) -> bool:
    """The ml phase ran: the users' homes live on the cluster's volumes, on the VMs' disks."""
    return recorded(state, "ml")


def refuse_losing_data(selection: Selection, state) -> None:
    if selection.deletes_vms() and holds_user_data(state) and not selection.delete_data:
        raise ConfirmationRequired(
            "destroy would delete the VMs and with them the users' homes (JupyterHub's volumes live on the VMs' disks)",
            "copy out what the users need, then add --delete-data; or `destroy --releases` keeps the VMs and homes",
        )


def run_destroy(
    project: Project,
    say: Callable[[str], None],
    selection: Selection | None = None,
    run_action: Callable | None = None,
) -> dict[str, object]:
    """Each selected phase's destroy action under the run lock; returns phase -> what its action returned."""
    from affordml.lifecycle.actions import run_action as default_action
    from affordml.phases.lock import RunLock

    selection = selection or select_phases()
    run_action = run_action or default_action
    state = _releases_state(project) if set(selection.names) <= set(RELEASE_PHASES) else initialised_state(project)
    refuse_losing_data(selection, state)
    results: dict[str, object] = {}
    with RunLock(project.lock_file, say) as lock:
        ctx = destroy_context(project, state, say, lock, selection.delete_data)
        for phase in selection.phases:
            if not selection.tried(state, phase.name):
                say(f"[{phase.name}] nothing to destroy: the phase has not run in this project")
                continue
            say(f"[{phase.name}] destroy: {WHAT_GOES[phase.name]}")
            results[phase.name] = run_action(phase, "destroy", ctx)
            if selection.delete_data and phase.name in DATA_STEPS:
                results["data"] = _data_step(phase.name)(ctx)
            forget_phase(project, state, phase.name)
            say(f"[{phase.name}] destroyed")
        if selection.delete_data:
            delete_backups(project, say)
    _say_pending_reboot(state, say)
    return results


def _say_pending_reboot(state, say) -> None:
    from affordml.phases.workflow import REBOOT_KEY

    hosts = state.data.get(REBOOT_KEY)
    if hosts and isinstance(hosts, list):
        say(f"[destroy] reboot {', '.join(hosts)}: the running kernel still has affordml's IOMMU and vfio arguments")


def _data_step(name: str):
    from importlib import import_module

    module, function = DATA_STEPS[name].split(":")
    return getattr(import_module(module), function)


def destroy_context(project: Project, state, say, lock, delete_data: bool = False):
    from affordml.phases.workflow import PhaseContext

    config = _config_if_any(project)
    return PhaseContext(project, config, None, {}, state, say, run_lock=lock, confirm=True, delete_data=delete_data)


def _config_if_any(project: Project):
    """affordml.yaml where there is one (the playbook and Helm phases read it); a project that only holds cloud
    credentials has none, and the cloud's destroy needs none."""
    from affordml.config.load import load_config
    from affordml.safefile import read_text

    if read_text(project.root, "affordml.yaml") is None:
        return None
    return load_config(project.config_file)


def forget_phase(project: Project, state, name: str) -> None:
    """The phase's record and data go; a later phase still recorded must run again (pending)."""
    from affordml.phases.state import save_state

    state.phases.pop(name, None)
    state.data.pop(name, None)
    names = phase_names()
    for later in names[names.index(name) + 1 :]:
        if later in state.phases:
            state.phases[later].status = "pending"
            state.phases[later].message = f"phase {name} was destroyed"
    if project.state_file.exists():
        save_state(project.state_file, state)


def delete_backups(project: Project, say) -> None:
    path = project.root / BACKUPS
    if path.is_symlink():
        raise StateError(f"{path} is a link", f"remove the link yourself (`rm {path}`); destroy never follows one")
    if not path.is_dir():
        say("[data] no backups/ folder")
        return
    shutil.rmtree(path)  # the fd-based rmtree: never follows a link inside
    say(f"[data] deleted {path}")
