"""affordml's own known_hosts: read without following a link, @revoked keys kept aside (refused after connect),
@cert-authority lines skipped, a broken line named with its number; accepted keys are appended, never rewritten."""

from __future__ import annotations

import os

import paramiko
import pytest

from affordml.errors import FactsError, UnsafeFile
from affordml.facts.sources import _VerifyPolicy, fingerprint, load_known_hosts
from affordml.safefile import append_text


def public_key() -> paramiko.PKey:
    return paramiko.ECDSAKey.generate()


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "project"
    path.mkdir(mode=0o700)
    return path


def test_plain_revoked_and_cert_authority_lines(root):
    good, bad = public_key(), public_key()
    (root / "known_hosts").write_text(
        "# comment\n\n"
        f"pc,10.0.0.5 {good.get_name()} {good.get_base64()}\n"
        f"@revoked * {bad.get_name()} {bad.get_base64()}\n"
        f"@cert-authority *.lan {bad.get_name()} {bad.get_base64()}\n"
    )
    keys = paramiko.HostKeys()
    revoked = load_known_hosts(keys, root / "known_hosts")
    assert keys.lookup("10.0.0.5")[good.get_name()] == good and keys.lookup("pc")
    assert revoked == [bad] and keys.lookup("x.lan") is None


@pytest.mark.parametrize(
    "line, words",
    [
        ("not a key line", "not a host key line"),
        ("@bogus h ssh-ed25519 AAAA", "unknown marker"),
        ("h ssh-ed25519 !!!notbase64", "not a host key line"),
    ],
)
def test_a_broken_line_is_named(root, line, words):
    (root / "known_hosts").write_text(f"# first\n{line}\n")
    with pytest.raises(FactsError, match=words) as caught:
        load_known_hosts(paramiko.HostKeys(), root / "known_hosts")
    assert "line 2" in caught.value.one_line()


def test_a_linked_known_hosts_is_refused(root, tmp_path):
    outside = tmp_path / "outside"
    outside.write_text("")
    (root / "known_hosts").symlink_to(outside)
    with pytest.raises(UnsafeFile, match="symbolic link"):
        load_known_hosts(paramiko.HostKeys(), root / "known_hosts")


def test_an_accepted_key_is_appended_to_what_was_there(root):
    key = public_key()
    (root / "known_hosts").write_text("# the user's own notes stay\n")
    policy = _VerifyPolicy(fingerprint(key))
    policy.missing_host_key(paramiko.SSHClient(), "[10.0.0.5]:2222", key)
    for line in policy.added:
        append_text(root, "known_hosts", line)
    text = (root / "known_hosts").read_text()
    assert text.startswith("# the user's own notes stay\n") and f"[10.0.0.5]:2222 {key.get_name()}" in text
    assert os.stat(root / "known_hosts").st_mode & 0o777 == 0o600
    keys = paramiko.HostKeys()
    load_known_hosts(keys, root / "known_hosts")
    assert keys.lookup("[10.0.0.5]:2222")[key.get_name()] == key
