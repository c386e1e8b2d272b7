"""The VMs' SSH host keys: generated here, handed to cloud-init in user data, trusted in the project's known_hosts
for exactly the VM's addresses; a replaced VM's old line is dropped, the user's own lines are never touched."""

from __future__ import annotations

import stat

import paramiko
import pytest
import yaml

from affordml.cloud.hostkeys import (
    cloud_config,
    forget_host_keys,
    generate_host_key,
    key_files,
    new_host_key,
    record_known_host,
    recorded_public_key,
)
from affordml.cloud.spec import cloud_spec, user_data
from affordml.facts.sources import load_known_hosts
from affordml.project import Project
from tests.unit.test_cloud_spec import plan_of

USER_LINE = "pc.lan ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVzZXIncyBvd24ga2V5IGZvciB0aGUgcGMgbGFuISE=\n"


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    root.mkdir(mode=0o700)
    return Project(root)


def test_generated_key_is_an_openssh_ed25519_pair():
    key = generate_host_key()
    loaded = paramiko.Ed25519Key.from_private_key(__import__("io").StringIO(key.private))
    assert key.public == f"{loaded.get_name()} {loaded.get_base64()}"
    assert key.private not in repr(key)


def test_new_host_key_files_private_0600(project):
    key = new_host_key(project, "worker-1")
    private, public = (project.root / p for p in key_files("worker-1"))
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    assert private.read_text() == key.private and recorded_public_key(project, "worker-1") == key.public
    assert new_host_key(project, "worker-1").public != key.public  # a new server, a new key


def test_user_data_carries_the_key_for_cloud_init():
    server = cloud_spec(plan_of("desktop-rtx4090")).servers[1]
    key = generate_host_key()
    data = yaml.safe_load(user_data(server, cloud_config(key)))
    assert data["hostname"] == "worker-1" and data["ssh_pwauth"] is False
    assert data["ssh_keys"] == {"ed25519_private": key.private, "ed25519_public": key.public}
    assert data["ssh_deletekeys"] is True and data["ssh_genkeytypes"] == ["ed25519"]
    assert "ssh_keys" not in yaml.safe_load(user_data(server))


def test_known_hosts_added_kept_replaced_forgotten(project):
    (project.root / "known_hosts").write_text(USER_LINE)
    first, second, other = (generate_host_key() for _ in range(3))
    assert record_known_host(project, "worker-1", ["172.24.4.5", "10.42.0.11"], first.public) == "added"
    assert record_known_host(project, "cp-1", ["172.24.4.4", "10.42.0.10"], other.public) == "added"
    before = (project.root / "known_hosts").read_text()
    assert record_known_host(project, "worker-1", ["172.24.4.5", "10.42.0.11"], first.public) == "kept"
    assert (project.root / "known_hosts").read_text() == before  # a re-carve: no churn
    assert record_known_host(project, "worker-1", ["172.24.4.5", "10.42.0.11"], second.public) == "replaced"
    text = (project.root / "known_hosts").read_text()
    assert first.public not in text and text.count(second.public) == 1 and text.startswith(USER_LINE)
    keys = paramiko.HostKeys()
    load_known_hosts(keys, project.known_hosts)  # the facts reader and paramiko take the marked lines
    assert keys.lookup("10.42.0.11")["ssh-ed25519"].get_base64() == second.public.split()[1]
    assert keys.lookup("172.24.4.4")["ssh-ed25519"].get_base64() == other.public.split()[1]
    assert stat.S_IMODE(project.known_hosts.stat().st_mode) == 0o600


def test_a_moved_address_drops_the_old_owners_line(project):
    old, new = generate_host_key(), generate_host_key()
    record_known_host(project, "worker-2", ["172.24.4.6", "10.42.0.12"], old.public)
    record_known_host(project, "worker-3", ["172.24.4.6", "10.42.0.13"], new.public)  # the floating IP moved
    text = project.known_hosts.read_text()
    assert "worker-2" not in text and "172.24.4.6,10.42.0.13" in text


def test_forget_removes_only_affordml_lines_and_files(project):
    project.known_hosts.write_text(USER_LINE)
    for vm, address in (("cp-1", "10.42.0.10"), ("worker-1", "10.42.0.11")):
        record_known_host(project, vm, [address], new_host_key(project, vm).public)
    assert forget_host_keys(project, keep={"cp-1"}) == ["worker-1"]
    assert "worker-1" not in project.known_hosts.read_text() and recorded_public_key(project, "worker-1") is None
    assert not (project.root / key_files("worker-1")[0]).exists()
    assert forget_host_keys(project, keep=set()) == ["cp-1"]
    assert project.known_hosts.read_text() == USER_LINE
    assert sorted(p.name for p in (project.root / "secrets/ssh/hosts").iterdir()) == []
