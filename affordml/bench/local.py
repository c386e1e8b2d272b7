"""`affordml bench sharing --local`: the jobs run on this PC as child processes, each mode set up here. On a PC
without an NVIDIA GPU (or without PyTorch) the device is the CPU: the same orchestration, clearly a stand-in."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from affordml.bench import jobs, metrics
from affordml.bench.result import BenchResult, Device
from affordml.bench.workloads import Workload
from affordml.errors import RunError

JOB_SLACK_S = 120.0  # past the counting window: warm-up is before the start signal, this covers the slowest finish


def detect_device(prefer: str = "auto") -> Device:
    """The first NVIDIA GPU when nvidia-smi answers and PyTorch is importable, else the CPU."""
    if prefer != "cpu":
        gpu = _nvidia_gpu()
        if gpu and _has_torch():
            return gpu
        if prefer == "cuda":
            why = "PyTorch is not installed (pip install torch)" if gpu else "nvidia-smi finds no NVIDIA GPU"
            raise RunError(f"--device cuda: {why}", "install it, or use --device cpu for the CPU stand-in")
        if gpu:
            return Device("cpu", f"CPU stand-in ({os.cpu_count()} cores; {gpu.name} found, but no PyTorch here)")
    return Device("cpu", f"CPU stand-in ({os.cpu_count()} cores)")


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _nvidia_gpu() -> Device | None:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        query = subprocess.run(
            [smi, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits", "--id=0"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    name, _, memory = query.strip().partition(",")
    return Device(
        "cuda",
        name.strip(),
        int(memory.strip()) if memory.strip().isdigit() else None,
        mig_devices=tuple(_mig_uuids(listing)),
        mig_capable="MIG" in listing,
    )


def _mig_uuids(listing: str) -> list[str]:
    """`nvidia-smi -L` lines like `  MIG 1g.10gb Device 0: (UUID: MIG-…)` under GPU 0."""
    found, first_gpu = [], True
    for line in listing.splitlines():
        if line.startswith("GPU ") and not line.startswith("GPU 0:"):
            first_gpu = False
        if first_gpu and "UUID: MIG-" in line:
            found.append(line.split("UUID: ", 1)[1].rstrip(")").strip())
    return found


class MpsDaemon:
    """nvidia-cuda-mps-control with private pipe and log folders; the clients find it through their environment.
    Changes no GPU setting; told to quit at the end, whatever happened."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="affordml-mps-")
        self.env = {
            "CUDA_MPS_PIPE_DIRECTORY": os.path.join(self.folder, "pipe"),
            "CUDA_MPS_LOG_DIRECTORY": os.path.join(self.folder, "log"),
        }

    def __enter__(self) -> MpsDaemon:
        for path in self.env.values():
            os.makedirs(path, mode=0o700, exist_ok=True)
        control = shutil.which("nvidia-cuda-mps-control")
        try:
            subprocess.run([control, "-d"], env=dict(os.environ, **self.env), check=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise RunError(
                f"bench: the MPS control daemon did not start ({exc})",
                f"read its log in {self.env['CUDA_MPS_LOG_DIRECTORY']}, or leave mps out of --modes",
            ) from None
        return self

    def __exit__(self, *exc) -> None:
        control = shutil.which("nvidia-cuda-mps-control")
        try:
            subprocess.run([control], input="quit\n", text=True, env=dict(os.environ, **self.env), timeout=30)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


ModeSetup = Callable[[int], "contextmanager[list[dict[str, str]]]"]


def mode_setups(device: Device) -> tuple[dict[str, ModeSetup], dict[str, str]]:
    """For each mode this PC can run: a context manager giving the N jobs' environments; for the others, why not."""
    setups: dict[str, ModeSetup] = {"exclusive": _plain, "time-slicing": _plain}
    if not device.stand_in:
        setups = {"exclusive": _no_mps, "time-slicing": _no_mps}
    skipped = {"hami": "HAMi limits jobs inside the cluster's pods: run `affordml bench sharing` without --local"}
    if device.stand_in:
        setups["mps"] = _plain
        skipped["mig"] = "no MIG on the CPU stand-in"
        return setups, skipped
    if shutil.which("nvidia-cuda-mps-control"):
        setups["mps"] = lambda n: _mps(n, device.memory_mib)
    else:
        skipped["mps"] = "nvidia-cuda-mps-control is not installed (it comes with the NVIDIA driver utilities)"
    if device.mig_devices:
        setups["mig"] = lambda n: _mig(n, device.mig_devices)
    else:
        skipped["mig"] = (
            "this GPU has no MIG instances now (MIG mode off, or not a MIG card); affordml changes no GPU setting "
            "here: the cluster's MIG manager makes them"
        )
    return setups, skipped


@contextmanager
def _plain(n: int) -> Iterator[list[dict[str, str]]]:
    yield [jobs.child_env() for _ in range(n)]


@contextmanager
def _no_mps(n: int) -> Iterator[list[dict[str, str]]]:
    """An empty MPS pipe folder: a CUDA client finds no MPS server there and runs on its own context, even where
    an MPS daemon serves the default folder."""
    with tempfile.TemporaryDirectory(prefix="affordml-no-mps-") as empty:
        yield [jobs.child_env({"CUDA_MPS_PIPE_DIRECTORY": empty}) for _ in range(n)]


@contextmanager
def _mps(n: int, memory_mib: int | None) -> Iterator[list[dict[str, str]]]:
    """Each client limited to GPU memory / N, as affordml's MPS plan gives a slot."""
    limit = {"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT": f"0={memory_mib // n}M"} if memory_mib else {}
    with MpsDaemon() as daemon:
        yield [jobs.child_env({**daemon.env, **limit}) for _ in range(n)]


@contextmanager
def _mig(n: int, uuids: tuple[str, ...]) -> Iterator[list[dict[str, str]]]:
    """Jobs spread over the MIG instances that exist, one instance each while there are enough."""
    yield [jobs.child_env({"CUDA_VISIBLE_DEVICES": uuids[i % len(uuids)]}) for i in range(n)]


def run_local(
    device: Device,
    workload: Workload | None,
    command: list[str] | None,
    modes: list[str],
    counts: list[int],
    seconds: float,
    progress: Callable[[str], None] = lambda _line: None,
) -> BenchResult:
    """Exclusive (one job alone) first: every ratio is against it. Then each mode at each N, then one crash run per
    sharing mode at the largest N."""
    label = "command: " + shlex.join(command) if command else workload.name
    result = BenchResult("local", device, label, seconds, counts)
    setups, skipped = mode_setups(device)
    result.skipped = {m: why for m, why in skipped.items() if m in modes}
    note = "cpu stand-in" if device.stand_in else ""
    run = _runner(device, workload, command, seconds)
    with setups["exclusive"](1) as envs:
        alone = run(envs)
    baseline = metrics.row("exclusive", alone, None).throughput or None
    result.rows.append(metrics.row("exclusive", alone, baseline, note))
    progress(_progress_line(result.rows[-1]))
    sharing = [m for m in modes if m in setups and m != "exclusive"]
    for mode in sharing:
        for n in counts:
            if mode == "time-slicing" and n == 1:
                result.rows.append(metrics.row(mode, alone, baseline, _join(note, "one job alone = exclusive")))
                continue
            with setups[mode](n) as envs:
                result.rows.append(metrics.row(mode, run(envs), baseline, note))
            progress(_progress_line(result.rows[-1]))
    crash_n = max(2, max(counts))
    for mode in sharing:
        with setups[mode](crash_n) as envs:
            result.blasts.append(_crash_run(mode, device, workload, seconds, envs, note))
        progress(f"{mode}: one of {crash_n} jobs crashed on purpose, {result.blasts[-1].others_died} others died")
    return result


def _runner(device: Device, workload: Workload | None, command: list[str] | None, seconds: float):
    timeout = seconds + JOB_SLACK_S
    if command:
        return lambda envs: jobs.run_commands(command, envs, timeout)
    spec = workload.spec(device.kind, seconds)
    return lambda envs: _skip_if_no_library(jobs.run_workers([spec] * len(envs), envs, timeout))


def _crash_run(mode, device, workload, seconds, envs, note) -> metrics.Blast:
    """One job faults after a third of the window; the others run the whole window. With the user's command the
    others are built-in mlp jobs (the crash needs our worker)."""
    from affordml.bench.workloads import WORKLOADS

    spec = (workload or WORKLOADS["mlp"]).spec(device.kind, seconds)
    crash = dict(spec, crash_after_s=seconds / 3)
    results = jobs.run_workers([crash] + [spec] * (len(envs) - 1), envs, seconds + JOB_SLACK_S)
    _skip_if_no_library(results)
    return metrics.blast(mode, results[0], results[1:], note)


def _skip_if_no_library(results: list[metrics.JobResult]) -> list[metrics.JobResult]:
    missing = [r for r in results if r.exit_code == 3]
    if missing:
        raise RunError(f"bench: {missing[0].error}", "install it, or run with --device cpu for the CPU stand-in")
    return results


def _progress_line(row: metrics.Row) -> str:
    ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
    return f"{row.mode} N={row.n}: {row.throughput:.1f} steps/s ({ratio}), {row.jobs_ok}/{row.n} jobs finished"


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
