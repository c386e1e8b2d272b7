"""The training queue's objects on a real kube-apiserver with Kueue v0.19.2's own CRDs (outside CI; the API server's
OpenAPI and CEL validation are Kueue's, not ours). For every golden case: apply_queue_objects applies the rendered
file (and prunes the previous case's objects); broken objects are refused by the API with its message; the
after-hours switch is done as the CronJob does it (its exact merge patch, as its ServiceAccount, with a token from
the TokenRequest API), and the ClusterQueue read back before and after. Run under the kubecp lock:
`flock /tmp/affordml-kubecp.lock python -m pytest -q tests/integration/ml` with AFFORDML_KUBE_BIN_DIR,
AFFORDML_ETCD_BIN and AFFORDML_CHART_SOURCES set (Kueue's CRDs under kueue-v0.19.2/config/components/crd/bases)."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from affordml.errors import RunError
from affordml.ml.queues import QueueApi, apply_queue_objects, read_queue_objects
from tests.kubecp.fixtures import control_plane_factory  # noqa: F401 - fixture

CRD_DIR = "kueue-v0.19.2/config/components/crd/bases"
RESULTS = Path(os.environ.get("AFFORDML_RESULTS_DIR", "/tmp")) / "affordml-kueue-real.txt"
MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MONDAY_NIGHT = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


def _crds() -> Path:
    if os.environ.get("CI"):
        pytest.skip("CI: Kueue's CRD sources are not in any package registry (see tests/gpustack/README.md)")
    root = os.environ.get("AFFORDML_CHART_SOURCES")
    if not root or not (Path(root) / CRD_DIR).is_dir():
        pytest.skip(f"set AFFORDML_CHART_SOURCES to a folder with {CRD_DIR} (git archive v0.19.2 of kueue)")
    return Path(root) / CRD_DIR


def _rendered() -> dict[str, str]:
    from tests.unit.test_render_validate import RENDERED

    return {case: files["ml/kueue-queues.yaml"] for case, files in RENDERED.items() if "ml/kueue-queues.yaml" in files}


@pytest.fixture
def cluster(control_plane_factory, tmp_path):  # noqa: F811
    crds = _crds()
    cp = control_plane_factory()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(cp.admin_kubeconfig())
    from affordml.gpu.apply import GpuApi, apply_crds, read_crds

    api = GpuApi(kubeconfig)
    started = time.monotonic()
    names = apply_crds(api, [c for c in read_crds(crds) if c["spec"]["group"] == "kueue.x-k8s.io"])
    api.ensure_namespace("kueue-system")  # the kueue release's namespace
    api.close()
    print(f"{len(names)} Kueue v0.19.2 CRDs Established in {time.monotonic() - started:.1f} s", flush=True)
    return SimpleNamespace(cp=cp, kubeconfig=kubeconfig, tmp=tmp_path)


def _ctx(root: Path, text: str, lines: list[str]):
    (root / "env" / "ml").mkdir(parents=True, exist_ok=True)
    (root / "env" / "ml" / "kueue-queues.yaml").write_text(text)
    return SimpleNamespace(project=SimpleNamespace(env_dir=root / "env"), say=lines.append)


def _spec(api: QueueApi, name: str) -> dict:
    return api.read("kueue.x-k8s.io/v1beta2", "ClusterQueue", name)["spec"]


def _limits(spec: dict) -> list[str]:
    out = []
    for group in spec["resourceGroups"]:
        for flavor in group["flavors"]:
            for r in flavor["resources"]:
                extra = "".join(f" {k}={r[k]}" for k in ("borrowingLimit", "lendingLimit") if k in r)
                out.append(f"{flavor['name']}/{r['name']}: nominal={r['nominalQuota']}{extra}")
    return out


def test_every_case_is_accepted_and_the_previous_one_pruned(cluster):
    lines: list[str] = []
    report = []
    for case, text in sorted(_rendered().items()):
        ctx = _ctx(cluster.tmp / case, text, lines)
        started = time.monotonic()
        apply_queue_objects(ctx, cluster.kubeconfig, now=MONDAY_NOON)
        took = time.monotonic() - started
        api = QueueApi(cluster.kubeconfig)
        try:
            wanted = read_queue_objects(ctx.project.env_dir / "ml" / "kueue-queues.yaml")
            for obj in wanted:  # every object is on the API as rendered
                meta = obj["metadata"]
                got = api.read(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
                assert got["metadata"]["name"] == meta["name"]
                if obj["kind"] in ("ResourceFlavor", "LocalQueue", "CronJob") and "spec" in obj:
                    assert {k: got["spec"][k] for k in obj["spec"] if k != "jobTemplate"} == {
                        k: v for k, v in obj["spec"].items() if k != "jobTemplate"
                    }
                if obj["kind"] == "ClusterQueue":  # Monday noon: the workday spec, as rendered
                    assert got["spec"]["resourceGroups"] == obj["spec"]["resourceGroups"]
            queues = api._call("GET", "/apis/kueue.x-k8s.io/v1beta2/clusterqueues")["items"]
            names = sorted(q["metadata"]["name"] for q in queues)
            assert names == sorted(o["metadata"]["name"] for o in wanted if o["kind"] == "ClusterQueue")
        finally:
            api.close()
        report.append(f"{case}: {len(wanted)} objects accepted in {took:.2f} s; ClusterQueues {names}")
    removed = [line for line in lines if "removed" in line]
    assert removed, "switching cases never pruned an object"
    RESULTS.write_text("\n".join(report + [f"pruned on the way: {len(removed)} objects"]) + "\n")
    print("\n".join(report), flush=True)


BAD = {
    "borrowingLimit without a cohort": {
        "spec": {
            "resourceGroups": [
                {
                    "coveredResources": ["cpu"],
                    "flavors": [
                        {
                            "name": "affordml-default",
                            "resources": [{"name": "cpu", "nominalQuota": "4", "borrowingLimit": "2"}],
                        }
                    ],
                }
            ]
        }
    },
    "65 flavors in one group (Kueue v0.19.2 allows 64)": {
        "spec": {
            "resourceGroups": [
                {
                    "coveredResources": ["cpu"],
                    "flavors": [
                        {"name": f"f{i}", "resources": [{"name": "cpu", "nominalQuota": "1"}]} for i in range(65)
                    ],
                }
            ]
        }
    },
    "17 resource groups (the limit is 16)": {
        "spec": {
            "resourceGroups": [
                {
                    "coveredResources": [f"example.com/r{i}"],
                    "flavors": [{"name": f"f{i}", "resources": [{"name": f"example.com/r{i}", "nominalQuota": "1"}]}],
                }
                for i in range(17)
            ]
        }
    },
    "a name with capitals": {"metadata": {"name": "Affordml_Training"}, "spec": {}},
    "a quantity that is not one": {
        "spec": {
            "resourceGroups": [
                {
                    "coveredResources": ["memory"],
                    "flavors": [{"name": "x", "resources": [{"name": "memory", "nominalQuota": "8 gigabytes"}]}],
                }
            ]
        }
    },
}


@pytest.mark.parametrize("what", sorted(BAD))
def test_broken_queues_are_refused_by_the_api(cluster, what):
    body = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": "broken"}}
    body = {**body, **BAD[what]}
    api = QueueApi(cluster.kubeconfig)
    try:
        with pytest.raises(RunError) as caught:
            api.apply(body)
    finally:
        api.close()
    message = caught.value.args[0]
    assert "the API refused ClusterQueue" in message
    with RESULTS.with_name("affordml-kueue-refused.txt").open("a") as out:
        out.write(f"{what}: {message}\n")
    print(f"{what}: {message}", flush=True)


def _switch_token(cp) -> str:
    from kubernetes import client

    core = client.CoreV1Api(cp.client())
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}}
    return core.create_namespaced_service_account_token("affordml-queue-switch", "kueue-system", request).status.token


def _as_switch(cp, token: str):
    from kubernetes import client

    conf = client.Configuration()
    conf.host = cp.local_url
    conf.ssl_ca_cert = str(cp.pki / "ca.crt")
    conf.api_key = {"authorization": f"Bearer {token}"}
    return client.CustomObjectsApi(client.ApiClient(conf))


def _cronjob_patch(text: str, mode: str) -> tuple[str, dict, str]:
    for doc in yaml.safe_load_all(text):
        if doc and doc["kind"] == "CronJob" and doc["metadata"]["labels"]["affordml.io/queue-mode"] == mode:
            args = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
            return (
                args[args.index("clusterqueue") + 1],
                json.loads(args[args.index("--patch") + 1]),
                doc["spec"]["schedule"],
            )
    raise AssertionError(f"no {mode} CronJob")


@pytest.mark.parametrize("case", ["workstation-2gpu--hami-one-worker", "server-a100-mig", "desktop-rtx4090"])
def test_after_hours_switch_on_the_api(cluster, case):
    from kubernetes.client import ApiException

    text = _rendered()[case]
    lines: list[str] = []
    apply_queue_objects(_ctx(cluster.tmp / case, text, lines), cluster.kubeconfig, now=MONDAY_NOON)
    api = QueueApi(cluster.kubeconfig)
    as_switch = _as_switch(cluster.cp, _switch_token(cluster.cp))
    out = [f"== {case}"]
    try:
        workday = _spec(api, "affordml-interactive")
        assert all("lendingLimit=0" in line for line in _limits(workday)), _limits(workday)
        out += ["workday (as applied at Monday 12:00 UTC): affordml-interactive", *_limits(workday)]
        target, patch, schedule = _cronjob_patch(text, "after-hours")
        as_switch.patch_cluster_custom_object("kueue.x-k8s.io", "v1beta2", "clusterqueues", target, patch)
        after = _spec(api, "affordml-interactive")
        assert not any("lendingLimit" in line for line in _limits(after)), _limits(after)
        out += [f"after the after-hours CronJob's patch ({schedule!r}, as affordml-queue-switch):", *_limits(after)]
        with pytest.raises(ApiException) as refused:  # its token may patch that queue and nothing else
            as_switch.patch_cluster_custom_object(
                "kueue.x-k8s.io", "v1beta2", "clusterqueues", "affordml-training", patch
            )
        assert refused.value.status == 403
        out.append(
            f"same token on affordml-training: {refused.value.status} {json.loads(refused.value.body)['message']}"
        )
        target, patch, schedule = _cronjob_patch(text, "workday")
        as_switch.patch_cluster_custom_object("kueue.x-k8s.io", "v1beta2", "clusterqueues", target, patch)
        assert _spec(api, "affordml-interactive") == workday
        out.append(f"after the workday CronJob's patch ({schedule!r}): back to the workday spec exactly")
        apply_queue_objects(_ctx(cluster.tmp / case, text, lines), cluster.kubeconfig, now=MONDAY_NIGHT)
        assert _spec(api, "affordml-interactive") == after
        out.append("apply_queue_objects at Monday 22:00 UTC: the after-hours spec exactly")
        training = _spec(api, "affordml-training")
        out += ["affordml-training (cohort affordml, unchanged by the switch):", *_limits(training)]
    finally:
        api.close()
    with RESULTS.with_name("affordml-kueue-switch.txt").open("a") as f:
        f.write("\n".join(out) + "\n")
    print("\n".join(out), flush=True)


def test_odd_hours_schedules_and_time_zone_are_accepted_by_the_cronjob_validation(cluster):
    """Schedules with minute ranges and lists, a DST time zone: the API's own CronJob validation (cron parser,
    time zone database) accepts every one; a broken schedule is refused."""
    from tests.cases import merge
    from tests.unit.test_render_validate import _golden

    case = _golden.CASES["workstation-2gpu"]
    odd = {"start": "18:35", "end": "07:10", "days": ["mon", "wed", "sat"], "time_zone": "Europe/Berlin"}
    files = _golden.render_case({**case, "config": merge(case["config"], {"ml": {"after_hours": odd}})})
    text = files["ml/kueue-queues.yaml"]
    lines: list[str] = []
    apply_queue_objects(_ctx(cluster.tmp / "odd", text, lines), cluster.kubeconfig, now=MONDAY_NOON)
    api = QueueApi(cluster.kubeconfig)
    try:
        listed = api._call("GET", "/apis/batch/v1/namespaces/kueue-system/cronjobs")["items"]
        got = sorted((c["metadata"]["name"], c["spec"]["schedule"], c["spec"]["timeZone"]) for c in listed)
        rendered = [d for d in yaml.safe_load_all(text) if d and d["kind"] == "CronJob"]
        assert len(got) == len(rendered) >= 5
        broken = json.loads(json.dumps(rendered[0]))
        broken["metadata"]["name"] = "broken-schedule"
        broken["spec"]["schedule"] = "61 7 * * 1"
        with pytest.raises(RunError) as caught:
            api.apply(broken)
    finally:
        api.close()
    out = [f"{name}: {schedule!r} {zone}" for name, schedule, zone in got] + [caught.value.args[0]]
    with RESULTS.with_name("affordml-kueue-cron.txt").open("w") as f:
        f.write("\n".join(out) + "\n")
    print("\n".join(out), flush=True)
