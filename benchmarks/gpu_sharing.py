"""What sharing one GPU between N jobs buys, under time-slicing and under MPS, and whether the per-client limits
affordml plans for MPS hold. Needs an NVIDIA GPU, PyTorch, and nvidia-cuda-mps-control for the MPS rows.

    python benchmarks/gpu_sharing.py --jobs 1,4,8 --seconds 6 --json out.json

Method: N identical processes build the same small model, warm up, wait on one start signal, then count training
steps for a fixed time; throughput is the sum of steps/s, compared with one process alone. With --mps-limit, each MPS
client gets CUDA_MPS_PINNED_DEVICE_MEM_LIMIT = GPU memory / N (what affordml's MPS plan gives a slot), and a probe
allocates half and twice that limit to show it is enforced. Changes no GPU setting: the MPS control daemon runs with
its own pipe and log folders and is told to quit at the end.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import tempfile
import time

WORKLOADS = ("mlp", "matmul")


def _model_step(workload: str):
    import torch

    device = torch.device("cuda")
    if workload == "matmul":
        a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
        b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)

        def step() -> None:
            torch.matmul(a, b)

        return step
    model = torch.nn.Sequential(
        torch.nn.Linear(512, 1024),
        torch.nn.ReLU(),
        torch.nn.Linear(1024, 1024),
        torch.nn.ReLU(),
        torch.nn.Linear(1024, 10),
    ).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(64, 512, device=device)
    y = torch.randint(0, 10, (64,), device=device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step


def _worker(workload: str, seconds: float, ready, start, results) -> None:
    import torch

    step = _model_step(workload)
    for _ in range(30):
        step()
    torch.cuda.synchronize()
    ready.put(os.getpid())
    start.wait()
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        for _ in range(10):
            step()
        torch.cuda.synchronize()
        count += 10
    results.put(count / (time.perf_counter() - began))


def run_jobs(workload: str, jobs: int, seconds: float, timeout: float = 180) -> float:
    """Aggregate steps/s of `jobs` processes started together."""
    ctx = mp.get_context("spawn")
    ready, results, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_worker, args=(workload, seconds, ready, start, results)) for _ in range(jobs)]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=timeout)
    start.set()
    total = sum(results.get(timeout=timeout) for _ in procs)
    for proc in procs:
        proc.join(timeout)
    return total


def _limit_probe(limit_mib: int, results) -> None:
    import torch

    outcome = {}
    for label, mib in (("half", limit_mib // 2), ("double", limit_mib * 2)):
        try:
            block = torch.empty(mib * 1024 * 1024, dtype=torch.uint8, device="cuda")
            torch.cuda.synchronize()
            del block
            torch.cuda.empty_cache()
            outcome[label] = "allocated"
        except RuntimeError as exc:
            outcome[label] = "refused: " + str(exc).splitlines()[0][:120]
    results.put(outcome)


def probe_limit(limit_mib: int) -> dict:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_limit_probe, args=(limit_mib, results))
    proc.start()
    outcome = results.get(timeout=120)
    proc.join(60)
    return outcome


class MpsDaemon:
    """nvidia-cuda-mps-control with private pipe/log folders; clients find it through the environment."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="affordml-mps-")
        self.env = {"CUDA_MPS_PIPE_DIRECTORY": f"{self.dir}/pipe", "CUDA_MPS_LOG_DIRECTORY": f"{self.dir}/log"}

    def __enter__(self) -> MpsDaemon:
        for path in self.env.values():
            os.makedirs(path, exist_ok=True)
        os.environ.update(self.env)
        subprocess.run(["nvidia-cuda-mps-control", "-d"], check=True, env=os.environ.copy())
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True, env=os.environ.copy(), check=False)
        time.sleep(1)
        for key in self.env:
            os.environ.pop(key, None)
        os.environ.pop("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", None)
        shutil.rmtree(self.dir, ignore_errors=True)


def gpu_memory_mib() -> int:
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="1,4,8", help="comma-separated job counts")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--workloads", default="mlp")
    parser.add_argument("--no-mps", action="store_true")
    parser.add_argument("--mps-limit", action="store_true", help="give each MPS client memory/N, as affordml does")
    parser.add_argument("--json", help="also write the figures to this file")
    opts = parser.parse_args()
    counts = [int(n) for n in opts.jobs.split(",")]
    memory = gpu_memory_mib()
    report = {"gpu_memory_mib": memory, "seconds": opts.seconds, "rows": [], "limit_probes": []}
    for workload in opts.workloads.split(","):
        base = run_jobs(workload, 1, opts.seconds)
        for n in counts:
            ts = base if n == 1 else run_jobs(workload, n, opts.seconds)
            report["rows"].append(
                {
                    "workload": workload,
                    "jobs": n,
                    "mode": "time-slicing",
                    "steps_per_s": round(ts, 1),
                    "speedup": round(ts / base, 2),
                }
            )
            print(f"{workload:7} N={n:<2} time-slicing {ts:10.1f} steps/s  {ts / base:5.2f}x", flush=True)
        if opts.no_mps or not shutil.which("nvidia-cuda-mps-control"):
            continue
        for n in counts:
            with MpsDaemon():
                if opts.mps_limit:
                    os.environ["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] = f"0={memory // n}M"
                mps = run_jobs(workload, n, opts.seconds)
            label = f"mps (limit {memory // n} MiB)" if opts.mps_limit else "mps"
            report["rows"].append(
                {
                    "workload": workload,
                    "jobs": n,
                    "mode": label,
                    "steps_per_s": round(mps, 1),
                    "speedup": round(mps / base, 2),
                }
            )
            print(f"{workload:7} N={n:<2} {label:22} {mps:10.1f} steps/s  {mps / base:5.2f}x", flush=True)
    if opts.mps_limit and not opts.no_mps and shutil.which("nvidia-cuda-mps-control"):
        for n in (n for n in counts if n > 1):
            limit = memory // n
            with MpsDaemon():
                os.environ["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] = f"0={limit}M"
                outcome = probe_limit(limit)
            report["limit_probes"].append({"jobs": n, "limit_mib": limit, **outcome})
            print(
                f"limit probe N={n}: limit {limit} MiB: half {outcome['half']}; double {outcome['double']}", flush=True
            )
    if opts.json:
        with open(opts.json, "w") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
