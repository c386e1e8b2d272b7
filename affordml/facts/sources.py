"""Where snapshots come from: this machine, a saved file, or a remote host over SSH."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from affordml import textfile
from affordml.errors import FactsError
from affordml.facts.collect import collector_script, parse_records
from affordml.facts.snapshot import SNAPSHOT_FORMAT, Snapshot
from affordml.safefile import append_text, read_text

FACTS_LIMIT = 32 * 1024**2  # a snapshot is a few hundred KiB; a host's facts never come near this


def _unique_keys(pairs: list) -> dict:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen = set()
        repeated = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"key {repeated!r} appears twice in one object")
    return data


def load_snapshot_file(path: Path) -> Snapshot:
    """A snapshot saved by `affordml facts --save` (or a test fixture)."""
    try:
        data = json.loads(textfile.read_text(path, FACTS_LIMIT), object_pairs_hook=_unique_keys)
    except FileNotFoundError:
        raise FactsError(f"facts file {path} does not exist", "run `affordml facts --save FILE` first") from None
    except textfile.NotRegularFile:
        raise FactsError(f"facts file {path} is not a regular file", "point --facts at a saved facts file") from None
    except textfile.TooLarge:
        raise FactsError(
            f"facts file {path} is larger than {FACTS_LIMIT // 1024**2} MiB", "point --facts at a saved facts file"
        ) from None
    except UnicodeDecodeError as exc:
        raise FactsError(
            f"facts file {path} is not UTF-8 text (byte {exc.start})",
            "save the facts again with `affordml facts --save FILE`",
        ) from None
    except OSError as exc:
        raise FactsError(
            f"facts file {path} cannot be read ({exc.strerror or exc})", "check the path and permissions"
        ) from None
    except json.JSONDecodeError as exc:
        raise FactsError(
            f"facts file {path} is not JSON (line {exc.lineno}: {exc.msg})",
            "save the facts again with `affordml facts --save FILE`",
        ) from None
    except ValueError as exc:
        raise FactsError(
            f"facts file {path}: {exc}", "save the facts again with `affordml facts --save FILE`"
        ) from None
    if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
        raise FactsError(
            f"facts file {path}: field 'format' must be {SNAPSHOT_FORMAT!r}",
            "save the facts again with `affordml facts --save FILE`",
        )
    for key in ("files", "links", "dirs", "commands"):
        if not isinstance(data.get(key, {}), dict):
            raise FactsError(f"facts file {path}: field {key!r} must be a mapping", "save the facts again")
        for name, value in data.get(key, {}).items():
            if not _well_typed(key, value):
                kind = "a list of names" if key == "dirs" else "text"
                raise FactsError(
                    f"facts file {path}: {key}[{name!r}] must be {kind}, not {type(value).__name__}",
                    "save the facts again with `affordml facts --save FILE`",
                )
    return Snapshot.from_dict(data)


def _well_typed(key: str, value) -> bool:
    """dirs hold lists of names; files, links and commands hold text."""
    if key == "dirs":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, str)


def fingerprint(key) -> str:
    """OpenSSH-style SHA256 fingerprint of a paramiko public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def ssh_snapshot(
    address: str,
    user: str,
    key_file: Path | None,
    known_hosts: Path,
    port: int = 22,
    accept_fingerprint: str | None = None,
    timeout: float = 15.0,
) -> Snapshot:
    """Run the collector on a remote host in one SSH round trip. Unknown host keys are refused unless the
    caller passes the exact fingerprint the user accepted; an accepted key is added to known_hosts."""
    import paramiko

    client = paramiko.SSHClient()
    revoked = load_known_hosts(client.get_host_keys(), known_hosts)
    policy = _VerifyPolicy(accept_fingerprint)
    client.set_missing_host_key_policy(policy)
    try:
        client.connect(
            address,
            port=port,
            username=user,
            key_filename=str(key_file) if key_file else None,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            allow_agent=key_file is None,
            look_for_keys=key_file is None,
        )
    except _UnknownHostKey as exc:
        raise FactsError(
            f"host key of {address} is unknown: {exc.fingerprint} ({exc.key_type})",
            f"check the fingerprint on the host (`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub`), then run again "
            f"with --accept-host-key {exc.fingerprint}",
        ) from None
    except paramiko.BadHostKeyException:
        raise FactsError(
            f"host key of {address} does not match the one in {known_hosts}",
            "if the host was reinstalled, remove its line from that file; otherwise do not connect",
        ) from None
    except (OSError, paramiko.SSHException) as exc:
        raise FactsError(
            f"cannot reach {user}@{address}:{port} over SSH ({exc})",
            "check the address, that sshd runs there, and that the key is in the user's authorized_keys",
        ) from None
    try:
        server_key = client.get_transport().get_remote_server_key()
        if any(server_key == key for key in revoked):
            raise FactsError(
                f"host key of {address} ({fingerprint(server_key)}) is marked @revoked in {known_hosts}",
                "do not connect; if the host has a new key, check its fingerprint on the host itself",
            )
        for line in policy.added:
            append_text(known_hosts.parent, known_hosts.name, line)  # never rewrites the file
        stdin, stdout, _ = client.exec_command("sh -s", timeout=120)
        stdin.write(collector_script())
        stdin.channel.shutdown_write()
        text = _read_bounded(stdout, address)
    finally:
        client.close()
    return parse_records(text, source=f"ssh://{user}@{address}:{port}")


def _read_bounded(stream, address: str) -> str:
    """The collector's output, at most FACTS_LIMIT bytes: a host cannot fill this PC's memory."""
    data = stream.read(FACTS_LIMIT + 1)
    if len(data) > FACTS_LIMIT:
        raise FactsError(
            f"{address} sent more than {FACTS_LIMIT // 1024**2} MiB of facts", "check what runs at login on that host"
        )
    return data.decode(errors="replace")


def load_known_hosts(host_keys, path: Path) -> list:
    """affordml's own known_hosts into paramiko's HostKeys (read without following a link); returns the
    @revoked keys. @cert-authority lines are skipped (host certificates are not checked: such a host's plain key
    is then unknown and must be accepted by fingerprint); a line that is not a host key is a one-line error."""
    from paramiko.hostkeys import HostKeyEntry, InvalidHostKey
    from paramiko.ssh_exception import SSHException

    text = read_text(path.parent, path.name)
    revoked = []
    for number, line in enumerate((text or "").splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        marker = words[0] if words[0].startswith("@") else None
        if marker not in (None, "@revoked", "@cert-authority"):
            raise _bad_known_hosts(path, number, f"unknown marker {marker!r}")
        if marker == "@cert-authority":
            continue
        try:
            entry = HostKeyEntry.from_line(" ".join(words[1:] if marker else words), number)
        except (InvalidHostKey, SSHException, ValueError, TypeError, IndexError):
            entry = None
        if entry is None or entry.key is None:
            raise _bad_known_hosts(path, number, "not a host key line")
        if marker == "@revoked":
            revoked.append(entry.key)
            continue
        for name in entry.hostnames:
            host_keys.add(name, entry.key.get_name(), entry.key)
    return revoked


def _bad_known_hosts(path: Path, number: int, what: str) -> FactsError:
    return FactsError(
        f"{path} line {number}: {what}",
        f"remove or repair that line (`sed -i '{number}d' {path}`), then run again",
    )


class _UnknownHostKey(Exception):
    def __init__(self, fp: str, key_type: str) -> None:
        super().__init__(fp)
        self.fingerprint = fp
        self.key_type = key_type


class _VerifyPolicy:
    """Accept an unknown key only when it matches the fingerprint the user confirmed."""

    def __init__(self, accepted: str | None) -> None:
        self.accepted = accepted
        self.added: list[str] = []  # known_hosts lines to append once the connection stands

    def missing_host_key(self, client, hostname, key) -> None:
        fp = fingerprint(key)
        if self.accepted != fp:
            raise _UnknownHostKey(fp, key.get_name())
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.added.append(f"{hostname} {key.get_name()} {key.get_base64()}\n")
