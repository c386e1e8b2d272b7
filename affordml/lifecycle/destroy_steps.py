"""The destroy action of each Python phase (see actions.PYTHON_ACTIONS). Each step removes only what its engine
made, and leaves the run state to the caller (destroy.py forgets the phase once its step returned)."""

from __future__ import annotations

HOMES_NAMESPACE = "jupyterhub"
HOMES_SELECTOR = "component=singleuser-storage"  # what KubeSpawner labels each user's volume claim with


def destroy_ml(ctx) -> list[str]:
    """The ml phase's Helm releases, newest first (also those the plan no longer wants). The users' volume claims
    are not the chart's: they stay (delete_homes takes them, with --delete-data); so do the CRDs the releases keep
    (delete_ml_data takes them). Without --delete-data, a release that would take CRDs with it is refused."""
    from affordml.ml.phase import remove_ml_releases

    removed = remove_ml_releases(ctx, delete_data=ctx.delete_data)
    ctx.say(f"[ml] removed {len(removed)} release(s){': ' + ', '.join(removed) if removed else ''}")
    return removed


def delete_ml_data(ctx) -> dict[str, list[str]]:
    """--delete-data after the ml releases went: the users' homes and the CRDs the releases left (their queues,
    workloads and InferenceServices go with them)."""
    from affordml.ml.phase import delete_kept_crds

    return {"homes": delete_homes(ctx), "crds": delete_kept_crds(ctx)}


def delete_homes(ctx) -> list[str]:
    """--delete-data: the users' home volume claims (JupyterHub's, by KubeSpawner's label); their volumes go with
    them (local-path's reclaim policy Delete)."""
    from kubernetes import client, config

    from affordml.kube.kubeconfig import kubeconfig_path

    path = kubeconfig_path(ctx.project.secrets_dir)
    if not path.is_file() or path.is_symlink():
        ctx.say("[data] no cluster kubeconfig: no home volumes to delete")
        return []
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(path)))
    try:
        claims = core.list_namespaced_persistent_volume_claim(HOMES_NAMESPACE, label_selector=HOMES_SELECTOR).items
        for claim in claims:
            core.delete_namespaced_persistent_volume_claim(claim.metadata.name, HOMES_NAMESPACE)
            ctx.say(f"[data] deleted the home volume claim {HOMES_NAMESPACE}/{claim.metadata.name}")
    finally:
        core.api_client.close()
    return [c.metadata.name for c in claims]


def destroy_gpu(ctx) -> list[str]:
    from affordml.gpu.phase import remove_gpu_releases

    removed = remove_gpu_releases(ctx)
    ctx.say(f"[gpu] removed {len(removed)} release(s){': ' + ', '.join(removed) if removed else ''}")
    return removed


def destroy_kubernetes(ctx) -> list[str]:
    """Forget the cluster: its admin kubeconfig. The cluster itself lives on the VMs, which the cloud phase's
    destroy deletes."""
    from affordml.kube.kubeconfig import kubeconfig_path
    from affordml.safefile import remove_file

    path = kubeconfig_path(ctx.project.secrets_dir)
    if remove_file(ctx.project.root, path.relative_to(ctx.project.root)):
        ctx.say(f"[kubernetes] forgot the cluster: removed {path}")
        return [str(path)]
    ctx.say("[kubernetes] no cluster kubeconfig to forget")
    return []


def destroy_cloud(ctx) -> list[str]:
    """Everything the platform created in OpenStack (cloud/inventory.destroy), with the admin credentials this
    project may use: the kolla cloud's only when this project deployed it."""
    from keystoneauth1 import exceptions as ksa
    from openstack import exceptions

    from affordml.cloud.connect import admin_source, connect_cloud
    from affordml.cloud.faults import CloudUnreachable, api_error
    from affordml.cloud.inventory import destroy

    source = admin_source(ctx.project, system_cloud_allowed=deployed_system_cloud(ctx.state))
    admin = connect_cloud(source.path, source.cloud)
    try:
        return destroy(admin, ctx.say, ctx.project)
    except exceptions.HttpException as exc:
        raise api_error(exc, "destroy") from None
    except ksa.ClientException as exc:
        raise CloudUnreachable(
            f"destroy: OpenStack did not answer ({type(exc).__name__})",
            "check that the OpenStack services run, then run destroy again (it resumes)",
        ) from None


def deployed_system_cloud(state) -> bool:
    """True when this project's state says that it deployed (or carved on) the system-wide kolla cloud."""
    from affordml.cloud import names

    record = state.phases.get("openstack")
    cloud = state.data.get("cloud") if isinstance(state.data.get("cloud"), dict) else {}
    return (record is not None and record.status == "done") or cloud.get("admin_clouds_yaml") == names.KOLLA_CLOUDS_YAML
