"""Serving against real engines (outside CI; tests/gpustack/README.md): cert-manager v1.17.0, kserve-crd and kserve
v0.20.0 (the charts at the locked tags, packaged by the real helm) install in SERVING_RELEASES' order with the
rendered values through affordml's helm driver on the real kube-apiserver (tests/kubecp), with the stand-in
kubelet; `affordml serve sample`'s own code puts the rendered sample InferenceService and its NodePort Service
through the real API, which refuses a broken InferenceService by the CRD's own schema; a second run changes
nothing. Prints the table release -> installed/refused per case."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.gpustack.webhooks import without_webhooks
from tests.kubecp.fixtures import control_plane_factory  # noqa: F401 - the real control plane fixture

CASES = ("server-a100-mig", "workstation-2gpu--hami-one-worker")  # a MIG share and a HAMi share
TABLE: list[str] = []


FLOATING_IPS: dict[str, str] = {}


def record_floating_ips(ctx) -> None:
    """What the cloud phase records (documentation addresses: the CLI only prints them)."""
    from affordml.phases.state import State, save_state

    FLOATING_IPS.update({vm.name: f"192.0.2.{20 + i}" for i, vm in enumerate(ctx.plan.vms)})
    servers = {vm.name: {"floating_ip": FLOATING_IPS[vm.name]} for vm in ctx.plan.vms}
    save_state(ctx.project.state_file, State(data={"cloud": {"servers": servers}}))


def run_cli(ctx, *args: str) -> subprocess.CompletedProcess:
    """The real console entry point, as the user runs it, on this project."""
    argv = [sys.executable, "-m", "affordml", "--project-dir", str(ctx.project.root), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFORDML_")}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)


def lan_node_port(api) -> int:
    from kubernetes import client

    return client.CoreV1Api(api).read_namespaced_service("affordml-sample-lan", "ml").spec.ports[0].node_port


def serving_driver(ctx, helm_tools, lines: list[str]):
    from affordml.helm.cluster import NamespaceView
    from affordml.helm.driver import HelmDriver
    from affordml.helm.local import helm_binary
    from affordml.kube.kubeconfig import kubeconfig_path

    kubeconfig = kubeconfig_path(ctx.project.secrets_dir)
    cache = ctx.project.root / "cache" / "helm"
    view = NamespaceView(kubeconfig)
    helm = helm_binary(helm_tools["helm"], cache)
    return HelmDriver(helm, kubeconfig, cache / "home", lines.append, view.pods, view.warnings), kubeconfig


def install(driver, ctx, helm_tools, release) -> str:
    from affordml.errors import RunError

    values = [ctx.project.env_dir / v for v in release.values]
    archive = helm_tools[release.chart]
    try:
        return driver.ensure(release, archive, values, archive).action
    except RunError as exc:
        return f"refused: {exc.one_line()}"


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_serving_releases_install_and_the_api_takes_the_sample(name, control_plane_factory, helm_tools, tmp_path):  # noqa: F811
    from kubernetes import client

    from affordml.ml.sample import SAMPLE_FILE, SampleApi, SampleError, apply_sample, parse_sample, remove_sample
    from affordml.ml.serving import CERT_MANAGER, KSERVE, KSERVE_CRD, SERVING_RELEASES
    from tests.gpustack.kubelet import StandInKubelet
    from tests.integration.gpu.test_gpu_phase_real import CASES as GPU_CASES
    from tests.integration.gpu.test_gpu_phase_real import make_context, register_nodes

    cp = control_plane_factory()
    lines: list[str] = []
    ctx = make_context(GPU_CASES[name], tmp_path / "project", cp.admin_kubeconfig(), lines)
    register_nodes(cp, ctx.plan)
    api = cp.client()
    driver, kubeconfig = serving_driver(ctx, helm_tools, lines)
    actions, seconds = {}, {}
    sample_text = (ctx.project.env_dir / SAMPLE_FILE).read_text()
    objects = parse_sample(sample_text, ctx.project.env_dir / SAMPLE_FILE)
    record_floating_ips(ctx)
    no_kserve = run_cli(ctx, "serve", "sample")  # before any release: the API answers, KServe's CRD is absent
    with StandInKubelet(api):
        for release in (CERT_MANAGER, KSERVE_CRD):
            started = time.monotonic()
            actions[release.name] = install(driver, ctx, helm_tools, release)
            seconds[release.name] = time.monotonic() - started

        # the sample through `affordml serve sample`'s code, on the real API with KServe's CRD (before KServe's
        # own webhook exists: nothing could serve it here)
        applied = run_cli(ctx, "serve", "sample")
        sample_api = SampleApi(kubeconfig)
        try:
            node_port = lan_node_port(api)
            live = client.CustomObjectsApi(api).get_namespaced_custom_object(
                "serving.kserve.io", "v1beta1", "ml", "inferenceservices", "affordml-sample"
            )
            broken = copy.deepcopy(objects.inference_service)
            broken["metadata"]["name"] = "affordml-sample-broken"
            broken["spec"]["predictor"]["minReplicas"] = "one"
            with pytest.raises(SampleError) as refused:
                apply_sample(sample_api, type(objects)(broken, objects.lan_service))
            unknown = copy.deepcopy(objects.inference_service)
            unknown["metadata"]["name"] = "affordml-sample-unknown"
            unknown["spec"]["predictor"]["containers"][0]["imageName"] = "typo"
            with pytest.raises(SampleError) as refused_unknown:
                apply_sample(sample_api, type(objects)(unknown, objects.lan_service))
            removed = run_cli(ctx, "serve", "sample", "--remove")
            removed_again = remove_sample(sample_api, objects)
        finally:
            sample_api.close()

        blocked = install(driver, ctx, helm_tools, KSERVE)  # cert-manager's webhooks registered, nothing serves them
        dropped = without_webhooks(api, CERT_MANAGER.namespace)
        started = time.monotonic()
        actions[KSERVE.name] = install(driver, ctx, helm_tools, KSERVE)
        seconds[KSERVE.name] = time.monotonic() - started
        again = {r.name: install(driver, ctx, helm_tools, r) for r in SERVING_RELEASES}

    for release in SERVING_RELEASES:
        TABLE.append(f"| {name} | {release.name} | {actions[release.name]} | {seconds[release.name]:.0f} s |")
    assert actions == {r.name: "installed" for r in SERVING_RELEASES}, lines
    assert again == {r.name: "unchanged" for r in SERVING_RELEASES}, lines

    # the sample as the API stored it: the plan's share, and a NodePort the API allocated
    limits = live["spec"]["predictor"]["containers"][0]["resources"]["limits"]
    assert limits == objects.inference_service["spec"]["predictor"]["containers"][0]["resources"]["limits"]
    assert 30000 <= node_port <= 32767
    print(applied.stdout)
    url = f"http://{FLOATING_IPS[objects.node]}:{node_port}/v1/models/affordml-sample:predict"
    assert applied.returncode == 0 and f"URL (from the LAN): {url}" in applied.stdout, applied
    said = refused.value.one_line()
    assert "refused the sample" in said and ".spec.predictor.minReplicas: expected numeric" in said, said
    assert "imageName" in refused_unknown.value.one_line()  # strict field validation: unknown fields refused
    assert no_kserve.returncode == 6 and len(no_kserve.stderr.splitlines()) == 1, no_kserve
    assert "KServe is not installed in this cluster (no CRD inferenceservices.serving.kserve.io)" in no_kserve.stderr
    assert removed.returncode == 0, removed
    assert "serve: removed InferenceService ml/affordml-sample, Service ml/affordml-sample-lan" in removed.stdout
    assert removed_again == []
    assert dropped, "cert-manager's chart should have made its webhook configurations"
    # the only difference between this refusal and the install that follows is the dropped webhook configurations
    assert blocked.startswith("refused: release kserve (namespace kserve) failed"), blocked
    assert "removed again (it was its first install)" in blocked, blocked
    TABLE.append(f"| {name}, webhook not served | kserve | {blocked[:200]} | |")
    print("\n".join(["| case | release | first run | time |", *TABLE]))

    # the rendered values reached KServe's config: Standard mode, no Ingress
    config = client.CoreV1Api(api).read_namespaced_config_map("inferenceservice-config", "kserve").data
    assert '"defaultDeploymentMode": "Standard"' in config["deploy"], config["deploy"]
    assert '"disableIngressCreation": true' in config["ingress"]
    assert '"ingressDomain"  : "svc.cluster.local"' in config["ingress"]
    crds = {c.metadata.name for c in client.ApiextensionsV1Api(api).list_custom_resource_definition().items}
    assert {"certificates.cert-manager.io", "inferenceservices.serving.kserve.io"} <= crds
    Path(tmp_path / "table.md").write_text("\n".join(TABLE))


@pytest.mark.slow
def test_kserve_without_cert_manager_is_refused_in_one_line(control_plane_factory, helm_tools, tmp_path):  # noqa: F811
    """Why cert-manager comes first: KServe's chart holds a cert-manager Issuer and Certificate."""
    from affordml.ml.serving import KSERVE, KSERVE_CRD
    from tests.gpustack.kubelet import StandInKubelet
    from tests.integration.gpu.test_gpu_phase_real import CASES as GPU_CASES
    from tests.integration.gpu.test_gpu_phase_real import make_context, register_nodes

    cp = control_plane_factory()
    lines: list[str] = []
    ctx = make_context(GPU_CASES[CASES[0]], tmp_path / "project", cp.admin_kubeconfig(), lines)
    register_nodes(cp, ctx.plan)
    driver, _kubeconfig = serving_driver(ctx, helm_tools, lines)
    with StandInKubelet(cp.client()):
        crd = install(driver, ctx, helm_tools, KSERVE_CRD)
        kserve = install(driver, ctx, helm_tools, KSERVE)
    TABLE.append(f"| {CASES[0]}, no cert-manager | kserve | {kserve[:160]} | |")
    print("\n".join(["| case | release | first run | time |", *TABLE]))
    assert crd == "installed", lines
    assert kserve.startswith("refused: release kserve (namespace kserve) failed") and "\n" not in kserve, kserve
    assert "cert-manager.io" in kserve or "Certificate" in kserve or "Issuer" in kserve, kserve
