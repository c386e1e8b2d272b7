"""One command on a VM over SSH (paramiko): strict host keys from the given known_hosts, the platform's key only,
bounded output and time. Every failure is a one-line RunError naming the VM and the fix."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from affordml.errors import RunError
from affordml.kube.access import NodeAccess

CONNECT_TIMEOUT_S = 15
MAX_OUTPUT = 1 << 20


@dataclass(frozen=True)
class Output:
    rc: int
    stdout: str
    stderr: str


def as_root(node: NodeAccess, command: list[str]) -> str:
    """The command line, through `sudo -n` unless the login user is root."""
    line = shlex.join(command)
    return line if node.user == "root" else f"sudo -n {line}"


def connect(client, node: NodeAccess) -> None:
    """Connect a paramiko client to the VM: only host keys from the node's known_hosts, only the platform's key."""
    import paramiko

    if node.known_hosts.exists():
        client.load_host_keys(str(node.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        node.address,
        port=node.port,
        username=node.user,
        key_filename=str(node.key),
        look_for_keys=False,
        allow_agent=False,
        timeout=CONNECT_TIMEOUT_S,
        banner_timeout=CONNECT_TIMEOUT_S,
        auth_timeout=CONNECT_TIMEOUT_S,
    )


def run(node: NodeAccess, command: str, timeout: float = 60) -> Output:
    import paramiko

    client = paramiko.SSHClient()
    try:
        connect(client, node)
        _stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
        out = stdout.read(MAX_OUTPUT).decode(errors="replace")
        err = stderr.read(MAX_OUTPUT).decode(errors="replace")
        return Output(stdout.channel.recv_exit_status(), out, err)
    except paramiko.BadHostKeyException:
        raise RunError(
            f"VM {node.name} ({node.address}) presented a host key that does not match {node.known_hosts}",
            "run `affordml init phase cloud` (it records the host key it gave each VM); if the key still differs, do "
            "not connect: the VM is not the one affordml created",
        ) from None
    except paramiko.AuthenticationException:
        raise RunError(
            f"VM {node.name} ({node.address}) refused the key {node.key} for user {node.user}",
            "run `affordml init phase cloud` so that the VM gets the platform's key, then run again",
        ) from None
    except paramiko.SSHException as exc:
        text = " ".join(str(exc).split())
        fix = (
            f"the VM's host key must be in {node.known_hosts}; run `affordml init phase cloud` to record it"
            if "known_hosts" in text
            else "check that the VM is ACTIVE (`affordml status`) and that SSH answers on it"
        )
        raise RunError(f"VM {node.name} ({node.address}): SSH failed: {text}", fix) from None
    except (TimeoutError, OSError) as exc:
        raise RunError(
            f"VM {node.name} ({node.address}) is unreachable over SSH: {exc.strerror or exc}",
            "check that the VM is ACTIVE (`affordml status`) and that its address answers from this PC",
        ) from None
    finally:
        client.close()
