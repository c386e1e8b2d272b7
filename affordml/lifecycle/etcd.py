"""The Kubernetes etcd snapshot, taken on the control-plane VM with Kubespray's own etcdctl wrapper
(`/usr/local/bin/etcdctl.sh`, roles/etcdctl_etcdutl at the locked tag: etcdctl with the admin certificates)
and brought back over SSH (strict host keys, the platform's key) as bytes."""

from __future__ import annotations

import shlex

from affordml.errors import RunError
from affordml.kube.access import NodeAccess
from affordml.kube.remote import as_root, connect

ETCDCTL = "/usr/local/bin/etcdctl.sh"
REMOTE_DIR = "/var/backups/affordml"
MAX_SNAPSHOT = 8 << 30


def snapshot_commands(name: str) -> tuple[str, str, str]:
    """(take, read, remove) command lines for the snapshot file `name` on the VM, run as root."""
    path = f"{REMOTE_DIR}/{name}"
    quoted = shlex.quote(path)
    take = f"install -d -m 0700 {REMOTE_DIR} && {ETCDCTL} snapshot save {quoted} && chmod 0600 {quoted}"
    return take, f"cat {quoted}", f"rm -f {quoted}"


def take_snapshot(node: NodeAccess, name: str, timeout: float = 600) -> bytes:
    """Save an etcd snapshot on the VM, read it back, remove it there; a one-line RunError on any failure."""
    import paramiko

    take, read, remove = (as_root(node, ["sh", "-c", line]) for line in snapshot_commands(name))
    client = paramiko.SSHClient()
    try:
        connect(client, node)
        _run(client, take, node, timeout)
        data = _run(client, read, node, timeout, limit=MAX_SNAPSHOT)
        _run(client, remove, node, timeout)
        return data
    except (paramiko.SSHException, OSError) as exc:
        raise RunError(
            f"etcd snapshot on VM {node.name} ({node.address}): SSH failed: {' '.join(str(exc).split())}",
            "check that the VM is ACTIVE (`affordml status`) and that its host key is in the project's known_hosts",
        ) from None
    finally:
        client.close()


def _run(client, command: str, node: NodeAccess, timeout: float, limit: int = 1 << 20) -> bytes:
    _stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
    out = stdout.read(limit + 1)
    err = stderr.read(1 << 16).decode(errors="replace").strip()
    rc = stdout.channel.recv_exit_status()
    if rc != 0 or len(out) > limit:
        raise RunError(
            f"etcd snapshot on VM {node.name}: `{command}` failed (exit {rc}): {err.splitlines()[-1:] or ''}",
            "Kubespray installs etcdctl.sh with etcd: run `affordml init phase kubernetes` first",
        )
    return out
