"""Each VM's SSH host key, made here so that the PC knows it before the VM first boots (no trust on first use).

The cloud phase generates an ed25519 pair per server it creates (private half 0600 in secrets/ssh/hosts/), hands
it to cloud-init in the server's user data (cc_ssh `ssh_keys`; the image's keys deleted, no other type generated)
and records the public half for the VM's floating IP and tenant address in the project's known_hosts. The lines it
writes end with `affordml-vm=<vm>`: only those are ever rewritten or removed; the user's own lines stay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from affordml.project import Project
from affordml.safefile import append_text, list_names, read_text, remove_file, write_text
from affordml.secrets import secure_dir, write_private

HOSTS_DIR = Path("secrets/ssh/hosts")
KNOWN_HOSTS = "known_hosts"
MARK = "affordml-vm="
SUFFIX = "_ed25519"


@dataclass(frozen=True)
class HostKey:
    public: str  # "ssh-ed25519 AAAA..."
    private: str = field(repr=False)  # OpenSSH PEM; never shown


def generate_host_key() -> HostKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return HostKey(public.decode(), private)


def key_files(vm: str) -> tuple[Path, Path]:
    """(private, public) relative to the project folder."""
    return HOSTS_DIR / f"{vm}{SUFFIX}", HOSTS_DIR / f"{vm}{SUFFIX}.pub"


def new_host_key(project: Project, vm: str) -> HostKey:
    """A fresh pair for a server about to be created, kept in secrets/ (replacing a replaced server's pair)."""
    key = generate_host_key()
    private, public = key_files(vm)
    secure_dir(project.root / HOSTS_DIR, project.root)
    write_private(project.root / private, key.private, project.root)
    write_text(project.root, public, key.public + "\n", 0o644)
    return key


def recorded_public_key(project: Project, vm: str) -> str | None:
    text = read_text(project.root, key_files(vm)[1])
    return text.strip() if text else None


def cloud_config(key: HostKey) -> dict:
    """cc_ssh: delete the image's host keys, install ours; ed25519 exists then, so cloud-init generates nothing."""
    return {
        "ssh_deletekeys": True,
        "ssh_genkeytypes": ["ed25519"],
        "ssh_keys": {"ed25519_private": key.private, "ed25519_public": key.public},
    }


# ------------------------------------------------------------------------------------------------ known_hosts


def known_hosts_line(vm: str, addresses: list[str], public: str) -> str:
    return f"{','.join(addresses)} {public} {MARK}{vm}\n"


def _owner(line: str) -> str | None:
    """The VM an affordml line belongs to; None for any other line (the user's, comments)."""
    words = line.split()
    if len(words) == 4 and words[3].startswith(MARK) and not words[0].startswith(("#", "@")):
        return words[3][len(MARK) :]
    return None


def _ours_for(line: str, vm: str, addresses: set[str]) -> bool:
    owner = _owner(line)
    return owner is not None and (owner == vm or bool(addresses & set(line.split()[0].split(","))))


def record_known_host(project: Project, vm: str, addresses: list[str], public: str) -> str:
    """Trust `public` for the VM's addresses: 'kept' (already so), 'added' (appended) or 'replaced' (its old
    affordml lines, found by VM or address, removed by a temp-then-rename rewrite)."""
    text = read_text(project.root, KNOWN_HOSTS) or ""
    lines = text.splitlines(keepends=True)
    want = known_hosts_line(vm, addresses, public)
    ours = [line for line in lines if _ours_for(line, vm, set(addresses))]
    if ours == [want]:
        return "kept"
    if not ours:
        if text and not text.endswith("\n"):
            want = "\n" + want
        append_text(project.root, KNOWN_HOSTS, want)
        return "added"
    kept = [line for line in lines if line not in ours]
    if kept and not kept[-1].endswith("\n"):
        kept[-1] += "\n"
    write_text(project.root, KNOWN_HOSTS, "".join(kept) + want)
    return "replaced"


def forget_host_keys(project: Project, keep: set[str]) -> list[str]:
    """Remove affordml's known_hosts lines and host key files of every VM not in `keep`; the VMs forgotten."""
    text = read_text(project.root, KNOWN_HOSTS)
    gone = set()
    if text:
        lines = text.splitlines(keepends=True)
        stale = [line for line in lines if _owner(line) is not None and _owner(line) not in keep]
        if stale:
            gone |= {_owner(line) for line in stale}
            write_text(project.root, KNOWN_HOSTS, "".join(line for line in lines if line not in stale))
    for name in list_names(project.root, HOSTS_DIR):
        vm = name.removesuffix(".pub").removesuffix(SUFFIX)
        if name in (f"{vm}{SUFFIX}", f"{vm}{SUFFIX}.pub") and vm not in keep:
            remove_file(project.root, HOSTS_DIR / name)
            gone.add(vm)
    return sorted(gone)
