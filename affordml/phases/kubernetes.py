"""The `kubernetes` phase: wires the artifact store (Kubespray's tarball), the toolchains (its virtualenv), the
cloud phase's record (where the VMs answer) and affordml/kube (inventory, cluster.yml, kubeconfig, node wait)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from affordml.errors import RunError
from affordml.kube.access import ClusterAccess, cluster_access

PHASE = "kubernetes"
REBOOT_MARK = "/var/run/reboot-required"
UPGRADE_PLAYBOOK = "upgrade-cluster.yml"  # Kubespray's graceful upgrade (cordon, drain, uncordon per node)


def state_inputs(state_data: dict) -> dict:
    """What of the run state decides, beside env/kubespray/, whether a done kubernetes phase runs again: the
    VMs (a re-created VM has a new id) and where they answer."""
    record = state_data.get("cloud") or {}
    servers = record.get("servers") or {}
    return {
        "servers": {vm: (s.get("id"), s.get("floating_ip")) for vm, s in sorted(servers.items())},
        "ssh_key": record.get("ssh_key"),
    }


def playbook_for(ctx) -> str:
    """cluster.yml to deploy; upgrade-cluster.yml for the upgrade action (affordml upgrade's Kubernetes hops)."""
    from affordml.kube.cluster import PLAYBOOK

    return UPGRADE_PLAYBOOK if getattr(ctx, "action", "deploy") == "upgrade" else PLAYBOOK


def access_from_context(ctx) -> ClusterAccess:
    """The VMs as the PC reaches them: each one's floating IP (the cloud phase's record), the platform's key."""
    from affordml.cloud.reachable import vm_addresses

    addresses = vm_addresses(ctx.state.data)  # a one-line error when the cloud phase has not given them one
    record = ctx.state.data["cloud"]
    user = (ctx.lock.get("guest_image") or {}).get("login_user", "ubuntu")
    return cluster_access(
        [(vm.name, vm.role) for vm in ctx.plan.vms],
        addresses,
        user,
        Path(record["ssh_key"]),
        ctx.project.known_hosts,
    )


def refuse_pending_reboots(ctx, access: ClusterAccess) -> None:
    """The PC first (recorded by the host phase), then each VM (Ubuntu's reboot-required mark); one line each."""
    from affordml.kube import remote

    hosts = ctx.state.data.get("reboot_required") or []
    if hosts:
        raise RunError(
            f"[kubernetes] {', '.join(hosts)} must reboot first (the host phase changed kernel settings)",
            "reboot it, then run `affordml init` again: it resumes",
        )
    for node in access.nodes:
        out = remote.run(node, f"test -e {REBOOT_MARK} && echo reboot-required; {remote.as_root(node, ['true'])}")
        if "reboot-required" in out.stdout:
            raise RunError(
                f"[kubernetes] VM {node.name} ({node.address}) has a pending reboot ({REBOOT_MARK})",
                f"reboot it (`openstack server reboot affordml-{node.name}` with the affordml cloud), then run "
                "`affordml init` again",
            )
        if out.rc != 0:
            raise RunError(
                f"[kubernetes] VM {node.name}: user {node.user} cannot run commands as root without a password",
                "the guest image must give its login user passwordless sudo (Ubuntu cloud images do)",
            )


def kubespray_tree(ctx, fetch_tarball: Callable[[], Path] | None = None) -> Path:
    from affordml.kube.source import unpacked_tree

    tarball = fetch_tarball() if fetch_tarball else ctx.artifact_store().fetch("kubespray")
    return unpacked_tree(tarball, ctx.project.root / "cache" / "kubespray", ctx.lock["kubespray"]["version"])


def run_kubernetes_phase(ctx, fetch_tarball: Callable[[], Path] | None = None, ready_timeout_s: float | None = None):
    """Preflight, Kubespray's cluster.yml, the admin kubeconfig, the node wait; returns the run's ident."""
    from affordml.kube.kubeconfig import fetch_admin_kubeconfig

    started = time.monotonic()
    if ctx.dry_run:  # Kubespray has no meaningful check mode; say what would run
        vms = ", ".join(vm.name for vm in ctx.plan.vms)
        ctx.say(f"[{PHASE}] would run Kubespray {ctx.lock['kubespray']['version']} {playbook_for(ctx)} on {vms}")
        return None
    access = access_from_context(ctx)
    refuse_pending_reboots(ctx, access)
    ident = run_kubespray(ctx, access, kubespray_tree(ctx, fetch_tarball))
    kubeconfig = fetch_admin_kubeconfig(access, ctx.project.secrets_dir)
    ctx.say(f"[{PHASE}] admin kubeconfig in {kubeconfig} (mode 0600), API {access.api_url}")
    rows = wait_for_nodes(ctx, kubeconfig, [n.name for n in access.nodes], ready_timeout_s)
    ctx.state.data[PHASE] = {
        "kubespray": ctx.lock["kubespray"]["version"],
        "api": access.api_url,
        "kubeconfig": str(kubeconfig),
        "nodes": [r.to_dict() for r in rows],
    }
    ctx.say(f"[{PHASE}] {len(rows)} node(s) Ready ({time.monotonic() - started:.0f}s)")
    return ident


def run_kubespray(ctx, access: ClusterAccess, tree: Path, playbook: str | None = None, limit: str | None = None) -> str:
    """A Kubespray playbook (default: playbook_for(ctx); facts.yml and scale.yml for add-node) with its own
    toolchain, the rendered and the per-run connection inventories; one-line failures."""
    from affordml import console
    from affordml.kube import cluster
    from affordml.kube.inventory import write_connection_inventory
    from affordml.kube.source import kubespray_toolchain
    from affordml.phases.steps import EXTRA_VARS_FILE, new_ident
    from affordml.run.progress import Progress
    from affordml.run.toolchains import ensure

    toolchain_bin = ensure(kubespray_toolchain(tree, ctx.lock), lambda line: ctx.say(f"[{PHASE}] {line}"))
    ident = new_ident(PHASE)
    extra = ctx.project.root / EXTRA_VARS_FILE
    run = cluster.ClusterRun(
        ident=ident,
        runs_dir=ctx.project.runs_dir,
        tree=tree,
        env_inventory=ctx.project.env_dir / "kubespray" / "inventory.yml",
        connection_inventory=write_connection_inventory(ctx.project.runs_dir / ident / "connection.yml", access),
        toolchain_bin=toolchain_bin,
        vars_files=(extra,) if extra.is_file() else (),
        playbook=playbook or playbook_for(ctx),
        limit=limit,
    )
    progress = Progress(PHASE)
    lock = ctx.run_lock
    with console.run_view(progress) as on_event:
        result, roles = cluster.execute(run, progress, on_event, lock.started_child if lock else None)
    if lock:
        lock.child_ended()
    ctx.say(f"[{PHASE}] {progress.summary()}; logs in {result.artifacts}")
    cluster.explain_failure(result, roles, {n.name: n.address for n in access.nodes})
    return ident


def wait_for_nodes(ctx, kubeconfig: Path, names: list[str], timeout_s: float | None = None):
    from affordml.kube import nodes

    api = nodes.Cluster(kubeconfig)
    try:
        return nodes.wait_ready(api.nodes, names, ctx.say, timeout_s or nodes.READY_TIMEOUT_S)
    finally:
        api.close()
