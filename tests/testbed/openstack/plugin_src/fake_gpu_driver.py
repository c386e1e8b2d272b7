"""A nova fake virt driver that reports a PC's PCI functions the way nova's libvirt driver does, and keeps one node
uuid across restarts.

Installed as nova/virt/affordml_fake_gpu.py (nova loads compute drivers only from nova.virt) and chosen with
``compute_driver = affordml_fake_gpu.FakeGpuDriver``. The functions come from the JSON list in the environment
variable AFFORDML_FAKE_PCI: nova's own device records (address, vendor_id, product_id, dev_type, ...), every
function of the PC's GPUs, so that nova's [pci] device_spec decides what is tracked, as on a real host. The CPU's
physical address bits come from AFFORDML_FAKE_PHYS_BITS: nova's ComputeCapabilitiesFilter compares a flavor's
hw:maxphysaddr_bits with them, and the driver claims libvirt's maxphysaddr support (the trait
COMPUTE_ADDRESS_SPACE_EMULATED that the scheduler requires for hw:maxphysaddr_mode=emulate).
"""

import json
import os

from nova.virt import fake, node
from oslo_serialization import jsonutils

PCI_VARIABLE = "AFFORDML_FAKE_PCI"
PHYS_BITS_VARIABLE = "AFFORDML_FAKE_PHYS_BITS"


def fake_pci_devices():
    """The PC's PCI function records, as the libvirt driver would list them."""
    return json.loads(os.environ.get(PCI_VARIABLE) or "[]")


class FakeGpuDriver(fake.MediumFakeDriver):
    """MediumFakeDriver plus the PC's GPU functions and libvirt's guest address space support."""

    capabilities = dict(
        fake.MediumFakeDriver.capabilities,
        supports_address_space_passthrough=True,
        supports_address_space_emulated=True,
    )

    def get_available_resource(self, nodename):
        """Report the fake host with a persisted node uuid, its PCI functions and its CPU's address bits."""
        resources = super().get_available_resource(nodename)
        if not resources:
            return resources
        resources["uuid"] = node.get_local_node_uuid()
        resources["pci_passthrough_devices"] = jsonutils.dumps(fake_pci_devices())
        bits = os.environ.get(PHYS_BITS_VARIABLE)
        if bits:
            cpu_info = jsonutils.loads(resources.get("cpu_info") or "{}")
            cpu_info["maxphysaddr"] = {"mode": "emulate", "bits": int(bits)}
            resources["cpu_info"] = jsonutils.dumps(cpu_info)
        return resources
