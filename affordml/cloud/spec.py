"""What the cloud phase wants to exist, derived from the plan alone (pure: no openstacksdk, no I/O)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from affordml.cloud import names
from affordml.errors import PlanError
from affordml.plan.addresses import FIRST_VM_HOST, vm_addresses
from affordml.plan.build import flavor_pci_spec
from affordml.plan.model import Plan, VmSpec, availability_zone_of

PCI_ALIAS_SPEC = "pci_passthrough:alias"
# nova >= 28 (2023.2): the guest's physical address bits; "emulate" needs the host trait
# COMPUTE_ADDRESS_SPACE_EMULATED (libvirt >= 9.2) and ComputeCapabilitiesFilter checks the host's bits.
MAXPHYSADDR_MODE_SPEC = "hw:maxphysaddr_mode"
MAXPHYSADDR_BITS_SPEC = "hw:maxphysaddr_bits"
GPU_IMAGE_PROPERTIES = {"hw_machine_type": "q35", "hw_firmware_type": "uefi"}
FIXED_RANGE_MIN = 16  # addresses from .10 kept out of the DHCP pool for the VMs, also for VMs added later
NODE_PORTS = (30000, 32767)
KUBE_API_PORT = 6443
SSH_PORT = 22


@dataclass(frozen=True)
class FlavorSpec:
    name: str
    vcpus: int
    ram_mib: int
    disk_gib: int
    extra_specs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerSpec:
    vm: str  # the plan's VM name, e.g. worker-1
    name: str  # the server's name in nova, e.g. affordml-worker-1
    role: str
    flavor: str
    address: str
    gpus: tuple[str, ...]  # the host PCI addresses the plan gives it
    pci_spec: str | None  # the flavor's pci_passthrough:alias, e.g. "gpu:1"
    availability_zone: str | None = None  # the zone of the PC that holds its GPUs and disk


@dataclass(frozen=True)
class ZoneSpec:
    """A host aggregate whose availability zone holds one PC's nova-compute, so that its VMs land there."""

    name: str  # also the aggregate's name
    compute_host: str  # nova-compute's host (the PC's host name)
    config_host: str  # its name in affordml.yaml, for messages
    first: bool = False  # the first PC (OpenStack's controller); the others came with add-node


@dataclass(frozen=True)
class RuleSpec:
    """One ingress rule of the platform's security group (IPv4)."""

    protocol: str | None  # tcp | icmp | None (any)
    port_min: int | None = None
    port_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group: bool = False  # from members of the group itself

    def describe(self) -> str:
        what = self.protocol or "all traffic"
        if self.port_min is not None:
            what += f" {self.port_min}" + (f"-{self.port_max}" if self.port_max != self.port_min else "")
        return f"{what} from {'the group' if self.remote_group else self.remote_ip_prefix}"


@dataclass(frozen=True)
class SubnetSpec:
    cidr: str
    gateway_ip: str
    allocation_pools: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ExternalSpec:
    """The provider network for floating IPs, when the platform creates it."""

    cidr: str
    gateway_ip: str
    pool: tuple[str, str]


@dataclass(frozen=True)
class CloudSpec:
    flavors: tuple[FlavorSpec, ...]
    servers: tuple[ServerSpec, ...]
    subnet: SubnetSpec
    external: ExternalSpec
    rules: tuple[RuleSpec, ...]
    gpu_image: bool  # the image needs q35 + UEFI (large-BAR GPUs)
    gpus_offered: dict[str, int] = field(default_factory=dict)  # PCI alias -> GPUs the plan's device_spec offers
    zones: tuple[ZoneSpec, ...] = ()  # one per PC, the first PC's first

    def flavor(self, name: str) -> FlavorSpec:
        return next(f for f in self.flavors if f.name == name)

    def quota_needs(self) -> dict[str, int]:
        """Nova quotas the project needs for the plan's servers."""
        flavors = [self.flavor(s.flavor) for s in self.servers]
        return {
            "instances": len(self.servers),
            "cores": sum(f.vcpus for f in flavors),
            "ram": sum(f.ram_mib for f in flavors),
        }


def cloud_spec(plan: Plan, first_host: str = "main") -> CloudSpec:
    """`first_host`: the first PC's name in affordml.yaml's hosts (affordml.yaml's default when not given)."""
    addresses = vm_addresses(plan)
    flavors: dict[str, FlavorSpec] = {}
    servers = []
    for vm in plan.vms:
        pci = flavor_pci_spec(vm, plan)
        wanted = FlavorSpec(vm.flavor, vm.vcpus, vm.ram_gib * 1024, vm.disk_gib, flavor_extra_specs(vm, pci))
        if flavors.setdefault(vm.flavor, wanted) != wanted:
            raise PlanError(
                f"flavor {vm.flavor} is planned twice with different contents",
                "report this as a bug in affordml's planner",
            )
        node = plan.node_of_vm(vm.name)
        zone = node.availability_zone if node else availability_zone_of(first_host)
        servers.append(
            ServerSpec(vm.name, names.server_name(vm.name), vm.role, vm.flavor, addresses[vm.name], vm.gpus, pci, zone)
        )
    return CloudSpec(
        flavors=tuple(flavors.values()),
        servers=tuple(servers),
        subnet=subnet_spec(plan.network["vm_subnet"], len(plan.vms)),
        external=external_spec(plan.network),
        rules=security_rules(),
        gpu_image=bool(plan.gpus),
        gpus_offered=gpus_offered(plan),
        zones=(
            ZoneSpec(availability_zone_of(first_host), plan.host, first_host, first=True),
            *(ZoneSpec(n.availability_zone, n.hostname, n.host) for n in plan.nodes),
        ),
    )


def gpus_offered(plan: Plan) -> dict[str, int]:
    """How many GPUs of each alias nova may hand out: the plan's GPUs, each named by address in device_spec."""
    counts: dict[str, int] = {}
    for gpu in plan.gpus:
        counts[gpu.nova_alias] = counts.get(gpu.nova_alias, 0) + 1
    return counts


def flavor_extra_specs(vm: VmSpec, pci: str | None) -> dict[str, str]:
    """The GPUs by PCI alias, and the guest address space their BARs need (large-BAR cards)."""
    specs = {PCI_ALIAS_SPEC: pci} if pci else {}
    if vm.maxphysaddr_bits is not None:
        specs[MAXPHYSADDR_MODE_SPEC] = "emulate"
        specs[MAXPHYSADDR_BITS_SPEC] = str(vm.maxphysaddr_bits)
    return specs


def subnet_spec(cidr: str, vm_count: int) -> SubnetSpec:
    """Gateway .1; the VMs' fixed addresses (.10 on) stay out of the DHCP pools."""
    net = ipaddress.ip_network(cidr)
    first_fixed = net.network_address + FIRST_VM_HOST
    last_fixed = first_fixed + max(vm_count, FIXED_RANGE_MIN) - 1
    last_host = net.broadcast_address - 1
    if first_fixed + vm_count - 1 > last_host:
        raise PlanError(
            f"network.vm_subnet {cidr} has no room for {vm_count} VMs from .{FIRST_VM_HOST}",
            "use a larger network.vm_subnet",
        )
    pools = [(str(net.network_address + 2), str(first_fixed - 1))]
    if last_fixed < last_host:
        pools.append((str(last_fixed + 1), str(last_host)))
    return SubnetSpec(str(net), str(net.network_address + 1), tuple(pools))


def external_spec(network: dict[str, str]) -> ExternalSpec:
    """The plan's external subnet, its gateway (this PC behind NAT, or the LAN's router) and floating range."""
    net = ipaddress.ip_network(network["external_subnet"])
    first, last = network["floating_range"].split("-")
    return ExternalSpec(str(net), network["external_gateway"], (first, last))


def security_rules() -> tuple[RuleSpec, ...]:
    anywhere = "0.0.0.0/0"
    return (
        RuleSpec("tcp", SSH_PORT, SSH_PORT, anywhere),
        RuleSpec("tcp", KUBE_API_PORT, KUBE_API_PORT, anywhere),
        RuleSpec("tcp", NODE_PORTS[0], NODE_PORTS[1], anywhere),
        RuleSpec("icmp", None, None, anywhere),
        RuleSpec(None, remote_group=True),
    )


def user_data(server: ServerSpec, host_keys: dict | None = None) -> str:
    """cloud-init for one VM: its name, /etc/hosts, key-only SSH and, when given, its SSH host key (cc_ssh keys
    from affordml.cloud.hostkeys.cloud_config, dumped as YAML data). Kubespray does the rest."""
    text = "\n".join(
        [
            "#cloud-config",
            f"hostname: {server.vm}",
            f"fqdn: {server.vm}.affordml.local",
            "manage_etc_hosts: true",
            "ssh_pwauth: false",
            "disable_root: true",
            "package_update: false",
            "write_files:",
            "  - path: /etc/affordml/node",
            "    permissions: '0644'",
            "    content: |",
            f"      vm={server.vm}",
            f"      role={server.role}",
            f"      address={server.address}",
            f"      gpus={','.join(server.gpus)}",
            "",
        ]
    )
    if host_keys:
        import yaml

        text += yaml.safe_dump(host_keys, default_flow_style=False, sort_keys=False)
    return text
