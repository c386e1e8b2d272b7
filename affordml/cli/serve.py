"""`affordml serve`: model serving on the platform (KServe). `serve sample` deploys the sample InferenceService on
the plan's inference GPU share and prints how to call it; `--remove` takes it away."""

from __future__ import annotations

from typing import Annotated

import typer

serve_app = typer.Typer(help="Serve models with KServe (standard mode).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app, name="serve")


@serve_app.command("sample")
def sample(
    remove: Annotated[bool, typer.Option("--remove", help="delete the sample and its LAN Service")] = False,
) -> None:
    """Deploy KServe's iris example as InferenceService affordml-sample in namespace ml (the model is downloaded
    from the internet when it starts) and print its URL."""
    from affordml import console
    from affordml.cli import main as cli
    from affordml.ml.sample import SampleApi, apply_sample, how_to_call, remove_sample

    project = cli._project()
    objects, kubeconfig = _inputs(project)
    api = SampleApi(kubeconfig)
    try:
        if remove:
            gone = remove_sample(api, objects)
            console.line(f"serve: removed {', '.join(gone)}" if gone else "serve: the sample was not deployed")
            return
        node_port = apply_sample(api, objects)
    finally:
        api.close()
    console.line(f"serve: InferenceService ml/affordml-sample applied; LAN Service on NodePort {node_port}")
    for line in how_to_call(_node_address(project, objects.node), node_port):
        console.line(f"  {line}")


def _inputs(project):
    from affordml.kube.kubeconfig import kubeconfig_path
    from affordml.ml.sample import SAMPLE_FILE, SampleError, parse_sample
    from affordml.safefile import read_text

    objects = parse_sample(read_text(project.env_dir, SAMPLE_FILE), project.env_dir / SAMPLE_FILE)
    kubeconfig = kubeconfig_path(project.secrets_dir)
    if not kubeconfig.is_file() or kubeconfig.is_symlink():
        raise SampleError(f"no cluster kubeconfig at {kubeconfig}", "run `affordml init` first (it writes it)")
    return objects, kubeconfig


def _node_address(project, node: str) -> str:
    """The floating IP of the node the URL goes through (any node serves a NodePort), as the cloud phase
    recorded it; a placeholder when none is recorded."""
    from affordml.cloud.reachable import NotCarved, vm_addresses
    from affordml.errors import StateError
    from affordml.phases.state import load_state

    try:
        addresses = vm_addresses(load_state(project.state_file))
    except (NotCarved, StateError):
        return "<a worker's floating IP>"
    return addresses.get(node) or next(iter(addresses.values()), "<a worker's floating IP>")
