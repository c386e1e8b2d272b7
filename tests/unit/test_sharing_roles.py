"""The sharing policy weighs the work each GPU serves: MPS for notebooks (throughput; one crash ends every client),
time-slicing for training (faults isolated, memory not), MIG for inference where the card has it (else HAMi's
per-pod limits); `any` keeps MIG-or-MPS. Every reason names the trade-off."""

from __future__ import annotations

import pytest

from affordml.config import model as cfg
from affordml.facts.model import Gpu
from affordml.plan.sharing import advertised_resources, decide


def gpu(memory_mib: int, mig: bool) -> Gpu:
    name = "NVIDIA H200" if mig else "NVIDIA GeForce RTX 4090"
    return Gpu("0000:01:00.0", "10de", "2335", name, memory_mib, mig, False, "vfio-pci", 1, ())


H200, RTX4090 = gpu(143771, True), gpu(24564, False)


@pytest.mark.parametrize(
    ("card", "role", "mode", "shares", "words"),
    [
        (RTX4090, "any", "mps", 5, ["9.0x", "one job's crash ends every job"]),
        (RTX4090, "notebooks", "mps", 5, ["auto, notebooks", "one job's crash ends every job"]),
        (RTX4090, "training", "time-slicing", 2, ["own GPU context", "memory is not isolated"]),
        (RTX4090, "inference", "hami", 4, ["no MIG", "25 % of memory"]),
        (H200, "any", "mig", 4, ["hardware-isolated", "trade-off"]),
        (H200, "notebooks", "mps", 8, ["auto, notebooks"]),
        (H200, "training", "time-slicing", 4, ["5.8x"]),
        (H200, "inference", "mig", 4, ["isolates memory, compute and faults"]),
    ],
)
def test_auto_mode_follows_the_gpus_role_and_says_the_trade_off(card, role, mode, shares, words):
    decision = decide(card, cfg.Auto(role=role), "gpu.sharing")
    assert (decision.mode, decision.slots) == (mode, shares), decision.reason
    for word in words:
        assert word in decision.reason
    assert sum(advertised_resources(decision).values()) == shares


def test_memory_per_share_is_shown_for_mps_and_time_slicing():
    assert decide(RTX4090, cfg.Auto(role="notebooks"), "gpu.sharing").memory_per_slot_mib == 24564 // 5
    assert decide(RTX4090, cfg.Auto(role="training"), "gpu.sharing").memory_per_slot_mib == 24564 // 2


def test_two_gpus_may_serve_two_roles():
    config = cfg.Gpu.model_validate(
        {"per_gpu": {"0000:17:00.0": {"mode": "auto", "role": "training"}, "0000:31:00.0": "auto"}}
    )
    modes = [decide(RTX4090, policy, "p").mode for policy in config.per_gpu.values()]
    assert modes == ["time-slicing", "mps"]
