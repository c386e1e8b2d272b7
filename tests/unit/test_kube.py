"""The kube package without a cluster: access, the connection inventory (read by Ansible's own inventory plugin
together with the rendered one), runner arguments, requirements, kubeconfig rewrite, node wait, failure lines,
and the re-run decision."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from affordml.errors import RunError
from affordml.kube import cluster, nodes
from affordml.kube.access import cluster_access
from affordml.kube.inventory import write_connection_inventory
from affordml.kube.kubeconfig import point_at
from affordml.kube.source import kubespray_toolchain, read_requirements, tree_root
from affordml.phases.kubernetes import access_from_context, state_inputs
from affordml.phases.registry import get_phase
from affordml.phases.workflow import inputs_hash
from affordml.run.args import cmdline, environment
from affordml.run.executor import RunResult
from affordml.run.progress import Progress
from affordml.versions import load_lock
from tests.clock import FakeClock

VMS = [("cp-1", "control-plane"), ("worker-1", "worker"), ("worker-2", "worker")]
ADDRESSES = {"cp-1": "192.0.2.10", "worker-1": "192.0.2.11", "worker-2": "192.0.2.12"}
LOCKED_REQUIREMENTS = "ansible==11.13.0\n# a comment\ncryptography==46.0.7\njmespath==1.1.0\nnetaddr==1.3.0\n"


def access(tmp_path: Path, user: str = "ubuntu"):
    return cluster_access(VMS, ADDRESSES, user, tmp_path / "secrets" / "ssh" / "key", tmp_path / "known_hosts")


def test_access_needs_an_ip_for_every_vm(tmp_path):
    with pytest.raises(RunError, match="no address for VM worker-2"):
        cluster_access(VMS, {"cp-1": "192.0.2.10", "worker-1": "192.0.2.11"}, "ubuntu", Path("k"), Path("kh"))
    with pytest.raises(RunError, match="not an IP address"):
        cluster_access(VMS, ADDRESSES | {"worker-1": "x{{ lookup('pipe','id') }}"}, "ubuntu", Path("k"), Path("kh"))
    assert access(tmp_path).api_url == "https://192.0.2.10:6443"


def test_connection_inventory_merges_with_the_rendered_one_in_ansible(tmp_path):
    """Ansible's own yaml inventory plugin reads both files: groups and cluster addresses from env/, reachable
    addresses and the strict SSH settings from the per-run file; a hostile path stays data (!unsafe)."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    rendered = tmp_path / "env" / "inventory.yml"
    rendered.parent.mkdir()
    rendered.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {
                        vm: {"ip": f"10.42.0.{10 + i}", "access_ip": f"10.42.0.{10 + i}"}
                        for i, (vm, _) in enumerate(VMS)
                    },
                    "children": {"kube_control_plane": {"hosts": {"cp-1": None}}, "etcd": {"hosts": {"cp-1": None}}},
                }
            }
        )
    )
    hostile = tmp_path / "{{ lookup('pipe', 'touch PWNED') }}"
    conn = cluster_access(VMS, ADDRESSES, "ubuntu", hostile / "key", tmp_path / "known_hosts")
    second = write_connection_inventory(tmp_path / "run" / "connection.yml", conn)
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[str(rendered), str(second)])
    variables = VariableManager(loader=loader, inventory=manager)
    host = manager.get_host("worker-1")
    hostvars = variables.get_vars(host=host)
    assert hostvars["ansible_host"] == "192.0.2.11" and hostvars["ip"] == "10.42.0.11"
    assert hostvars["ansible_become"] is True
    assert "StrictHostKeyChecking=yes" in hostvars["ansible_ssh_common_args"]
    assert hostvars["supplementary_addresses_in_ssl_keys"] == ["192.0.2.10"]
    assert [h.name for h in manager.groups["etcd"].get_hosts()] == ["cp-1"]
    assert "ansible_ssh_private_key_file: !unsafe" in second.read_text()
    assert hostvars["ansible_ssh_private_key_file"].endswith("key")
    assert not (tmp_path / "PWNED").exists()


def test_connection_inventory_carries_no_secret(tmp_path):
    text = write_connection_inventory(tmp_path / "c.yml", access(tmp_path)).read_text()
    assert "BEGIN" not in text and "token" not in text


def test_run_args_use_kubesprays_config_both_inventories_and_the_toolchain(tmp_path):
    run = cluster.ClusterRun(
        ident="x-kubernetes",
        runs_dir=tmp_path / "runs",
        tree=tmp_path / "kubespray",
        env_inventory=tmp_path / "env" / "kubespray" / "inventory.yml",
        connection_inventory=tmp_path / "runs" / "x-kubernetes" / "connection.yml",
        toolchain_bin=tmp_path / "tc" / "bin",
        vars_files=(tmp_path / "extra-vars.yml",),
    )
    args = cluster.run_args(run)
    assert args.playbook == tmp_path / "kubespray" / "cluster.yml"
    assert args.config_file == tmp_path / "kubespray" / "ansible.cfg"
    assert args.inventories == (run.env_inventory, run.connection_inventory)
    assert args.private_data_dir == tmp_path / "runs" / "x-kubernetes"
    assert cmdline(args) == f"-e @{tmp_path / 'extra-vars.yml'}"
    env = environment(args, {"PATH": "/usr/bin", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "HOME": "/root"})
    assert env["PATH"].startswith(str(tmp_path / "tc" / "bin") + ":")
    assert env["ANSIBLE_CONFIG"] == str(tmp_path / "kubespray" / "ansible.cfg")
    assert "s3cr3t" not in repr(env)


def test_requirements_must_pin_the_locked_ansible(tmp_path):
    (tmp_path / "requirements.txt").write_text(LOCKED_REQUIREMENTS)
    toolchain = kubespray_toolchain(tmp_path, load_lock())
    assert toolchain.name == "kubespray" and toolchain.requirements[0] == "ansible==11.13.0"
    assert "# a comment" not in toolchain.requirements
    (tmp_path / "requirements.txt").write_text("ansible==10.7.0\n")
    with pytest.raises(RunError, match="does not pin ansible==11.13.0"):
        kubespray_toolchain(tmp_path, load_lock())
    (tmp_path / "requirements.txt").write_text("ansible==11.13.0\n--index-url https://example.invalid/simple\n")
    with pytest.raises(RunError, match="unexpected line"):
        read_requirements(tmp_path)


def test_tree_root_takes_the_release_tarballs_single_folder(tmp_path):
    (tmp_path / "kubespray-2.31.0").mkdir()
    (tmp_path / "kubespray-2.31.0" / "cluster.yml").write_text("---\n")
    assert tree_root(tmp_path) == tmp_path / "kubespray-2.31.0"
    (tmp_path / "other").mkdir()
    with pytest.raises(RunError, match="does not hold a Kubespray tree"):
        tree_root(tmp_path)


ADMIN_CONF = """
apiVersion: v1
kind: Config
clusters:
- name: cluster.local
  cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: Q0E=}
users: [{name: kubernetes-admin, user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}}]
contexts: [{name: kubernetes-admin@cluster.local, context: {cluster: cluster.local, user: kubernetes-admin}}]
current-context: kubernetes-admin@cluster.local
"""


def test_kubeconfig_is_pointed_at_the_reachable_api():
    data = yaml.safe_load(point_at(ADMIN_CONF, "https://192.0.2.10:6443", "admin.conf"))
    assert data["clusters"][0]["cluster"]["server"] == "https://192.0.2.10:6443"
    assert data["users"][0]["user"]["client-key-data"] == "S0VZ"
    for bad in ("", "just text", "kind: Config\nclusters: []\n", "[1, 2]"):
        with pytest.raises(RunError, match="not a kubeconfig"):
            point_at(bad, "https://192.0.2.10:6443", "admin.conf")


def row(name: str, ready: bool) -> nodes.NodeRow:
    return nodes.NodeRow(name, ready, (), "v1.35.4")


def test_node_wait_reports_progress_and_returns_when_all_are_ready():
    clock, said = FakeClock(), []
    answers = iter(
        [ConnectionRefusedError(111, "refused"), [row("cp-1", True)], [row("cp-1", True), row("worker-1", True)]]
        + [[row("cp-1", True), row("worker-1", True), row("worker-2", True)]]
    )

    def list_nodes():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    rows = nodes.wait_ready(list_nodes, ["cp-1", "worker-1", "worker-2"], said.append, 60, 5, clock, clock.sleep)
    assert len(rows) == 3
    assert "Ready 0/3" in said[0] and "refused" in said[0]
    assert any("Ready 1/3, waiting for worker-1, worker-2" in line for line in said)
    assert said[-1].startswith("[kubernetes] all 3 node(s) Ready")


def test_node_wait_is_bounded_and_names_the_missing_nodes():
    clock, said = FakeClock(), []
    with pytest.raises(RunError) as info:
        nodes.wait_ready(
            lambda: [row("cp-1", True), row("worker-1", False)], ["cp-1", "worker-1", "worker-2"], said.append,
            30, 5, clock, clock.sleep,
        )  # fmt: skip
    line = info.value.one_line()
    assert "worker-1, worker-2 not Ready after 30s (not registered: worker-2)" in line and "fix:" in line
    assert clock.now == 30


def result_with(events: list[dict]) -> tuple[RunResult, cluster.FailureRoles]:
    progress, roles = Progress("kubernetes"), cluster.FailureRoles()
    for event in events:
        progress.on_event(event)
        roles.on_event(event)
    return RunResult("id", 2, "failed", "/p/runs/id/artifacts/id", progress), roles


def failed(host: str, task: str, role: str, msg: str, kind: str = "runner_on_failed") -> dict:
    return {"event": kind, "event_data": {"host": host, "task": task, "role": role, "res": {"msg": msg}}}


def test_a_kubespray_assertion_is_one_line_with_its_fix():
    result, roles = result_with(
        [failed("cp-1", "Stop if unsupported version of Kubernetes", "validate_inventory", "too old")]
    )
    with pytest.raises(RunError) as info:
        cluster.explain_failure(result, roles, ADDRESSES)
    line = info.value.one_line()
    assert "Kubespray refused the inventory: Stop if unsupported version of Kubernetes: too old" in line
    assert "/p/runs/id/artifacts/id" in line and "\n" not in line


def test_an_unreachable_vm_is_named_with_its_address():
    result, roles = result_with([failed("worker-2", "Gather facts", "", "timed out", "runner_on_unreachable")])
    with pytest.raises(RunError, match=r"VM worker-2 \(192.0.2.12\) is unreachable over SSH: timed out"):
        cluster.explain_failure(result, roles, ADDRESSES)


def test_any_other_failure_names_host_task_and_logs():
    result, roles = result_with([failed("worker-1", "Install containerd", "container-engine/containerd", "E: dpkg")])
    with pytest.raises(RunError) as info:
        cluster.explain_failure(result, roles, ADDRESSES)
    assert "task 'Install containerd' failed on worker-1: E: dpkg" in info.value.one_line()
    assert "/p/runs/id/artifacts/id" in info.value.one_line()


def cloud_record(**changes) -> dict:
    servers = {
        vm: {"id": f"id-{vm}", "address": f"10.42.0.{10 + i}", "floating_ip": ADDRESSES[vm], "status": "ACTIVE"}
        for i, (vm, _) in enumerate(VMS)
    }
    for vm, change in changes.items():
        servers[vm] = servers[vm] | change
    return {"ssh_key": "/p/secrets/ssh/affordml_ed25519", "servers": servers, "changes": 3}


def test_kubernetes_reruns_when_the_vms_change_not_otherwise(tmp_path):
    phase = get_phase("kubernetes")
    (tmp_path / "kubespray").mkdir()
    (tmp_path / "kubespray" / "inventory.yml").write_text("all: {}\n")
    base = inputs_hash(phase, tmp_path, {"cloud": cloud_record()})
    assert inputs_hash(phase, tmp_path, {"cloud": cloud_record() | {"changes": 0}}) == base
    assert inputs_hash(phase, tmp_path, {"cloud": cloud_record(), "reboot_required": []}) == base
    assert inputs_hash(phase, tmp_path, {"cloud": cloud_record(**{"worker-1": {"id": "new"}})}) != base
    assert inputs_hash(phase, tmp_path, {"cloud": cloud_record(**{"cp-1": {"floating_ip": "203.0.113.5"}})}) != base
    (tmp_path / "kubespray" / "inventory.yml").write_text("all: {hosts: {}}\n")
    assert inputs_hash(phase, tmp_path, {"cloud": cloud_record()}) != base


def test_the_phase_reaches_the_vms_by_their_floating_ips(tmp_path):
    from types import SimpleNamespace

    from affordml.project import Project

    plan = SimpleNamespace(vms=[SimpleNamespace(name=n, role=r) for n, r in VMS])
    lock = {"guest_image": {"login_user": "ubuntu"}}
    record = cloud_record(**{"cp-1": {"floating_ip": "203.0.113.5"}})
    state = SimpleNamespace(data={"cloud": record})
    ctx = SimpleNamespace(state=state, plan=plan, lock=lock, project=Project(tmp_path))
    got = access_from_context(ctx)
    assert got.api_url == "https://203.0.113.5:6443" and got.node("worker-2").address == "192.0.2.12"
    assert got.node("cp-1").key == Path("/p/secrets/ssh/affordml_ed25519") and got.node("cp-1").user == "ubuntu"
    del record["servers"]["worker-1"]["floating_ip"]
    with pytest.raises(RunError, match="no floating IP recorded for worker-1"):
        access_from_context(ctx)
    assert state_inputs({})["servers"] == {}


def test_a_dry_run_says_what_would_run_and_touches_nothing(tmp_path):
    from types import SimpleNamespace

    from affordml.phases.kubernetes import run_kubernetes_phase
    from affordml.project import Project

    said: list[str] = []
    plan = SimpleNamespace(vms=[SimpleNamespace(name=n, role=r) for n, r in VMS])
    ctx = SimpleNamespace(
        dry_run=True,
        plan=plan,
        lock=load_lock(),
        project=Project(tmp_path),
        state=SimpleNamespace(data={}),
        say=said.append,
    )
    assert run_kubernetes_phase(ctx) is None
    assert said == ["[kubernetes] would run Kubespray v2.31.0 cluster.yml on cp-1, worker-1, worker-2"]
    assert list(tmp_path.iterdir()) == []
