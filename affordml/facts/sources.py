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
    if known_hosts.exists():
        client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(_VerifyPolicy(accept_fingerprint))
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
        known_hosts.parent.mkdir(parents=True, exist_ok=True)
        client.save_host_keys(str(known_hosts))
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


class _UnknownHostKey(Exception):
    def __init__(self, fp: str, key_type: str) -> None:
        super().__init__(fp)
        self.fingerprint = fp
        self.key_type = key_type


class _VerifyPolicy:
    """Accept an unknown key only when it matches the fingerprint the user confirmed."""

    def __init__(self, accepted: str | None) -> None:
        self.accepted = accepted

    def missing_host_key(self, client, hostname, key) -> None:
        fp = fingerprint(key)
        if self.accepted != fp:
            raise _UnknownHostKey(fp, key.get_name())
        client.get_host_keys().add(hostname, key.get_name(), key)
