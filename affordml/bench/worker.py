"""One benchmark job: build a workload, warm up, wait for the start signal, count steps for a fixed time, print one
JSON line. Standard library only (PyTorch for the cuda device), so the same file runs as a local child process and,
from a ConfigMap, inside a cluster Job.

    python worker.py '{"kind": "mlp", "device": "cpu", "seconds": 2, "sizes": {...}}'

Protocol: after the warm-up the job prints `ready`; it starts on a line on stdin (local) or at the spec's
`start_at` (epoch seconds, cluster). With `crash_after_s` the job makes a fault on purpose after that long: on cuda
a kernel reads an illegal address (cudaErrorIllegalAddress, what kills every client of an MPS server); on cpu it
reads address 0 (SIGSEGV), the CPU stand-in for it. Exit 3 with one line when the device's library is missing.
"""

from __future__ import annotations

import json
import random
import sys
import time

NO_LIBRARY = 3


# ---- the CPU path: pure Python, so that CI needs nothing beyond the interpreter ----


def _matrix(rows: int, cols: int, rng: random.Random) -> list[list[float]]:
    return [[rng.uniform(-0.1, 0.1) for _ in range(cols)] for _ in range(rows)]


def _matmul(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
    columns = list(zip(*b, strict=True))
    return [[sum(x * y for x, y in zip(row, col, strict=True)) for col in columns] for row in a]


def _cpu_mlp(sizes: dict, rng: random.Random):
    """One hidden ReLU layer, squared error, plain SGD: forward, backward and update per step."""
    batch, inputs, hidden, outputs = sizes["batch"], sizes["inputs"], sizes["hidden"], sizes["outputs"]
    w1, w2 = _matrix(inputs, hidden, rng), _matrix(hidden, outputs, rng)
    x, y = _matrix(batch, inputs, rng), _matrix(batch, outputs, rng)
    rate = 0.01

    def step() -> None:
        h = [[max(0.0, v) for v in row] for row in _matmul(x, w1)]
        out = _matmul(h, w2)
        d_out = [[o - t for o, t in zip(orow, trow, strict=True)] for orow, trow in zip(out, y, strict=True)]
        d_h = _matmul(d_out, [list(col) for col in zip(*w2, strict=True)])
        d_h = [
            [d if hv > 0 else 0.0 for d, hv in zip(drow, hrow, strict=True)] for drow, hrow in zip(d_h, h, strict=True)
        ]
        g2 = _matmul([list(col) for col in zip(*h, strict=True)], d_out)
        g1 = _matmul([list(col) for col in zip(*x, strict=True)], d_h)
        for w, g in ((w1, g1), (w2, g2)):
            for wrow, grow in zip(w, g, strict=True):
                for j, gv in enumerate(grow):
                    wrow[j] -= rate * gv

    return step


def _cpu_cnn(sizes: dict, rng: random.Random):
    """3x3 convolution filters, ReLU, a linear head; the gradient of the filters and the head each step."""
    batch, side, filters, outputs = sizes["batch"], sizes["side"], sizes["filters"], sizes["outputs"]
    images = [_matrix(side, side, rng) for _ in range(batch)]
    kernels = [_matrix(3, 3, rng) for _ in range(filters)]
    inner = side - 2
    head = _matrix(filters * inner * inner, outputs, rng)
    rate = 0.01

    def conv(image, kernel):
        return [
            [sum(kernel[a][b] * image[i + a][j + b] for a in range(3) for b in range(3)) for j in range(inner)]
            for i in range(inner)
        ]

    def step() -> None:
        for image in images:
            maps = [[[max(0.0, v) for v in row] for row in conv(image, k)] for k in kernels]
            flat = [v for fmap in maps for row in fmap for v in row]
            out = _matmul([flat], head)[0]
            d_out = [o - 0.5 for o in out]
            for i, value in enumerate(flat):
                if value:
                    row = head[i]
                    for j, d in enumerate(d_out):
                        row[j] -= rate * value * d
            for f, kernel in enumerate(kernels):
                base = f * inner * inner
                d_map = [
                    [sum(head[base + i * inner + j][o] * d_out[o] for o in range(outputs)) for j in range(inner)]
                    for i in range(inner)
                ]
                for a in range(3):
                    for b in range(3):
                        grad = sum(
                            d_map[i][j] * image[i + a][j + b]
                            for i in range(inner)
                            for j in range(inner)
                            if maps[f][i][j] > 0
                        )
                        kernel[a][b] -= rate * grad

    return step


def _cpu_matmul(sizes: dict, rng: random.Random):
    a, b = _matrix(sizes["n"], sizes["n"], rng), _matrix(sizes["n"], sizes["n"], rng)

    def step() -> None:
        _matmul(a, b)

    return step


CPU_WORKLOADS = {"mlp": _cpu_mlp, "cnn": _cpu_cnn, "matmul": _cpu_matmul}


def _cpu_fault() -> None:
    import ctypes

    ctypes.string_at(0)  # SIGSEGV: the process dies, as a CUDA context does on an illegal address


def _cpu_memory_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---- the cuda path: PyTorch, the same models as benchmarks/gpu_sharing.py ----


def _torch():
    try:
        import torch
    except ImportError:
        print("the cuda workloads need PyTorch in this Python (pip install torch)", file=sys.stderr, flush=True)
        raise SystemExit(NO_LIBRARY) from None
    if not torch.cuda.is_available():
        print("PyTorch sees no CUDA device here", file=sys.stderr, flush=True)
        raise SystemExit(NO_LIBRARY)
    return torch


def _cuda_step(kind: str, sizes: dict):
    torch = _torch()
    dev = torch.device("cuda")
    torch.manual_seed(0)
    if kind == "matmul":
        a = torch.randn(sizes["n"], sizes["n"], device=dev, dtype=torch.bfloat16)
        b = torch.randn(sizes["n"], sizes["n"], device=dev, dtype=torch.bfloat16)
        return lambda: torch.mm(a, b)
    nn = torch.nn
    if kind == "mlp":
        model = nn.Sequential(
            nn.Linear(sizes["inputs"], sizes["hidden"]),
            nn.ReLU(),
            nn.Linear(sizes["hidden"], sizes["hidden"]),
            nn.ReLU(),
            nn.Linear(sizes["hidden"], sizes["outputs"]),
        )
        x = torch.randn(sizes["batch"], sizes["inputs"], device=dev)
    else:
        side = sizes["side"]
        model = nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(128 * (side // 4) ** 2, sizes["outputs"]),
        )
        x = torch.randn(sizes["batch"], 3, side, side, device=dev)
    model = model.to(dev)
    y = torch.randint(0, sizes["outputs"], (sizes["batch"],), device=dev)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


def _cuda_fault() -> None:
    torch = _torch()
    from torch.cuda.jiterator import _create_jit_fn

    bad_read = _create_jit_fn(
        "template <typename T> T bad_read(T x) { return x + *reinterpret_cast<volatile T*>(16); }"
    )
    bad_read(torch.ones(1024, device="cuda"))
    torch.cuda.synchronize()  # raises: an illegal memory access was encountered


def _cuda_memory_mib() -> float:
    import torch

    return torch.cuda.max_memory_reserved() / 2**20


# ---- the job ----


def _wait_for_start(spec: dict) -> None:
    print("ready", flush=True)
    if spec.get("start_at"):
        time.sleep(max(0.0, spec["start_at"] - time.time()))
    elif not sys.stdin.readline():  # the bench that started this job is gone: do not run unattended
        raise SystemExit("no start signal: the bench ended")


def _thin(samples: list[float], limit: int = 500) -> list[float]:
    stride = max(1, len(samples) // limit)
    return [round(v, 4) for v in samples[::stride]]


def run(spec: dict) -> dict:
    cuda = spec["device"] == "cuda"
    step = (
        _cuda_step(spec["kind"], spec["sizes"])
        if cuda
        else CPU_WORKLOADS[spec["kind"]](spec["sizes"], random.Random(0))
    )
    sync = _torch().cuda.synchronize if cuda else (lambda: None)
    per_batch = spec.get("steps_per_batch", 1)
    for _ in range(spec.get("warmup_steps", 2)):
        step()
    sync()
    _wait_for_start(spec)
    crash_at = spec.get("crash_after_s")
    latencies, steps, began = [], 0, time.perf_counter()
    while (now := time.perf_counter()) - began < spec["seconds"]:
        if crash_at is not None and now - began >= crash_at:
            (_cuda_fault if cuda else _cpu_fault)()
        for _ in range(per_batch):
            step()
        sync()
        latencies.append((time.perf_counter() - now) * 1000 / per_batch)
        steps += per_batch
    elapsed = time.perf_counter() - began
    memory = _cuda_memory_mib() if cuda else _cpu_memory_mib()
    return {
        "steps": steps,
        "seconds": round(elapsed, 4),
        "latency_ms": _thin(latencies),
        "memory_mib": round(memory, 1),
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    print(json.dumps(run(spec)), flush=True)


if __name__ == "__main__":
    main()
