"""A nova fake virt driver that reports fake NVIDIA PCI devices and keeps one node uuid across restarts.

Installed as nova/virt/affordml_fake_gpu.py (nova loads compute drivers only from nova.virt) and chosen
with ``compute_driver = affordml_fake_gpu.FakeGpuDriver``. The devices come from the JSON list in the
environment variable AFFORDML_FAKE_GPUS: ``[{"vendor_id": "10de", "product_id": "2684", "count": 1}]``.
"""

import json
import os

from nova.virt import fake, node
from oslo_serialization import jsonutils

GPUS_VARIABLE = "AFFORDML_FAKE_GPUS"
FIRST_BUS = 0x81
DEFAULT_GPUS = [
    {"vendor_id": "10de", "product_id": "2684", "count": 1},
    {"vendor_id": "10de", "product_id": "2335", "count": 1},
]


def configured_gpus():
    """The fake GPU models and counts asked for in the environment."""
    raw = os.environ.get(GPUS_VARIABLE)
    return json.loads(raw) if raw else DEFAULT_GPUS


def fake_pci_devices():
    """One PCI device record per fake GPU, each on a bus of its own."""
    devices = []
    for gpu in configured_gpus():
        for _ in range(int(gpu.get("count", 1))):
            bus = FIRST_BUS + len(devices)
            devices.append(
                {
                    "address": f"0000:{bus:02x}:00.0",
                    "vendor_id": gpu["vendor_id"],
                    "product_id": gpu["product_id"],
                    "dev_type": "type-PCI",
                    "status": "available",
                    "parent_addr": None,
                    "numa_node": None,
                    "label": f"label_{gpu['vendor_id']}_{gpu['product_id']}",
                }
            )
    return devices


class FakeGpuDriver(fake.MediumFakeDriver):
    """MediumFakeDriver plus fake GPUs for PCI passthrough."""

    def get_available_resource(self, nodename):
        """Report the fake host with a persisted node uuid and the fake PCI devices."""
        resources = super().get_available_resource(nodename)
        if not resources:
            return resources
        resources["uuid"] = node.get_local_node_uuid()
        resources["pci_passthrough_devices"] = jsonutils.dumps(fake_pci_devices())
        return resources
