"""What each kind of string may hold. Config and facts parsing check their fields with these, so a value that
reaches Ansible, an INI file or the terminal is what its name says (an address, a user, an interface, a PCI id).

Every check uses `fullmatch`: a trailing newline never passes. Each returns None when the value is fine,
else a short reason for the error line."""

from __future__ import annotations

import ipaddress
import re
import unicodedata

HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
DNS_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
POSIX_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
# The kernel allows any byte but '/', ':' and whitespace in <= 15; affordml passes names to ip, nft and
# systemd units, so it takes the characters real interface names use.
INTERFACE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
PCI_ADDRESS = re.compile(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]")
PCI_ID = re.compile(r"[0-9a-f]{4}")
PCI_CLASS = re.compile(r"[0-9a-f]{6}")
MAX_TEXT = 512
MAX_PATH = 4096


def has_control(text: str) -> bool:
    """C0/C1 controls (newline, ESC, ...), and the invisible format characters that reorder text (bidi)."""
    return any(unicodedata.category(c) in ("Cc", "Cf") for c in text)


def host_name_problem(value: str) -> str | None:
    if not HOST_NAME.fullmatch(value):
        return "must be lowercase letters, digits and dashes, 1-63 characters"
    return None


def dns_name_ok(value: str) -> bool:
    name = value[:-1] if value.endswith(".") else value
    return 0 < len(name) <= 253 and all(DNS_LABEL.fullmatch(label) for label in name.split("."))


def address_problem(value: str) -> str | None:
    """An IP address or a DNS name."""
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    if dns_name_ok(value) and not value.replace(".", "").isdigit():
        return None
    return f"{value!r} is not an IP address or a DNS name"


def user_problem(value: str) -> str | None:
    if not POSIX_USER.fullmatch(value):
        return f"{value!r} is not a user name (letters, digits, '_', '.', '-'; at most 32; not starting with '-')"
    return None


def interface_problem(value: str) -> str | None:
    if not INTERFACE.fullmatch(value) or value in (".", ".."):
        return f"{value!r} is not a network interface name (1-15 of letters, digits, '_', '.', '-')"
    return None


def pci_address_problem(value: str) -> str | None:
    if not PCI_ADDRESS.fullmatch(value):
        return f"{value!r} is not a PCI address like 0000:01:00.0 (see `lspci -D`)"
    return None


def path_problem(value: str) -> str | None:
    """Any path, as long as it is one line of visible characters."""
    if not value or len(value) > MAX_PATH or has_control(value) or "\x00" in value:
        return "must be a path on one line without control characters"
    return None


def text_problem(value: str, limit: int = MAX_TEXT) -> str | None:
    """Free text (a model name, an OS name): printable, one line, bounded."""
    if len(value) > limit:
        return f"is longer than {limit} characters"
    if has_control(value):
        return f"holds control characters ({value[:40]!r})"
    return None
