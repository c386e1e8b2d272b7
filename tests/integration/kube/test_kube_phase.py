"""The kubernetes phase's orchestration on real test hosts with real ansible-runner (CI):

artifact (a tarball of a stand-in Kubespray tree, unpacked by the safe unpacker) -> Kubespray's toolchain from PyPI
at the locked ansible pin -> cluster.yml through ansible-runner with the rendered inventory and the per-run
connection inventory -> the admin kubeconfig read from the control-plane test host over SSH into secrets/ (0600)
-> the node wait. The stand-in cluster.yml (test data, not Kubespray) checks what Kubespray would be given and
leaves /etc/kubernetes/admin.conf as Kubespray does.

With the real control plane of tests/kubecp (outside CI) the API answers on the control-plane host's address, the
wait ends with every node Ready, `affordml status` lists the nodes with their GPUs, and a second run with unchanged
inputs keeps the phase (timed). In CI, without an API server, the wait must end at its bound with one line.
"""

from __future__ import annotations

import copy
import io
import stat
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from affordml.config.model import Config
from affordml.errors import RunError
from affordml.facts.parse import facts_from_snapshot
from affordml.facts.sources import load_snapshot_file
from affordml.phases.registry import get_phase
from affordml.phases.state import State, load_state
from affordml.phases.workflow import PhaseContext, run_phases
from affordml.plan.build import make_plan
from affordml.project import Project
from affordml.render.project import render_project
from affordml.versions import load_lock, version_table
from tests.integration.hosts.affordml_project import DESKTOP_FACTS, affordml_command, affordml_env
from tests.integration.kube.conftest import KUBESPRAY_REQUIREMENTS

pytestmark = pytest.mark.testbed
NAMES = ["cp-1", "worker-1", "worker-2"]

STAND_IN_CLUSTER_YML = """\
---
# Test data standing in for Kubespray's cluster.yml: checks what Kubespray would be given, then leaves the admin
# kubeconfig where Kubespray leaves it.
- name: Stand-in for Kubespray's cluster.yml
  hosts: k8s_cluster
  gather_facts: false
  tasks:
    - name: The rendered group_vars and the connection inventory reach Kubespray merged
      ansible.builtin.assert:
        that:
          - cluster_name == 'cluster.local'
          - kube_proxy_mode == 'iptables'
          - local_path_provisioner_enabled | bool
          - ip is defined and access_ip == ip
          - ansible_become | bool
          - supplementary_addresses_in_ssl_keys == [hostvars[groups['kube_control_plane'][0]]['ansible_host']]
          - groups['etcd'] == groups['kube_control_plane']
          - groups['kube_node'] | length == 2
    - name: Kubernetes folder
      ansible.builtin.file:
        path: /etc/kubernetes
        state: directory
        mode: "0700"
      when: inventory_hostname in groups['kube_control_plane']
    - name: Admin kubeconfig, as Kubespray leaves it
      ansible.builtin.copy:
        src: "{{ affordml_test_admin_conf }}"
        dest: /etc/kubernetes/admin.conf
        mode: "0600"
      no_log: true
      when: inventory_hostname in groups['kube_control_plane']
"""


def stand_in_tarball(folder: Path) -> Path:
    """A release-shaped tarball (one top folder) of the stand-in tree."""
    tarball = folder / "kubespray-stand-in.tar.gz"
    files = {
        "cluster.yml": STAND_IN_CLUSTER_YML,
        "ansible.cfg": "[defaults]\nhost_key_checking = True\nstdout_callback = default\n",
        "requirements.txt": KUBESPRAY_REQUIREMENTS,
    }
    with tarfile.open(tarball, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"kubespray-2.31.0/{name}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return tarball


def context(root: Path, bed, admin_conf: Path) -> PhaseContext:
    """A project whose three VMs are the test hosts (user root, the test bed's key and known_hosts)."""
    lock = copy.deepcopy(load_lock())
    lock["guest_image"]["login_user"] = "root"
    facts = facts_from_snapshot(load_snapshot_file(DESKTOP_FACTS))
    config = Config.model_validate({"hosts": [{"name": facts.hostname}]})
    plan = make_plan(facts, config, version_table(lock))
    assert [vm.name for vm in plan.vms] == NAMES
    project = Project(root)
    root.mkdir(parents=True, exist_ok=True)
    render_project(project, plan, config, lock)
    (root / "known_hosts").write_text(bed.known_hosts.read_text())
    extra = bed.ssh_vars() | {"affordml_test_admin_conf": str(admin_conf)}
    (root / "extra-vars.yml").write_text(yaml.safe_dump(extra))
    state = State()
    servers = {h.name: {"id": f"id-{h.name}", "floating_ip": h.address, "status": "ACTIVE"} for h in bed.hosts}
    state.data["cloud"] = {"ssh_key": str(bed.key_path), "servers": servers}
    return PhaseContext(project, config, plan, lock, state, print)


def run_phase(ctx: PhaseContext, tarball: Path, ready_timeout_s: float):
    from affordml.phases.kubernetes import run_kubernetes_phase

    def execute(phase, ctx):
        return run_kubernetes_phase(ctx, fetch_tarball=lambda: tarball, ready_timeout_s=ready_timeout_s)

    return run_phases(ctx, [get_phase("kubernetes")], execute)


def assert_kubeconfig(project: Project, cp_address: str, secret: str) -> None:
    path = project.secrets_dir / "kubeconfig"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(project.secrets_dir.stat().st_mode) == 0o700
    data = yaml.safe_load(path.read_text())
    assert data["clusters"][0]["cluster"]["server"] == f"https://{cp_address}:6443"
    for log in project.runs_dir.rglob("*"):
        if log.is_file():
            assert secret not in log.read_text(errors="replace"), f"the admin credential leaked into {log}"


def test_kubespray_toolchain_is_kubesprays_own(kubespray_toolchain_bin):
    import subprocess

    out = subprocess.run(
        [str(kubespray_toolchain_bin / "ansible-playbook"), "--version"], capture_output=True, text=True
    )
    assert "core 2.18." in out.stdout, out.stdout
    ansible = subprocess.run(
        [str(kubespray_toolchain_bin / "python"), "-c", "import importlib.metadata as m; print(m.version('ansible'))"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert ansible.stdout.strip() == load_lock()["kubespray"]["ansible"]


def test_phase_refuses_a_pending_reboot_and_an_unreachable_vm(testbed_factory, kubespray_toolchain_bin, tmp_path):
    bed = testbed_factory(3, names=NAMES)
    admin = tmp_path / "admin.conf"
    admin.write_text("kind: Config\n")
    ctx = context(tmp_path / "project", bed, admin)
    bed.hosts[2].ssh("touch /var/run/reboot-required")
    bed.check_routes()
    with pytest.raises(RunError) as info:
        run_phase(ctx, stand_in_tarball(tmp_path), 5)
    line = info.value.one_line()
    assert "VM worker-2" in line and "pending reboot (/var/run/reboot-required)" in line and "fix:" in line
    assert load_state(ctx.project.state_file).phases["kubernetes"].status == "failed"
    bed.hosts[2].ssh("rm /var/run/reboot-required")
    unused = str(bed.subnet.network_address + 250)  # on the test bridge, nobody answers
    ctx.state.data["cloud"]["servers"]["worker-1"]["floating_ip"] = unused
    with pytest.raises(RunError, match=rf"VM worker-1 \({unused}\) is unreachable over SSH"):
        run_phase(ctx, stand_in_tarball(tmp_path), 5)
    assert not (ctx.project.root / "cache" / "kubespray").exists(), "nothing is unpacked before the VMs answer"


def test_phase_runs_kubespray_fetches_the_kubeconfig_and_waits_for_nodes(
    testbed_factory, kubespray_toolchain_bin, control_plane_factory, tmp_path, request
):
    bed = testbed_factory(3, names=NAMES)
    cp_host = bed.hosts[0]
    real_api = None
    try:
        real_api = control_plane_factory(extra_sans=(cp_host.address,))
    except pytest.skip.Exception as skipped:
        print(f"no real control plane ({skipped}): the node wait must end at its bound")
    admin = tmp_path / "admin.conf"
    if real_api is not None:
        real_api.forward(netns=cp_host.netns, address=cp_host.address, port=6443)
        real_api.register_node("cp-1", labels={"node-role.kubernetes.io/control-plane": ""})
        real_api.register_node("worker-1", capacity={"nvidia.com/gpu": "1"})
        real_api.register_node("worker-2")
        admin.write_text(real_api.admin_kubeconfig())
        secret = real_api.token
    else:
        secret = "stand-in-token-" + "0" * 24
        admin.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "cluster.local", "cluster": {"server": "https://127.0.0.1:6443"}}],
                    "users": [{"name": "admin", "user": {"token": secret}}],
                    "contexts": [{"name": "admin", "context": {"cluster": "cluster.local", "user": "admin"}}],
                    "current-context": "admin",
                }
            )
        )
    ctx = context(tmp_path / "project", bed, admin)
    tarball = stand_in_tarball(tmp_path)
    bed.check_routes()
    started = time.monotonic()
    if real_api is None:
        with pytest.raises(RunError) as info:
            run_phase(ctx, tarball, 6)
        line = info.value.one_line()
        assert "cp-1, worker-1, worker-2 not Ready after 6s (not registered: cp-1, worker-1, worker-2)" in line
        assert "last API error" in line and "fix:" in line
        assert_kubeconfig(ctx.project, cp_host.address, secret)
        assert load_state(ctx.project.state_file).phases["kubernetes"].status == "failed"
        return
    outcome = run_phase(ctx, tarball, 60)
    first = time.monotonic() - started
    assert outcome == [("kubernetes", "ran")]
    assert_kubeconfig(ctx.project, cp_host.address, secret)
    saved = load_state(ctx.project.state_file)
    assert saved.phases["kubernetes"].status == "done"
    recorded = {n["name"]: n for n in saved.data["kubernetes"]["nodes"]}
    assert set(recorded) == set(NAMES) and recorded["worker-1"]["gpus"] == {"nvidia.com/gpu": "1"}
    started = time.monotonic()
    again = run_phase(PhaseContext(ctx.project, ctx.config, ctx.plan, ctx.lock, saved, print), tarball, 60)
    rerun = time.monotonic() - started
    assert again == [("kubernetes", "kept")]
    print(f"kubernetes phase: first run {first:.1f}s, re-run with unchanged inputs {rerun:.3f}s")
    status = cli_status(ctx.project.root)
    assert f"server {real_api.server_version()}" in status
    assert "worker-1  Ready  -" in status and "nvidia.com/gpu=1" in status and "cp-1  Ready  control-plane" in status
    print(status)


def cli_status(root: Path) -> str:
    import subprocess

    done = subprocess.run(
        [*affordml_command(), "-p", str(root), "status"], capture_output=True, text=True,
        env=affordml_env(), timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout
