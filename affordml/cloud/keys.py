"""The platform's SSH key for its VMs: generated here once, private half 0600 in secrets/."""

from __future__ import annotations

from pathlib import Path

from affordml.project import Project
from affordml.safefile import read_text, write_text
from affordml.secrets import secure_dir, write_private


def key_paths(project: Project) -> tuple[Path, Path]:
    folder = project.secrets_dir / "ssh"
    return folder / "affordml_ed25519", folder / "affordml_ed25519.pub"


def ensure_ssh_key(project: Project) -> tuple[Path, str, bool]:
    """(private key path, public key line, created now). An existing key pair is kept."""
    private, public = key_paths(project)
    have_private = read_text(project.root, private.relative_to(project.root)) is not None
    public_text = read_text(project.root, public.relative_to(project.root))
    if have_private and public_text is not None:
        return private, public_text.strip(), False
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    secure_dir(private.parent, project.root)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    line = f"{line} affordml"
    write_private(private, pem, project.root)
    write_text(project.root, public.relative_to(project.root), line + "\n", 0o644)
    return private, line, True


def same_key(a: str, b: str) -> bool:
    """Compare two OpenSSH public key lines by type and key, ignoring the comment."""
    return a.split()[:2] == b.split()[:2]
