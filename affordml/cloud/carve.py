"""Idempotent ensure-operations: each looks first, changes only what differs from the plan, and says what it did.

Admin connection: the project, its user, quotas, flavors and the external network. The platform user's
connection (scoped to the project): image, network, router, security group, keypair, ports and servers.
openstacksdk objects come in through the connections; this module imports nothing of it at load time.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from affordml.cloud import names
from affordml.cloud.faults import (
    ChangeRefused,
    CloudError,
    CloudUnreachable,
    api_error,
    image_upload_failed,
    server_fault,
    wait_timeout,
)
from affordml.cloud.spec import (
    GPU_IMAGE_PROPERTIES,
    MAXPHYSADDR_BITS_SPEC,
    PCI_ALIAS_SPEC,
    CloudSpec,
    FlavorSpec,
    RuleSpec,
    ServerSpec,
)

CONFIRM_FLAG = "--yes-i-really-really-mean-it"
POLL_S = 1.0


@dataclass
class CloudOptions:
    image: str | None = None  # local file or URL of the guest image; None: the lock's guest_image url
    external_network: str | None = None  # use this existing external network instead of creating one
    physical_network: str = "physnet1"  # kolla's provider physnet, for the external network the platform creates
    confirm: bool = False  # allow replacing or deleting VMs (their disks are lost)
    server_timeout_s: int = 900
    admin_clouds_yaml: Path | None = None
    admin_cloud: str | None = None


@dataclass
class Outcome:
    changes: list[str] = field(default_factory=list)
    project_id: str = ""
    user_id: str = ""
    image_id: str = ""
    network_id: str = ""
    subnet_id: str = ""
    router_id: str = ""
    external_network_id: str = ""
    security_group_id: str = ""
    keypair: str = ""
    flavors: dict[str, str] = field(default_factory=dict)  # name -> id
    servers: dict[str, dict] = field(default_factory=dict)  # vm -> record


class Carver:
    def __init__(self, admin, spec: CloudSpec, options: CloudOptions, say: Callable[[str], None]) -> None:
        self.admin = admin
        self.user = None
        self.spec = spec
        self.options = options
        self.say = say
        self.out = Outcome()
        self.zones: dict[str, str | None] = {}  # each planned zone's effective one (cloud.zones.ensure_zones)

    def changed(self, what: str) -> None:
        self.out.changes.append(what)
        self.say(f"[cloud] {what}")

    def call(self, action: str, fn, *args, flavor: str | None = None, server: str | None = None, **kwargs):
        """One API call; an HTTP error becomes a one-line CloudError."""
        from keystoneauth1 import exceptions as ksa
        from openstack import exceptions

        try:
            return fn(*args, **kwargs)
        except exceptions.HttpException as exc:
            raise api_error(exc, action, flavor=flavor, server=server) from None
        except exceptions.SDKException as exc:
            raise CloudError(f"{action} failed: {exc}", "fix what it names, then run `affordml init` again") from None
        except ksa.ClientException as exc:
            raise CloudUnreachable(
                f"{action}: OpenStack did not answer ({type(exc).__name__}: {exc})",
                "check that the OpenStack services run (`affordml status`), then run `affordml init` again",
            ) from None

    def _find_or_create(self, kind: str, find, create, name: str, where: dict, *, tag=None, said=None, **attrs):
        """The `kind` called `name` (find's filters in `where`), or a new one described as the platform's.

        `tag` (a set_tags method) tags a new one; `said` replaces "created <kind> <name>" in the changes.
        """
        found = self.call(f"find {kind}", find, name, **where)
        if found is not None:
            return found
        created = self.call(f"create {kind}", create, name=name, description=names.DESCRIPTION, **attrs)
        if tag is not None:
            self.call(f"tag {kind}", tag, created, [names.TAG])
        self.changed(said or f"created {kind} {name}")
        return created

    # ------------------------------------------------------------------------------------ identity (admin)

    def ensure_project(self):
        identity = self.admin.identity
        project = self._find_or_create(
            "project",
            identity.find_project,
            identity.create_project,
            names.PROJECT,
            {"domain_id": "default"},
            domain_id="default",
            tags=[names.TAG],
        )
        self.out.project_id = project.id
        return project

    def ensure_user(self, project, password: str):
        identity = self.admin.identity
        user = self._find_or_create(
            "user",
            identity.find_user,
            identity.create_user,
            names.USER,
            {"domain_id": "default"},
            domain_id="default",
            password=password,
            default_project_id=project.id,
        )
        role = self.call("find role", identity.find_role, names.MEMBER_ROLE, ignore_missing=False)
        if not self.call("check role", identity.validate_user_has_project_role, project, user, role):
            self.call("assign role", identity.assign_project_role_to_user, project, user, role)
            self.changed(f"gave user {names.USER} role {names.MEMBER_ROLE} in project {names.PROJECT}")
        self.out.user_id = user.id
        return user

    def reset_password(self, user, password: str) -> None:
        self.call("set the platform user's password", self.admin.identity.update_user, user, password=password)
        self.changed(f"set the password of user {names.USER} (from secrets/openstack.yml)")

    def ensure_quotas(self, project) -> None:
        needs = self.spec.quota_needs()
        current = self.call("read quotas", self.admin.compute.get_quota_set, project)
        raise_to = {
            k: v for k, v in needs.items() if (getattr(current, k, None) or 0) != -1 and (getattr(current, k) or 0) < v
        }
        if raise_to:
            self.call("set quotas", self.admin.compute.update_quota_set, project, **raise_to)
            self.changed("raised compute quotas: " + ", ".join(f"{k} {v}" for k, v in sorted(raise_to.items())))

    # --------------------------------------------------------------------------------- flavors (admin)

    def ensure_flavors(self) -> None:
        compute = self.admin.compute
        existing = {f.name: f for f in self.call("list flavors", compute.flavors, details=True)}
        for wanted in self.spec.flavors:
            flavor = existing.get(wanted.name)
            if flavor is None:
                flavor = self.call(
                    f"create flavor {wanted.name}",
                    compute.create_flavor,
                    name=wanted.name,
                    vcpus=wanted.vcpus,
                    ram=wanted.ram_mib,
                    disk=wanted.disk_gib,
                    is_public=True,
                    description=names.DESCRIPTION,
                    flavor=wanted.name,
                )
                self.changed(f"created flavor {wanted.name}")
            elif (flavor.vcpus, flavor.ram, flavor.disk) != (wanted.vcpus, wanted.ram_mib, wanted.disk_gib):
                raise CloudError(
                    f"flavor {wanted.name} exists with {flavor.vcpus} vCPUs, {flavor.ram} MiB, {flavor.disk} GiB; "
                    f"the plan needs {wanted.vcpus}, {wanted.ram_mib}, {wanted.disk_gib}",
                    "delete that flavor (`openstack flavor delete`), then run `affordml init` again",
                )
            self._sync_extra_specs(flavor, wanted)
            self.out.flavors[wanted.name] = flavor.id

    def _sync_extra_specs(self, flavor, wanted: FlavorSpec) -> None:
        compute = self.admin.compute
        have = dict(flavor.extra_specs or {})
        if not have:
            fetched = self.call("read flavor extra specs", compute.fetch_flavor_extra_specs, flavor)
            have = dict(fetched.extra_specs or {})
        missing = {k: v for k, v in wanted.extra_specs.items() if have.get(k) != v}
        if missing:
            self.call(
                f"set extra specs of flavor {wanted.name}",
                compute.create_flavor_extra_specs,
                flavor,
                missing,
                flavor=wanted.name,
            )
            self.changed(f"flavor {wanted.name}: set " + ", ".join(f"{k}={v}" for k, v in missing.items()))
        if PCI_ALIAS_SPEC in have and PCI_ALIAS_SPEC not in wanted.extra_specs:
            self.call("drop extra spec", compute.delete_flavor_extra_specs_property, flavor, PCI_ALIAS_SPEC)
            self.changed(f"flavor {wanted.name}: removed {PCI_ALIAS_SPEC}")

    # ------------------------------------------------------------------------------- image (user)

    def ensure_image(self, source: Callable[[], Path]):
        image_api = self.user.image
        ours = [i for i in self.call("list images", image_api.images, name=names.IMAGE, owner=self.out.project_id)]
        ready = [i for i in ours if i.status == "active"]
        for broken in (i for i in ours if i.status != "active"):
            self.call("delete a broken image", image_api.delete_image, broken, ignore_missing=True)
            self.changed(f"deleted image {broken.id} left {broken.status} by an earlier upload")
        wanted_props = dict(GPU_IMAGE_PROPERTIES) if self.spec.gpu_image else {}
        if ready:
            image = ready[0]
            props = dict(getattr(image, "properties", None) or {})
            stale = {k: v for k, v in wanted_props.items() if str(getattr(image, k, None) or props.get(k)) != v}
            if stale:  # glance's JSON patch "add" sets a property whether or not the image has it yet
                patch = [{"op": "add", "path": f"/{k}", "value": v} for k, v in stale.items()]
                self.call("update image properties", _patch_image, image_api, image.id, patch)
                self.changed(f"image {names.IMAGE}: set " + ", ".join(f"{k}={v}" for k, v in stale.items()))
            self.out.image_id = image.id
            return image
        path = source()
        from affordml.cloud.image import disk_format

        try:
            image = image_api.create_image(
                names.IMAGE,
                filename=str(path),
                disk_format=disk_format(path),
                container_format="bare",
                tags=[names.TAG],
                disable_vendor_agent=False,
                allow_duplicates=True,
                wait=True,
                timeout=1800,
                validate_checksum=True,
                meta={names.MARK_KEY: names.MARK_VALUE, **wanted_props},
            )
        except Exception as exc:  # noqa: BLE001 - any upload failure: clean up, then one line
            for left in image_api.images(name=names.IMAGE, owner=self.out.project_id):
                if left.status != "active":
                    image_api.delete_image(left, ignore_missing=True)
            raise image_upload_failed(str(path), exc) from None
        if image.status != "active":
            image_api.delete_image(image, ignore_missing=True)
            raise image_upload_failed(str(path), RuntimeError(f"glance left the image {image.status}"))
        self.changed(f"uploaded image {names.IMAGE} from {path}")
        self.out.image_id = image.id
        return image

    # --------------------------------------------------------------------------------- network

    def ensure_external_network(self):
        network_api = self.admin.network
        if self.options.external_network:
            net = self.call("find external network", network_api.find_network, self.options.external_network)
            if net is None or not net.is_router_external:
                raise CloudError(
                    f"external network {self.options.external_network!r} does not exist or is not external",
                    "name an existing external network (openstack network list --external), or leave the option "
                    "unset to let affordml create one from the plan",
                )
            self.out.external_network_id = net.id
            return net
        ext = self.spec.external
        net = self._find_or_create(
            "external network",
            network_api.find_network,
            network_api.create_network,
            names.EXTERNAL_NETWORK,
            {},
            tag=network_api.set_tags,
            said=f"created external network {names.EXTERNAL_NETWORK} on {self.options.physical_network}",
            is_router_external=True,
            provider_network_type="flat",
            provider_physical_network=self.options.physical_network,
        )
        subnet = self.call("find external subnet", network_api.find_subnet, names.EXTERNAL_SUBNET, network_id=net.id)
        if subnet is None:
            self.call(
                "create external subnet",
                network_api.create_subnet,
                name=names.EXTERNAL_SUBNET,
                network_id=net.id,
                ip_version=4,
                cidr=ext.cidr,
                gateway_ip=ext.gateway_ip,
                is_dhcp_enabled=False,
                allocation_pools=[{"start": ext.pool[0], "end": ext.pool[1]}],
                description=names.DESCRIPTION,
            )
            self.changed(f"created external subnet {ext.cidr} (floating IPs {ext.pool[0]}-{ext.pool[1]})")
        elif subnet.cidr != ext.cidr:
            raise CloudError(
                f"external subnet {names.EXTERNAL_SUBNET} is {subnet.cidr}, the plan says {ext.cidr}",
                "put network.external_subnet back, or run `affordml destroy` and carve again",
            )
        else:
            self._update_external_subnet(subnet)
        self.out.external_network_id = net.id
        return net

    def _update_external_subnet(self, subnet) -> None:
        """Same subnet, other gateway or floating range in the plan (network.floating_ip_count, a new router)."""
        ext = self.spec.external
        pools = [{"start": ext.pool[0], "end": ext.pool[1]}]
        changes = {}
        if subnet.gateway_ip != ext.gateway_ip:
            changes["gateway_ip"] = ext.gateway_ip
        if _pools(subnet.allocation_pools) != _pools(pools):
            changes["allocation_pools"] = pools
        if changes:
            self.call("update external subnet", self.admin.network.update_subnet, subnet, **changes)
            self.changed(
                f"external subnet {ext.cidr}: gateway {ext.gateway_ip}, floating IPs {ext.pool[0]}-{ext.pool[1]}"
            )

    def ensure_network(self, external) -> None:
        network_api = self.user.network
        ours = {"project_id": self.out.project_id}
        net = self._find_or_create(
            "network",
            network_api.find_network,
            network_api.create_network,
            names.NETWORK,
            ours,
            tag=network_api.set_tags,
        )
        want = self.spec.subnet
        pools = [{"start": a, "end": b} for a, b in want.allocation_pools]
        subnet = self.call("find subnet", network_api.find_subnet, names.SUBNET, network_id=net.id)
        if subnet is None:
            subnet = self.call(
                "create subnet",
                network_api.create_subnet,
                name=names.SUBNET,
                network_id=net.id,
                ip_version=4,
                cidr=want.cidr,
                gateway_ip=want.gateway_ip,
                allocation_pools=pools,
                is_dhcp_enabled=True,
                description=names.DESCRIPTION,
            )
            self.changed(f"created subnet {want.cidr}")
        elif subnet.cidr != want.cidr:
            raise CloudError(
                f"subnet {names.SUBNET} is {subnet.cidr}, the plan now says network.vm_subnet {want.cidr}; "
                "moving the VMs would destroy them",
                f"put network.vm_subnet back to {subnet.cidr}, "
                f"or run `affordml destroy {CONFIRM_FLAG}` and carve again",
            )
        elif _pools(subnet.allocation_pools) != _pools(pools):
            self.call("update subnet pools", network_api.update_subnet, subnet, allocation_pools=pools)
            self.changed(f"subnet {want.cidr}: DHCP pools set to {want.allocation_pools}")
        self.out.network_id, self.out.subnet_id = net.id, subnet.id
        gateway = {"network_id": external.id}
        router = self._find_or_create(
            "router",
            network_api.find_router,
            network_api.create_router,
            names.ROUTER,
            ours,
            tag=network_api.set_tags,
            said=f"created router {names.ROUTER} to {external.name}",
            external_gateway_info=gateway,
        )
        if (router.external_gateway_info or {}).get("network_id") != external.id:
            self.call("set router gateway", network_api.update_router, router, external_gateway_info=gateway)
            self.changed(f"router {names.ROUTER}: gateway set to {external.name}")
        ports = self.call("list router ports", network_api.ports, device_id=router.id, network_id=net.id)
        if not any(ip.get("subnet_id") == subnet.id for p in ports for ip in p.fixed_ips or []):
            self.call("attach router", network_api.add_interface_to_router, router, subnet.id)
            self.changed(f"attached router {names.ROUTER} to {want.cidr}")
        self.out.router_id = router.id

    def ensure_security_group(self) -> None:
        network_api = self.user.network
        group = self._find_or_create(
            "security group",
            network_api.find_security_group,
            network_api.create_security_group,
            names.SECURITY_GROUP,
            {"project_id": self.out.project_id},
        )
        rules = list(self.call("list rules", network_api.security_group_rules, security_group_id=group.id))
        have = {}
        for rule in rules:
            if rule.direction == "ingress" and rule.ether_type == "IPv4":
                have[_rule_key(rule, group.id)] = rule
        wanted = {_spec_key(r): r for r in self.spec.rules}
        for key, rule in wanted.items():
            if key not in have:
                self.call(
                    "add security group rule",
                    network_api.create_security_group_rule,
                    security_group_id=group.id,
                    direction="ingress",
                    ether_type="IPv4",
                    protocol=rule.protocol,
                    port_range_min=rule.port_min,
                    port_range_max=rule.port_max,
                    remote_ip_prefix=rule.remote_ip_prefix,
                    remote_group_id=group.id if rule.remote_group else None,
                )
                self.changed(f"security group {names.SECURITY_GROUP}: allowed {rule.describe()}")
        for key, rule in have.items():
            if key not in wanted:
                self.call("remove security group rule", network_api.delete_security_group_rule, rule)
                self.changed(f"security group {names.SECURITY_GROUP}: removed rule {key}")
        self.out.security_group_id = group.id

    def ensure_keypair(self, public_key: str) -> None:
        from affordml.cloud.keys import same_key

        compute = self.user.compute
        pair = self.call("find keypair", compute.find_keypair, names.KEYPAIR)
        if pair is not None and not same_key(pair.public_key, public_key):
            self.call("replace keypair", compute.delete_keypair, pair)
            self.changed(f"keypair {names.KEYPAIR} differed from secrets/ssh: replaced (running VMs keep the old key)")
            pair = None
        if pair is None:
            self.call("create keypair", compute.create_keypair, name=names.KEYPAIR, public_key=public_key)
            self.changed(f"imported keypair {names.KEYPAIR}")
        self.out.keypair = names.KEYPAIR

    # --------------------------------------------------------------------------------- servers (user)

    def our_servers(self) -> dict[str, object]:
        servers = self.call("list servers", self.user.compute.servers, details=True)
        return {s.name: s for s in servers if names.is_platform_server(s)}

    def check_destructive(self, existing: dict[str, object], ports: dict[str, object]) -> list[tuple[str, str]]:
        """The servers the plan would replace or delete, each with why; refuses without confirmation."""
        doomed = []
        wanted = {s.name: s for s in self.spec.servers}
        for name, server in sorted(existing.items()):
            spec = wanted.get(name)
            if spec is None:
                doomed.append((name, "it is no longer in the plan"))
                continue
            flavor = _flavor_name(server)
            if flavor and flavor != spec.flavor:
                doomed.append((name, f"its flavor changes from {flavor} to {spec.flavor} (resize is not done)"))
                continue
            address = _address(ports.get(names.port_name(spec.vm)))
            if address and address != spec.address:
                doomed.append((name, f"its address changes from {address} to {spec.address}"))
        if doomed and not self.options.confirm:
            what = "; ".join(f"{n}: {why}" for n, why in doomed)
            raise ChangeRefused(
                f"the plan would destroy {len(doomed)} VM(s) and everything on them — {what}",
                f"keep the old sizes in affordml.yaml, or confirm with {CONFIRM_FLAG} "
                "(`affordml init --yes-i-really-really-mean-it`)",
            )
        return doomed

    def refuse_destruction_early(self) -> None:
        """Before any change: refuse a plan that would destroy VMs (unless confirmed)."""
        existing = self.our_servers()
        if not existing:
            return
        network_api = self.user.network
        net = self.call("find network", network_api.find_network, names.NETWORK, project_id=self.out.project_id)
        ports = {}
        if net is not None:
            ports = {p.name: p for p in self.call("list ports", network_api.ports, network_id=net.id) if p.name}
        self.check_destructive(existing, ports)

    def ensure_servers(self, image, user_data: Callable[[ServerSpec], str]) -> None:
        compute, network_api = self.user.compute, self.user.network
        existing = self.our_servers()
        ports = {
            p.name: p
            for p in self.call("list ports", network_api.ports, network_id=self.out.network_id)
            if p.name and p.name.startswith(names.PREFIX)
        }
        for name, why in self.check_destructive(existing, ports):
            self._delete_server(existing.pop(name), why)
            spec_vm = names.vm_of_server(name)
            if "address" in why or spec_vm not in {s.vm for s in self.spec.servers}:
                port = ports.pop(names.port_name(spec_vm), None)
                if port is not None:
                    self.call("delete port", network_api.delete_port, port)
        for name, server in list(existing.items()):
            if server.status == "ERROR" and not self._ever_placed(server):
                self._delete_server(existing.pop(name), "it failed before it got a host")
        created = []
        for spec in self.spec.servers:
            server = existing.get(spec.name)
            if server is not None:
                if server.status == "ERROR":
                    raise self._fault(server, spec)
                self._say_zone_kept(server, spec)
                continue
            zone = self.zones.get(spec.availability_zone or "")
            port = self._ensure_port(spec, ports.get(names.port_name(spec.vm)))
            server = self.call(
                f"create server {spec.name}",
                compute.create_server,
                flavor=spec.flavor,
                server=spec.name,
                name=spec.name,
                flavor_id=self.out.flavors[spec.flavor],
                image_id=image.id,
                key_name=self.out.keypair,
                networks=[{"port": port.id}],
                user_data=base64.b64encode(user_data(spec).encode()).decode(),
                metadata={names.MARK_KEY: names.MARK_VALUE, names.VM_KEY: spec.vm, names.PLAN_FLAVOR_KEY: spec.flavor},
                **({"availability_zone": zone} if zone else {}),
            )
            where = f" in zone {zone}" if zone else ""
            self.changed(f"created server {spec.name} ({spec.flavor}, {spec.address}){where}")
            created.append((spec, server))
            existing[spec.name] = server
        for spec in self.spec.servers:
            server = self._wait_active(existing[spec.name], spec)
            self.out.servers[spec.vm] = {
                "id": server.id,
                "name": spec.name,
                "role": spec.role,
                "flavor": spec.flavor,
                "address": spec.address,
                "gpus": list(spec.gpus),
                "pci_alias": spec.pci_spec,
                "status": server.status,
            }

    def _say_zone_kept(self, server, spec: ServerSpec) -> None:
        """A server's zone changes only by migration: one outside its PC's zone is kept and said, never re-created
        for that (nova named its zone when it placed it)."""
        zone = self.zones.get(spec.availability_zone or "")
        current = getattr(server, "availability_zone", None)
        if zone and current and current != zone:
            self.say(
                f"[cloud] kept: server {spec.name} stays in availability zone {current}, not {zone} "
                "(a server's zone changes only by migration)"
            )

    def ensure_floating_ips(self) -> None:
        """One floating IP per VM on the external network, on its port: the address this PC (and, with a LAN
        external network, the LAN) reaches the VM by. Tenant addresses are behind the router and unroutable here."""
        network_api = self.user.network
        ports = {
            p.name: p
            for p in self.call("list ports", network_api.ports, network_id=self.out.network_id)
            if p.name and p.name.startswith(names.PREFIX)
        }
        ours = [
            ip
            for ip in self.call("list floating IPs", network_api.ips, project_id=self.out.project_id)
            if ip.floating_network_id == self.out.external_network_id
        ]
        by_port = {ip.port_id: ip for ip in ours if ip.port_id}
        spare = [ip for ip in ours if not ip.port_id and ip.description == names.DESCRIPTION]
        for spec in self.spec.servers:
            port = ports[names.port_name(spec.vm)]
            ip = by_port.get(port.id)
            if ip is None and spare:
                attach = f"attach floating IP to {spec.name}"
                ip = self.call(attach, network_api.update_ip, spare.pop(), port_id=port.id)
                self.changed(f"floating IP {ip.floating_ip_address} moved to {spec.name}")
            elif ip is None:
                ip = self.call(
                    f"create floating IP for {spec.name}",
                    network_api.create_ip,
                    floating_network_id=self.out.external_network_id,
                    port_id=port.id,
                    description=names.DESCRIPTION,
                )
                self.changed(f"floating IP {ip.floating_ip_address} for {spec.name} ({spec.address})")
            self.out.servers[spec.vm]["floating_ip"] = ip.floating_ip_address

    def _ensure_port(self, spec: ServerSpec, port):
        network_api = self.user.network
        if port is not None and _address(port) == spec.address:
            if port.device_id:
                self.call("free port", network_api.update_port, port, device_id="", device_owner="")
            return port
        if port is not None:
            self.call("delete port", network_api.delete_port, port)
        port = self.call(
            f"create port for {spec.name}",
            network_api.create_port,
            name=names.port_name(spec.vm),
            network_id=self.out.network_id,
            fixed_ips=[{"subnet_id": self.out.subnet_id, "ip_address": spec.address}],
            security_group_ids=[self.out.security_group_id],
            description=names.DESCRIPTION,
        )
        self.changed(f"created port {spec.address} for {spec.name}")
        return port

    def _delete_server(self, server, why: str) -> None:
        compute = self.user.compute
        self.call(f"delete server {server.name}", compute.delete_server, server)
        wait = self.options.server_timeout_s
        self.call(f"wait for {server.name} to go", compute.wait_for_delete, server, interval=1, wait=wait)
        # wait_for_delete returns on status DELETED; the GPU is free for a new server only once nova forgot it
        deadline = time.monotonic() + wait
        while self.call(f"read server {server.name}", compute.find_server, server.id, ignore_missing=True):
            if time.monotonic() > deadline:
                raise wait_timeout(server.name, "DELETED", wait)
            time.sleep(POLL_S)
        self.changed(f"deleted server {server.name}: {why}")

    def _ever_placed(self, server) -> bool:
        try:
            full = self.admin.compute.get_server(server.id)
        except Exception:  # noqa: BLE001 - unknown: treat as placed (never delete on doubt)
            return True
        return bool(getattr(full, "compute_host", None) or getattr(full, "hypervisor_hostname", None))

    def _wait_active(self, server, spec: ServerSpec):
        compute = self.user.compute
        deadline = time.monotonic() + self.options.server_timeout_s
        while True:
            server = self.call(f"read server {spec.name}", compute.get_server, server.id)
            if server.status in ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED"):
                return server
            if server.status == "ERROR":
                raise self._fault(server, spec)
            if time.monotonic() > deadline:
                raise wait_timeout(spec.name, server.status, self.options.server_timeout_s)
            time.sleep(POLL_S)

    def _fault(self, server, spec: ServerSpec) -> CloudError:
        from affordml.cloud import diagnose

        fault = getattr(server, "fault", None) or {}
        diagnosis = None
        if "no valid host" in str(fault.get("message", "")).lower():
            flavor = self.spec.flavor(spec.flavor)
            bits = flavor.extra_specs.get(MAXPHYSADDR_BITS_SPEC)
            request = diagnose.Request(
                spec.flavor,
                flavor.vcpus,
                flavor.ram_mib,
                flavor.disk_gib,
                diagnose.pci_aliases(spec.pci_spec),
                int(bits) if bits else None,
            )
            try:
                diagnosis = diagnose.explain(request, diagnose.gather(self.admin), self.spec.gpus_offered)
            except Exception as exc:  # noqa: BLE001 - the diagnosis is a bonus; the fault stays the message
                diagnosis = f"placement and nova could not be read to say why ({type(exc).__name__})"
        return server_fault(spec.name, fault, server.status, diagnosis)


def _flavor_name(server) -> str | None:
    flavor = getattr(server, "flavor", None)
    if flavor is None:
        return None
    return getattr(flavor, "original_name", None) or getattr(flavor, "name", None)


def _address(port) -> str | None:
    if port is None:
        return None
    ips = [ip.get("ip_address") for ip in port.fixed_ips or []]
    return ips[0] if ips else None


def _pools(pools) -> list[tuple[str, str]]:
    return sorted((p["start"], p["end"]) for p in pools or [])


def _spec_key(rule: RuleSpec) -> tuple:
    return (
        rule.protocol,
        rule.port_min,
        rule.port_max,
        None if rule.remote_group else rule.remote_ip_prefix,
        rule.remote_group,
    )


def _rule_key(rule, group_id: str) -> tuple:
    protocol = rule.protocol if rule.protocol not in ("", "any") else None
    return (protocol, rule.port_range_min, rule.port_range_max, rule.remote_ip_prefix, rule.remote_group_id == group_id)


def _patch_image(image_api, image_id: str, patch: list[dict]) -> None:
    """openstacksdk's update_image sends "replace" for a property the image does not have yet (it knows
    hw_machine_type as an attribute), which glance refuses with 409; a JSON patch of "add" operations does not."""
    from openstack import exceptions

    response = image_api.patch(
        f"/images/{image_id}",
        json=patch,
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
    )
    exceptions.raise_from_response(response)
