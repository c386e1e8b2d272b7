"""Typed configuration (affordml.yaml). Unknown keys and wrong types are rejected with the field's path."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from affordml import values
from affordml.config.after_hours import AfterHours

MIG_LAYOUT = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def _checked(problem: Callable[[str], str | None]) -> AfterValidator:
    """A pydantic check from one of affordml.values' problem functions."""

    def check(value: str) -> str:
        reason = problem(value)
        if reason:
            raise ValueError(reason)
        return value

    return AfterValidator(check)


def _address_or_local(value: str) -> str | None:
    return None if value == "local" else values.address_problem(value)


def _interface_or(*words: str) -> Callable[[str], str | None]:
    return lambda value: None if value in words else values.interface_problem(value)


def _mig_layout(value: str) -> str | None:
    return None if MIG_LAYOUT.fullmatch(value) else f"{value!r} is not a mig-parted layout name like all-1g.10gb"


Address = Annotated[str, _checked(_address_or_local)]
User = Annotated[str, _checked(values.user_problem)]
PathText = Annotated[str, _checked(values.path_problem)]
Text = Annotated[str, _checked(values.text_problem)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Host(Strict):
    """A PC in the platform. The first host is the one that runs OpenStack's control plane."""

    name: str = Field(description="short host name (lowercase letters, digits, dashes)")
    address: Address = Field("local", description='"local" for this PC, otherwise an IP address or DNS name')
    user: User = Field("root", description="SSH user (needs sudo without a password)")
    ssh_key: PathText | None = Field(None, description="private key file for SSH; default: ssh-agent / ~/.ssh")
    port: int = Field(22, ge=1, le=65535)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        reason = values.host_name_problem(value)
        if reason:
            raise ValueError(reason)
        return value

    @property
    def is_local(self) -> bool:
        return self.address == "local"


class Network(Strict):
    management_interface: Annotated[str, _checked(_interface_or("auto"))] = Field(
        "auto", description='NIC for management; "auto" = the one with the default route'
    )
    external_interface: Annotated[str, _checked(_interface_or("auto", "create"))] = Field(
        "auto",
        description='NIC given to neutron for VM traffic; "create" makes a veth pair (one-NIC PC); '
        '"auto" = a second unused wired NIC, else "create"',
    )
    vm_subnet: str = Field("10.42.0.0/24", description="private network for the Kubernetes VMs")
    external_subnet: str | None = Field(
        None,
        description="provider network for floating IPs; default: 172.24.4.0/24 behind this PC's NAT on a one-NIC PC, "
        "the management NIC's subnet when neutron has a second NIC",
    )
    floating_ip_count: int = Field(8, ge=1, le=254, description="addresses reserved for floating IPs")
    internal_vip: str = Field(
        "auto",
        description="kolla's internal VIP (haproxy/keepalived): a free address of the management network; "
        '"auto" = the highest one not taken by this PC, the router or the floating IPs',
    )

    @field_validator("internal_vip")
    @classmethod
    def _address(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            address = ipaddress.ip_address(value)
        except ValueError as exc:
            raise ValueError(f'not an IP address or "auto" ({exc})') from None
        if address.version != 4:
            raise ValueError('must be an IPv4 address or "auto"')
        return str(address)

    @field_validator("vm_subnet", "external_subnet")
    @classmethod
    def _subnet(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            net = ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"not a network in CIDR form ({exc})") from None
        if net.version != 4 or net.prefixlen > 28:
            raise ValueError("must be an IPv4 network of /28 or larger")
        return str(net)


Size = int | Literal["auto"]


class NodeGroup(Strict):
    count: int = Field(1, ge=0, le=16)
    vcpus: Size = Field("auto", description='vCPUs per VM, or "auto"')
    ram_gib: Size = Field("auto", description='RAM per VM in GiB, or "auto"')
    disk_gib: Size = Field("auto", description='disk per VM in GiB, or "auto"')

    @field_validator("vcpus", "ram_gib", "disk_gib", mode="before")
    @classmethod
    def _positive(cls, value: object) -> object:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError(f'must be a whole number of at least 1 or "auto", not {value!r}')


class Workers(NodeGroup):
    """The worker VMs: two unless the file says otherwise, also when it sets only their sizes."""

    count: int = Field(2, ge=0, le=16, description="worker VMs; GPUs are dealt out among them in turn")


class Vms(Strict):
    control_plane: NodeGroup = Field(default_factory=lambda: NodeGroup(count=1))
    workers: Workers = Field(default_factory=Workers)

    @field_validator("control_plane")
    @classmethod
    def _one_control_plane(cls, value: NodeGroup) -> NodeGroup:
        if value.count != 1:
            raise ValueError("count must be 1 (one control-plane VM per platform)")
        return value


class Auto(Strict):
    mode: Literal["auto"] = "auto"
    role: Literal["any", "notebooks", "training", "inference"] = Field(
        "any",
        description="the work this GPU serves: notebooks (MPS: most throughput, one crash ends every client), "
        "training (time-slicing: faults isolated, memory not), inference (MIG: both isolated; HAMi limits on "
        "cards without MIG), any (MIG where the card has it, else MPS)",
    )


class Exclusive(Strict):
    mode: Literal["exclusive"]


class TimeSlicing(Strict):
    mode: Literal["time-slicing"]
    replicas: int = Field(4, ge=2, le=64, description="jobs that share the GPU")


class Mps(Strict):
    mode: Literal["mps"]
    clients: int = Field(4, ge=2, le=48, description="jobs that share the GPU; memory is split evenly")


class Mig(Strict):
    mode: Literal["mig"]
    layout: Annotated[str, _checked(_mig_layout)] = Field(
        "all-balanced", description="a mig-parted layout name, e.g. all-1g.10gb, all-balanced"
    )


class Hami(Strict):
    mode: Literal["hami"]
    split: int = Field(4, ge=2, le=64, description="jobs that may share one GPU")
    memory_percent: int = Field(25, ge=1, le=100, description="default GPU memory share of a job")
    cores_percent: int = Field(25, ge=1, le=100, description="default compute share of a job")


SharingPolicy = Annotated[Auto | Exclusive | TimeSlicing | Mps | Mig | Hami, Field(discriminator="mode")]


def _mode_shorthand(value):
    return {"mode": value} if isinstance(value, str) else value


class Gpu(Strict):
    sharing: SharingPolicy = Field(default_factory=Auto, description="default sharing mode for every GPU")
    per_gpu: dict[str, SharingPolicy] = Field(
        default_factory=dict, description="sharing mode by PCI address, e.g. 0000:01:00.0"
    )
    exclude: list[str] = Field(default_factory=list, description="PCI addresses of GPUs the platform leaves alone")

    @field_validator("sharing", mode="before")
    @classmethod
    def _shorthand(cls, value):
        return _mode_shorthand(value)

    @field_validator("per_gpu", mode="before")
    @classmethod
    def _per_gpu_shorthand(cls, value):
        return {k: _mode_shorthand(v) for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("per_gpu")
    @classmethod
    def _per_gpu_addresses(cls, value: dict) -> dict:
        for address in value:
            _check_pci_address(address)
        return {k.lower(): v for k, v in value.items()}

    @field_validator("exclude")
    @classmethod
    def _exclude_addresses(cls, value: list[str]) -> list[str]:
        return [_check_pci_address(a).lower() for a in value]


def _check_pci_address(address: str) -> str:
    reason = values.pci_address_problem(address)
    if reason:
        raise ValueError(reason)
    return address


class Cloud(Strict):
    guest_image: PathText | None = Field(
        None, description="image file or http(s) URL for the VMs; default: the version lock's Ubuntu cloud image"
    )
    external_network: Text | None = Field(
        None, description="an existing OpenStack external network for the router; default: affordml creates one"
    )


class Artifacts(Strict):
    mirror: str | None = Field(
        None,
        description="a folder made by `affordml bundle DIR`: downloads come from it (checked the same way), "
        "no internet is used; `affordml init --mirror DIR` overrides it",
    )
    cache_dir: str | None = Field(
        None, description="where verified downloads are kept; default: cache/artifacts in the project folder"
    )


class Ml(Strict):
    jupyterhub: bool = Field(True, description="notebooks with GPU-share profiles")
    training_queue: bool = Field(True, description="Kueue job queue for training")
    inference: bool = Field(True, description="KServe in standard (raw deployment) mode")
    monitoring: bool = Field(True, description="Prometheus, Grafana and dcgm-exporter")
    after_hours: AfterHours | None = Field(
        default_factory=AfterHours, description="training may use the notebooks' share after hours (null: never)"
    )


class Config(Strict):
    """The whole affordml.yaml."""

    hosts: list[Host] = Field(
        default_factory=lambda: [Host(name="main")],
        min_length=1,
        description="the PCs; the first runs OpenStack's control plane",
    )
    network: Network = Field(default_factory=Network, description="NICs and address ranges")
    vms: Vms = Field(default_factory=Vms, description="the Kubernetes VMs carved from the PC")
    gpu: Gpu = Field(default_factory=Gpu, description="how each GPU is shared between jobs")
    ml: Ml = Field(default_factory=Ml, description="the ML environments to install")
    cloud: Cloud = Field(default_factory=Cloud, description="what the cloud phase uses inside OpenStack")
    artifacts: Artifacts = Field(
        default_factory=Artifacts, description="where Kubespray, helm, the charts and the guest image come from"
    )

    @model_validator(mode="after")
    def _unique_hosts(self) -> Config:
        names = [h.name for h in self.hosts]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"hosts: names must be unique, repeated: {', '.join(duplicates)}")
        if any(h.is_local for h in self.hosts[1:]):
            raise ValueError('hosts: only the first host may have address "local"')
        return self
