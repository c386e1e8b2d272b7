"""OpenStack answers turned into one-line errors with their fix (pure: works on any exception-like object).

openstacksdk's HttpException carries status_code, message and details; nova's server fault is a dict with
message, code and details. Nothing here imports openstacksdk, so the mapping is unit-tested with fakes.
"""

from __future__ import annotations

import re

from affordml.errors import ConfirmationRequired, RunError

ALIAS_MISSING = re.compile(r"PCI alias (?P<alias>[\w.-]+) is not defined", re.IGNORECASE)
QUOTA = re.compile(r"quota exceeded|over quota|exceeds? .*quota|quota .* exceeded", re.IGNORECASE)
NO_VALID_HOST = re.compile(r"no valid host", re.IGNORECASE)
REAPPLY_OPENSTACK = "`affordml init phase openstack` (it renders and applies nova's [pci] config)"


class CloudError(RunError):
    """The cloud refused or failed something the cloud phase asked for."""

    label = "cloud"


class PciAliasMissing(CloudError):
    pass


class NoValidHost(CloudError):
    pass


class QuotaExceeded(CloudError):
    pass


class ImageUploadFailed(CloudError):
    pass


class ServerFailed(CloudError):
    pass


class CloudUnreachable(CloudError):
    pass


class ChangeRefused(ConfirmationRequired):
    """A plan change that would destroy a VM, asked for without confirmation."""


def message_of(exc: BaseException) -> str:
    """The service's own words: openstacksdk puts them in details (the body) or the message."""
    parts = []
    for attr in ("details", "message"):
        value = getattr(exc, attr, None)
        if value and str(value) not in parts:
            parts.append(str(value))
    text = " ".join(parts) if parts else str(exc)
    return " ".join(text.split())


def status_of(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return int(code) if isinstance(code, int | str) and str(code).isdigit() else None


def api_error(exc: BaseException, action: str, *, flavor: str | None = None, server: str | None = None) -> CloudError:
    """An error answered by an OpenStack API while doing `action` (e.g. "create server affordml-worker-1")."""
    text = message_of(exc)
    status = status_of(exc)
    alias = ALIAS_MISSING.search(text)
    if alias:
        return pci_alias_missing(alias.group("alias"), flavor, server)
    if QUOTA.search(text) or status == 413:
        return quota_exceeded(action, text)
    if NO_VALID_HOST.search(text):
        return NoValidHost(f"{action}: nova found no host: {text}", "see `affordml status` and nova-scheduler's log")
    if status == 401:
        return CloudUnreachable(
            f"{action}: OpenStack refused the credentials ({text})",
            "check the admin entry in the project's secrets/clouds.yaml (or /etc/kolla/clouds.yaml)",
        )
    if status == 403:
        return CloudError(
            f"{action}: OpenStack says this is not allowed ({text})",
            "the cloud phase needs the admin credentials of the OpenStack that `affordml init` installed",
        )
    shown = f"HTTP {status}: {text}" if status else text
    return CloudError(f"{action} failed: {shown}", "fix what OpenStack names, then run `affordml init` again")


def pci_alias_missing(alias: str, flavor: str | None = None, server: str | None = None) -> PciAliasMissing:
    who = f"flavor {flavor}" if flavor else "the GPU flavor"
    where = f" (creating {server})" if server else ""
    return PciAliasMissing(
        f"nova answered 'PCI alias {alias} is not defined'{where}: {who} asks for PCI alias {alias!r}, "
        "but nova's [pci] alias option does not define it",
        f"define alias {alias!r} in nova-api's and nova-compute's [pci] alias, e.g. with {REAPPLY_OPENSTACK}, "
        "then run `affordml init` again",
    )


def quota_exceeded(action: str, text: str) -> QuotaExceeded:
    return QuotaExceeded(
        f"{action}: the project's quota is exceeded ({text})",
        "raise the affordml project's quotas (`openstack quota set --cores N --ram MiB --instances N affordml`), "
        "or lower the VM sizes in affordml.yaml (vms.*)",
    )


def server_fault(server: str, fault: dict | None, status: str, diagnosis: str | None = None) -> CloudError:
    """A server that went to ERROR: nova's fault message, and for 'No valid host' why no host fits."""
    fault = fault or {}
    text = " ".join(str(fault.get("message") or "").split()) or "no fault message"
    if NO_VALID_HOST.search(text):
        why = diagnosis or "no compute node has room for it (see nova-scheduler's log)"
        return NoValidHost(
            f"server {server}: nova found no host for it (No valid host): {why}",
            _no_valid_host_fix(why),
        )
    alias = ALIAS_MISSING.search(text)
    if alias:
        return pci_alias_missing(alias.group("alias"), server=server)
    code = fault.get("code")
    return ServerFailed(
        f"server {server} is in {status}: nova says: {text}" + (f" (code {code})" if code else ""),
        "fix what nova names (nova-compute's log has the details), then run `affordml init` again: "
        "a server that failed before it got a host is recreated",
    )


def _no_valid_host_fix(why: str) -> str:
    fixes = []
    if "GPU" in why or "PCI" in why:
        fixes.append(
            "free the GPU (delete the server that holds it) or lower the GPUs per VM; check that vfio-pci holds "
            "the GPU and that nova's [pci] device_spec names it (`affordml doctor`)"
        )
    if "RAM" in why or "vCPU" in why or "disk" in why:
        fixes.append("lower the VM sizes in affordml.yaml (vms.*) or free the compute node")
    if not fixes:
        fixes.append("see nova-scheduler's log for the filter that removed the host")
    return "; ".join(fixes) + ", then run `affordml init` again"


def image_upload_failed(source: str, exc: BaseException) -> ImageUploadFailed:
    return ImageUploadFailed(
        f"uploading the guest image {source} to glance failed: {message_of(exc)}",
        "check glance's free disk space and its log; a half-uploaded image is removed, so run `affordml init` again",
    )


def wait_timeout(server: str, status: str, seconds: int) -> ServerFailed:
    return ServerFailed(
        f"server {server} is still {status} after {seconds} s",
        "look at nova-compute's log (image download, PCI passthrough), then run `affordml init` again",
    )
