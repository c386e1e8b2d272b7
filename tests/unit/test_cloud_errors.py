"""The cloud phase's error mapping, with fakes shaped like openstacksdk's exceptions and nova's server faults."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from affordml.cloud import diagnose, faults
from affordml.errors import AffordmlError, RunError


@dataclass
class FakeHttpError(Exception):
    """Shaped like openstack.exceptions.HttpException: status_code, message, details."""

    status_code: int
    details: str
    message: str = ""

    def __str__(self) -> str:
        return f"{self.status_code}: {self.details}"


def test_missing_pci_alias_names_the_alias_and_the_fix():
    exc = FakeHttpError(400, "PCI alias gpu-audio is not defined")
    err = faults.api_error(
        exc, "create server affordml-worker-1", flavor="affordml.worker.16c29g400d.gpu1", server="affordml-worker-1"
    )
    assert isinstance(err, faults.PciAliasMissing) and isinstance(err, RunError)
    line = err.one_line()
    assert "PCI alias gpu-audio is not defined" in line
    assert "affordml.worker.16c29g400d.gpu1" in line
    assert "[pci] alias" in line and "affordml init phase openstack" in line
    assert "\n" not in line


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (403, "Quota exceeded for cores: Requested 16, but already used 4 of 20 cores"),
        (409, "Quota exceeded for resources: ['port']."),
        (413, "Request Entity Too Large"),
        (403, "Maximum number of ports exceeded: over quota"),
    ],
)
def test_quota_errors(status, text):
    err = faults.api_error(FakeHttpError(status, text), "create server affordml-cp-1")
    assert isinstance(err, faults.QuotaExceeded)
    assert "quota is exceeded" in err.problem and "openstack quota set" in err.fix


def test_other_http_errors_keep_the_service_words_and_status():
    err = faults.api_error(FakeHttpError(500, "Unexpected API Error."), "create network")
    assert type(err) is faults.CloudError
    assert err.one_line().startswith("create network failed: HTTP 500: Unexpected API Error.")
    assert isinstance(
        faults.api_error(FakeHttpError(401, "The request you have made requires authentication."), "find project"),
        faults.CloudUnreachable,
    )


def test_server_in_error_shows_novas_fault():
    fault = {"message": "Build of instance abc aborted: Failed to allocate the network(s)", "code": 500}
    err = faults.server_fault("affordml-worker-2", fault, "ERROR")
    assert isinstance(err, faults.ServerFailed)
    assert err.problem == (
        "server affordml-worker-2 is in ERROR: nova says: Build of instance abc aborted: "
        "Failed to allocate the network(s) (code 500)"
    )


def test_server_error_without_fault():
    assert "no fault message" in faults.server_fault("affordml-cp-1", None, "ERROR").problem


def test_no_valid_host_with_a_gpu_diagnosis():
    fault = {"message": "No valid host was found. There are not enough hosts available.", "code": 500}
    why = "flavor affordml.worker.1c1g5d.gpu3 asks for 3 GPU(s), the cloud has 2 in all"
    err = faults.server_fault("affordml-worker-1", fault, "ERROR", why)
    assert isinstance(err, faults.NoValidHost)
    assert err.problem == f"server affordml-worker-1: nova found no host for it (No valid host): {why}"
    assert "free the GPU" in err.fix


def test_no_valid_host_with_a_ram_diagnosis_suggests_smaller_vms():
    fault = {"message": "No valid host was found. "}
    err = faults.server_fault("affordml-worker-1", fault, "ERROR", "too little RAM: flavor x needs 64.0 GiB, ...")
    assert "vms.*" in err.fix


def test_image_upload_failure():
    err = faults.image_upload_failed("/tmp/noble.img", FakeHttpError(413, "Image storage media is full"))
    assert isinstance(err, faults.ImageUploadFailed)
    assert "uploading the guest image /tmp/noble.img to glance failed: Image storage media is full" in err.problem


def test_change_refused_is_a_confirmation_error():
    assert issubclass(faults.ChangeRefused, AffordmlError) and faults.ChangeRefused.exit_code == 8


# ------------------------------------------------------------------------------------- no valid host: why


def _compute(ram_total=8192, ram_used=0, vcpus=10, vcpu_used=0, disk=1028):
    return diagnose.Provider(
        "compute-1",
        "cn",
        inventories={
            "MEMORY_MB": {"total": ram_total, "reserved": 512, "allocation_ratio": 1.0, "max_unit": ram_total},
            "VCPU": {"total": vcpus, "reserved": 0, "allocation_ratio": 4.0, "max_unit": vcpus},
            "DISK_GB": {"total": disk, "reserved": 0, "allocation_ratio": 1.0, "max_unit": disk},
        },
        usages={"MEMORY_MB": ram_used, "VCPU": vcpu_used, "DISK_GB": 0},
    )


def _cloud(*providers, held=None, up=None, traits=None):
    return diagnose.Cloud(list(providers or [_compute()]), held or {}, up, traits)


def test_explain_too_little_ram():
    request = diagnose.Request("affordml.worker.16c64g400d", 2, 64 * 1024, 40)
    text = diagnose.explain(request, _cloud(), {})
    assert text == (
        "too little RAM: flavor affordml.worker.16c64g400d needs 64.0 GiB, "
        "the most any compute node has free is 7.5 GiB"
    )


def test_explain_more_gpus_than_the_plan_offers_nova():
    request = diagnose.Request("f.gpu3", 1, 1024, 5, diagnose.pci_aliases("gpu:3"))
    text = diagnose.explain(request, _cloud(), {"gpu": 2})
    assert text == "flavor f.gpu3 asks for 3 gpu GPU(s), the cloud has 2 in all"


def test_explain_no_free_gpu_names_the_holders_from_their_flavors():
    """Production nova keeps PCI devices out of placement: the holders are the servers whose flavors hold the alias."""
    request = diagnose.Request("f.gpu1", 1, 1024, 5, {"gpu-2230": 1})
    cloud = _cloud(held={"gpu-2230": ["affordml-worker-1", "someone-elses-vm"], "gpu-2335": ["x"]})
    text = diagnose.explain(request, cloud, {"gpu-2230": 2, "gpu-2335": 1})
    assert text == (
        "no free GPU: flavor f.gpu1 asks for 1 gpu-2230, 2 of 2 are in use "
        "(held by affordml-worker-1, someone-elses-vm)"
    )


def test_explain_alias_the_plan_does_not_offer():
    text = diagnose.explain(diagnose.Request("f.gpu1", 1, 1024, 5, {"gpu-audio": 1}), _cloud(), {"gpu": 1})
    assert "the plan offers nova no device for that alias" in text


def test_explain_free_on_paper_points_at_vfio_and_device_spec():
    request = diagnose.Request("f.gpu1", 1, 1024, 5, {"gpu": 1}, maxphysaddr_bits=41)
    text = diagnose.explain(request, _cloud(traits={"COMPUTE_ADDRESS_SPACE_EMULATED"}), {"gpu": 1})
    assert "nova's PCI tracker sees fewer" in text and "vfio-pci" in text and "41 physical address bits" in text


def test_explain_large_bar_flavor_without_the_address_space_trait():
    request = diagnose.Request("f.gpu1", 1, 1024, 5, {"gpu": 1}, maxphysaddr_bits=41)
    text = diagnose.explain(request, _cloud(traits={"COMPUTE_NODE"}), {"gpu": 1})
    assert "hw:maxphysaddr_bits=41" in text and "COMPUTE_ADDRESS_SPACE_EMULATED" in text


def test_explain_compute_down_and_nothing_wrong():
    request = diagnose.Request("f", 1, 1024, 5)
    assert diagnose.explain(request, _cloud(up=False), {}) == "no nova-compute service is up and enabled"
    assert "scheduler filter" in diagnose.explain(request, _cloud(), {})


def test_pci_count():
    assert diagnose.pci_count("gpu:1,gpu-audio:1") == 2
    assert diagnose.pci_count(None) == 0
    assert diagnose.pci_count("gpu:3") == 3
    assert diagnose.pci_aliases("gpu-2230:1, gpu-2335:2") == {"gpu-2230": 1, "gpu-2335": 2}
