"""The ml hop of `affordml upgrade` against real engines (outside CI; tests/gpustack/README.md): the previous lock's
charts (tests/fixtures/locks/2026.05.yaml: kube-prometheus-stack 87.9.0 with its subcharts, Kueue 0.18.6,
cert-manager v1.17.0, KServe v0.19.0; the chart sources at those tags, charts.PREVIOUS_CHART_TREES) installed by the
ml phase on the real control plane of tests/kubecp, users' objects made, then `run_upgrade` to this lock through
the phase registry. Shows each release at the new chart, the CRDs at the new charts' versions (the monitoring
CRDs, which helm never upgrades, applied by the phase from the new chart; Kueue's and KServe's templated CRDs
upgraded by helm), the users' objects still there, and a second run that changes nothing. Then `affordml destroy
--only ml`'s step removes the releases, Kueue without `--wait` (timed). JupyterHub is off here: Kueue's pod webhooks
cover its namespace (tests/integration/ml/test_ml_phase_real.py runs it alone)."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import yaml

from affordml.lifecycle.rules import lock_summary
from affordml.phases.state import load_state, save_state
from affordml.versions import load_lock
from tests.gpustack.webhooks import without_webhooks

REPO = Path(__file__).resolve().parents[3]
PREVIOUS_LOCK = REPO / "tests" / "fixtures" / "locks" / "2026.05.yaml"
FIXTURE = REPO / "tests" / "fixtures" / "hardware" / "desktop-rtx4090.json"
ML = {"monitoring": True, "training_queue": True, "inference": True, "jupyterhub": False}
ML_CHARTS = ("kube_prometheus_stack", "kueue", "kserve", "jupyterhub")
SERVICEMONITORS = "servicemonitors.monitoring.coreos.com"
WORKLOADS = "workloads.kueue.x-k8s.io"
INFERENCESERVICES = "inferenceservices.serving.kserve.io"
PLANNED_STEPS = [
    ("kube_prometheus_stack", "87.9.0", "88.5.3"),
    ("kserve", "v0.19.0", "v0.20.0"),
    ("kueue", "v0.18.6", "v0.19.2"),
    ("jupyterhub", "4.3.5", "4.4.0"),
]
CRD_GROUPS = {"monitoring.coreos.com", "kueue.x-k8s.io", "serving.kserve.io", "cert-manager.io"}


@pytest.fixture(scope="module")
def charts_by_lock():
    """artifact name -> archive, for the previous lock and for this one (kube-prometheus-stack whole: the ml phase
    installs all of it)."""
    from tests.gpustack import charts

    reason = charts.previous_unavailable()
    if reason:
        pytest.skip(reason)
    from tests.artifacts.realfiles import cache_dir, helm_binary, helm_release_tarball

    helm, cache = helm_binary(), cache_dir() / "gpu-charts"
    tools = {"helm": helm_release_tarball(), "helm_bin": helm}
    new = {**tools, **charts.chart_archives(helm, cache), "chart/kube-prometheus-stack": charts.monitoring_chart(cache)}
    old = {**tools, **charts.chart_archives(helm, cache / "previous", charts.PREVIOUS_CHART_TREES)}
    old["chart/kube-prometheus-stack"] = charts.monitoring_chart(cache / "previous", previous=True)
    return old, new


def previous_lock() -> dict:
    """This lock with the ml charts at the previous lock's versions (the other engines as they are: one ml hop)."""
    lock, before = copy.deepcopy(load_lock()), yaml.safe_load(PREVIOUS_LOCK.read_text())
    lock["name"] = before["name"]
    for name in ML_CHARTS:
        lock[name]["version"] = before[name]["version"]
    return lock


def stand_in_hooks(api, real_after: dict) -> dict:
    """After each release: its webhooks dropped (see without_webhooks), then the phase's own hook (Kueue's queue
    objects, applied by the ml phase's code)."""
    from affordml.ml.releases import all_ml_releases

    def after(release):
        def hook(ctx, kubeconfig):
            without_webhooks(api, release.namespace)
            if release.name in real_after:
                real_after[release.name](ctx, kubeconfig)

        return hook

    return {release.name: after(release) for release in all_ml_releases()}


USERS_OBJECTS = [
    ("kueue.x-k8s.io", "v1beta2", "localqueues", {"clusterQueue": "team-a"}),
    ("monitoring.coreos.com", "v1", "servicemonitors", {"selector": {"matchLabels": {"app": "team-a"}},
                                                         "endpoints": [{"port": "metrics"}]}),
    ("monitoring.coreos.com", "v1", "prometheusrules", {"groups": [{"name": "team-a", "rules": [
        {"alert": "TeamAJobStuck", "expr": "vector(0) > 1", "for": "10m"}]}]}),
]  # fmt: skip


def make_users_objects(api) -> None:
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    for group, version, plural, spec in USERS_OBJECTS:
        kind = {"localqueues": "LocalQueue", "servicemonitors": "ServiceMonitor", "prometheusrules": "PrometheusRule"}
        body = {"apiVersion": f"{group}/{version}", "kind": kind[plural], "metadata": {"name": "team-a"}, "spec": spec}
        custom.create_namespaced_custom_object(group, version, "ml", plural, body)


def users_objects(api) -> list[str]:
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    return [
        f"{plural}/{obj['metadata']['name']}"
        for group, version, plural, _ in USERS_OBJECTS
        for obj in custom.list_namespaced_custom_object(group, version, "ml", plural)["items"]
        if obj["metadata"]["name"] == "team-a"
    ]


def crd_marks(api) -> dict:
    """A field of each CRD that changed between the two locks' charts."""
    from kubernetes import client

    ext = client.ApiextensionsV1Api(api)
    monitors = ext.read_custom_resource_definition(SERVICEMONITORS).metadata.annotations
    workloads = ext.read_custom_resource_definition(WORKLOADS).spec.versions
    isvc = ext.read_custom_resource_definition(INFERENCESERVICES).spec.versions[0].schema.open_apiv3_schema
    return {
        "servicemonitors operator.prometheus.io/version": monitors["operator.prometheus.io/version"],
        "workloads spec.podSets maxItems": {
            v.name: v.schema.open_apiv3_schema.properties["spec"].properties["podSets"].max_items for v in workloads
        },
        "inferenceservices spec fields": sorted(isvc.properties["spec"].properties),
    }


def helm_processes(root: Path) -> list[str]:
    """Processes whose command line names the project folder (helm runs from its cache there)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and str(root).encode() in argv[0]:
            found.append(b" ".join(argv).decode(errors="replace")[:200])
    return found


def crd_versions(api) -> dict[str, str]:
    from kubernetes import client

    return {
        c.metadata.name: c.metadata.resource_version
        for c in client.ApiextensionsV1Api(api).list_custom_resource_definition().items
    }


def previous_platform(cp, ml: dict, tmp_path: Path, say):
    """A project whose env/ is rendered for the previous lock, the ml components `ml` on, nodes registered."""
    from affordml.render.project import render_project
    from tests.integration.ml.test_ml_phase_real import make_context, prepare_cluster

    ctx = make_context(
        {"fixture": FIXTURE.stem, "config": {"ml": ml}}, tmp_path / "project", cp.admin_kubeconfig(), say
    )
    ctx.plan.ml.update(ml)
    hosts = [{"name": ctx.config.hosts[0].name}]
    (ctx.project.root / "affordml.yaml").write_text(yaml.safe_dump({"hosts": hosts, "ml": ml}))
    previous = previous_lock()
    render_project(ctx.project, ctx.plan, ctx.config, previous)
    ctx.lock = previous
    prepare_cluster(cp, ctx.plan)
    return ctx, previous


@pytest.mark.slow
def test_ml_hop_upgrades_the_charts_and_their_crds(control_plane_factory, charts_by_lock, tmp_path, monkeypatch):
    from kubernetes import client

    from affordml.gpu.phase import make_driver
    from affordml.lifecycle.destroy_steps import destroy_ml
    from affordml.lifecycle.run import UpgradeOptions, run_upgrade
    from affordml.ml import phase
    from affordml.ml.releases import all_ml_releases
    from affordml.phases import steps
    from affordml.render.project import render_project
    from tests.gpustack.kubelet import StandInKubelet

    old, new = charts_by_lock
    cp = control_plane_factory()
    lines: list[str] = []
    said_at: dict[str, float] = {}

    def say(line: str) -> None:
        lines.append(line)
        said_at[line] = time.monotonic()
        print(line, flush=True)

    ctx, previous = previous_platform(cp, ML, tmp_path, say)
    project = ctx.project
    api = cp.client()
    monkeypatch.setattr(phase, "AFTER", stand_in_hooks(api, dict(phase.AFTER)))
    timings = {}
    with StandInKubelet(api):
        started = time.monotonic()
        phase.run_ml_phase(ctx, lambda name: old[name])  # what the previous affordml installed
        timings["previous install"] = time.monotonic() - started
        installed = ctx.state.data["ml"]["releases"]
        make_users_objects(api)
        before = crd_marks(api)
        ctx.state.phase("ml").status = "done"
        ctx.state.data["lock"] = lock_summary(previous)
        save_state(project.state_file, ctx.state)

        monkeypatch.setitem(steps.PYTHON_STEPS, "ml", lambda c: phase.run_ml_phase(c, lambda name: new[name]))
        options = UpgradeOptions(facts_file=FIXTURE, confirm=True)
        started = time.monotonic()
        plan = run_upgrade(project, options, say)
        timings["upgrade"] = time.monotonic() - started
        after = crd_marks(api)
        upgraded = load_state(project.state_file).data["ml"]["releases"]

        resource_versions = crd_versions(api)
        render_project(project, ctx.plan, ctx.config, load_lock())
        ctx.lock = load_lock()
        started = time.monotonic()
        phase.run_ml_phase(ctx, lambda name: new[name])  # the upgrade action again, as a resumed upgrade runs it
        timings["again"] = time.monotonic() - started
        again = ctx.state.data["ml"]["releases"]
        unchanged_crds = crd_versions(api) == resource_versions
        nothing_to_do = run_upgrade(project, options, say)
        history = {r.name: make_driver(ctx, lambda name: new[name]).history(r) for r in all_ml_releases()[:5]}
        users = users_objects(api)

        monkeypatch.setattr(ctx, "artifact_store", lambda: type("Store", (), {"fetch": staticmethod(new.get)})())
        started = time.monotonic()
        removed = destroy_ml(ctx)
        timings["destroy --only ml"] = time.monotonic() - started
        left = {r.name: make_driver(ctx, lambda name: new[name]).history(r) for r in all_ml_releases()}
        kueue_removal = said_at["[ml] kueue: removed"] - said_at["[ml] cert-manager: removed"]
        helm_left = helm_processes(project.root)
        kueue_roles = [r.metadata.name for r in client.RbacAuthorizationV1Api(api).list_cluster_role().items
                       if "kueue" in r.metadata.name]  # fmt: skip
        kueue_pods = client.CoreV1Api(api).list_namespaced_pod("kueue-system").items
        cronjobs = [c.metadata.name for c in client.BatchV1Api(api).list_namespaced_cron_job("kueue-system").items]
        crds_left = sorted({name.split(".", 1)[1] for name in crd_versions(api)} & CRD_GROUPS)

    print(f"ml hop: {plan.to_dict()['hops']}")
    print(f"CRDs before: {before}\nCRDs after: {after}\ntimes: { ({k: round(v, 1) for k, v in timings.items()}) }")
    print(f"Kueue removed without --wait in {kueue_removal:.1f} s; left: ClusterRoles {kueue_roles}, "
          f"pods {[p.metadata.name for p in kueue_pods]}, CronJobs {cronjobs}, helm processes {helm_left}; "
          f"CRD groups left {crds_left}")  # fmt: skip
    print(f"helm history: { ({n: [(h['revision'], h['chart']) for h in hs] for n, hs in history.items()}) }")
    assert installed == [{"name": r.name, "action": "installed"} for r in all_ml_releases()[:5]], lines
    assert [(h.phase, [(s.component, s.from_version, s.to_version) for s in h.steps]) for h in plan.hops] == [
        ("ml", PLANNED_STEPS),
    ]  # the hop is the locks' difference; JupyterHub's step finds no release (off here) and installs nothing
    assert upgraded == [
        {"name": "monitoring", "action": "upgraded"},
        {"name": "kueue", "action": "upgraded"},
        {"name": "cert-manager", "action": "unchanged"},
        {"name": "kserve-crd", "action": "upgraded"},
        {"name": "kserve", "action": "upgraded"},
    ], lines
    assert before == {
        "servicemonitors operator.prometheus.io/version": "0.92.1",
        "workloads spec.podSets maxItems": {"v1beta1": 10, "v1beta2": 10},
        "inferenceservices spec fields": ["explainer", "predictor", "transformer"],
    }
    assert after == {
        "servicemonitors operator.prometheus.io/version": "0.93.1",
        "workloads spec.podSets maxItems": {"v1beta1": 18, "v1beta2": 18},
        "inferenceservices spec fields": ["canary", "explainer", "predictor", "transformer"],
    }
    assert [h["chart"] for h in history["monitoring"]] == [
        "kube-prometheus-stack-87.9.0",
        "kube-prometheus-stack-88.5.3",
    ]
    assert [h["chart"] for h in history["kueue"]] == ["kueue-0.18.6", "kueue-0.19.2"]
    assert [h["chart"] for h in history["kserve"]] == ["kserve-resources-v0.19.0", "kserve-resources-v0.20.0"]
    assert sorted(users) == ["localqueues/team-a", "prometheusrules/team-a", "servicemonitors/team-a"]
    assert again == [{"name": r.name, "action": "unchanged"} for r in all_ml_releases()[:5]], lines
    assert unchanged_crds, "a second run changed a CRD"
    assert nothing_to_do.hops == () or "nothing to do" in " ".join(lines[-20:])
    assert removed == ["kserve", "kserve-crd", "cert-manager", "kueue", "monitoring"], lines
    assert all(not entries for entries in left.values()), left
    assert helm_left == [] and kueue_removal < 60
    # what removal leaves: every CRD group, and with them the users' objects: Kueue's and KServe's templated CRDs
    # carry the keep policy (affordml's post-renderer, the stored manifest), cert-manager's its crds.keep, the
    # monitoring CRDs are affordml's own; the after-hours switch and Kueue's ClusterRoles go
    assert crds_left == sorted(CRD_GROUPS)
    assert cronjobs == [] and kueue_roles == []


@pytest.mark.slow
def test_ml_hop_upgrades_jupyterhub_and_keeps_its_accounts(
    control_plane_factory, charts_by_lock, tmp_path, monkeypatch
):
    """JupyterHub alone (Kueue's pod webhooks would cover its namespace): 4.3.5 -> 4.4.0, no CRDs; the hub's
    database volume claim (the accounts) stays bound to the same volume."""
    from kubernetes import client

    from affordml.gpu.phase import make_driver
    from affordml.lifecycle.run import UpgradeOptions, run_upgrade
    from affordml.ml import phase
    from affordml.ml.releases import JUPYTERHUB
    from affordml.phases import steps
    from tests.gpustack.kubelet import StandInKubelet

    old, new = charts_by_lock
    hub_only = {"monitoring": False, "training_queue": False, "inference": False, "jupyterhub": True}
    cp = control_plane_factory()
    lines: list[str] = []
    ctx, previous = previous_platform(cp, hub_only, tmp_path, lambda line: (lines.append(line), print(line)))
    api = cp.client()
    core = client.CoreV1Api(api)
    crds_before = {c.metadata.name for c in client.ApiextensionsV1Api(api).list_custom_resource_definition().items}
    with StandInKubelet(api):
        phase.run_ml_phase(ctx, lambda name: old[name])
        claim = core.read_namespaced_persistent_volume_claim("hub-db-dir", "jupyterhub")
        ctx.state.phase("ml").status = "done"
        ctx.state.data["lock"] = lock_summary(previous)
        save_state(ctx.project.state_file, ctx.state)
        monkeypatch.setitem(steps.PYTHON_STEPS, "ml", lambda c: phase.run_ml_phase(c, lambda name: new[name]))
        started = time.monotonic()
        plan = run_upgrade(ctx.project, UpgradeOptions(facts_file=FIXTURE, confirm=True), lines.append)
        took = time.monotonic() - started
        claim_after = core.read_namespaced_persistent_volume_claim("hub-db-dir", "jupyterhub")
        history = make_driver(ctx, lambda name: new[name]).history(JUPYTERHUB)
        crds_after = {c.metadata.name for c in client.ApiextensionsV1Api(api).list_custom_resource_definition().items}

    print(f"jupyterhub hop in {took:.1f} s: {[(h['revision'], h['chart'], h['status']) for h in history]}")
    assert [(h.phase, [(s.component, s.from_version, s.to_version) for s in h.steps]) for h in plan.hops] == [
        ("ml", PLANNED_STEPS),
    ]
    assert [h["chart"] for h in history] == ["jupyterhub-4.3.5", "jupyterhub-4.4.0"], lines
    assert load_state(ctx.project.state_file).data["ml"]["releases"] == [{"name": "jupyterhub", "action": "upgraded"}]
    assert claim_after.metadata.uid == claim.metadata.uid
    assert claim_after.spec.volume_name == claim.spec.volume_name == "hub-db"
    assert crds_after == crds_before  # the chart has none
