"""N job processes started together in one process group, released at once, collected, and never left behind:
whatever happens (a timeout, Ctrl-C, SIGTERM), the group is stopped before the call returns."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from affordml import procs
from affordml.bench.metrics import JobResult
from affordml.errors import ConfigError, RunError

WORKER = Path(__file__).with_name("worker.py")
READY_TIMEOUT_S = 300.0  # a cuda job builds its context and warms up before it says ready


class Group:
    """Child processes sharing one process group, led by the first."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []

    def start(self, argv: Sequence[str], env: dict[str, str], piped: bool, stderr=subprocess.PIPE) -> subprocess.Popen:
        group = 0 if not self.children else self.children[0].pid
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if piped else subprocess.DEVNULL,
            stdout=subprocess.PIPE if piped else subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            env=env,
            process_group=group,
        )
        self.children.append(child)
        return child

    def stop(self) -> None:
        if self.children:
            procs.stop_group(self.children[0].pid, grace_s=2.0)
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
            for stream in (child.stdin, child.stdout, child.stderr):
                if stream:
                    stream.close()


def run_workers(specs: list[dict], envs: list[dict[str, str]], timeout_s: float) -> list[JobResult]:
    """Start one worker.py per spec, wait until each is ready (or has died), release them together."""
    group = Group()
    try:
        for spec, env in zip(specs, envs, strict=True):
            group.start([sys.executable, str(WORKER), json.dumps(spec)], env, piped=True)
        _await_ready(group.children, time.monotonic() + READY_TIMEOUT_S)
        for child in group.children:
            if child.poll() is None:
                _release(child)
        deadline = time.monotonic() + timeout_s
        return [_collect(child, deadline) for child in group.children]
    finally:
        group.stop()


def run_commands(argv: Sequence[str], envs: list[dict[str, str]], timeout_s: float) -> list[JobResult]:
    """The user's own command, N copies at once: each copy is one step, its wall time the latency."""
    import tempfile

    group = Group()
    with tempfile.TemporaryDirectory(prefix="affordml-bench-") as folder:
        logs = [open(Path(folder) / f"job{i}.err", "w+") for i in range(len(envs))]  # noqa: SIM115
        try:
            began = time.perf_counter()
            for env, log in zip(envs, logs, strict=True):
                try:
                    group.start(argv, env, piped=False, stderr=log)
                except OSError as exc:
                    raise ConfigError(
                        f"--command: {argv[0]!r} cannot be started ({exc.strerror or exc})",
                        "give a program on PATH or its full path",
                    ) from None
            ended = _wait_all(group.children, time.monotonic() + timeout_s)
            results = []
            for child, log, took in zip(group.children, logs, ended, strict=True):
                took -= began
                if child.returncode == 0:
                    results.append(JobResult(1, round(took, 4), (round(took * 1000, 2),)))
                else:
                    log.seek(0)
                    error = _last_line(log.read()) or _ended(child.returncode)
                    results.append(JobResult(exit_code=child.returncode, error=error))
            return results
        finally:
            group.stop()
            for log in logs:
                log.close()


def _wait_all(children: list[subprocess.Popen], deadline: float) -> list[float]:
    """When each child ended (perf_counter), polled so that an early finisher is not timed by a slow one."""
    ended: dict[int, float] = {}
    while len(ended) < len(children):
        for index, child in enumerate(children):
            if index not in ended and child.poll() is not None:
                ended[index] = time.perf_counter()
        if time.monotonic() > deadline:
            raise RunError("bench: a job ran past its time limit", "use a shorter --seconds or a lighter command")
        time.sleep(0.005)
    return [ended[i] for i in range(len(children))]


def _await_ready(children: list[subprocess.Popen], deadline: float) -> None:
    waiting = {child.stdout: child for child in children}
    with selectors.DefaultSelector() as selector:
        for stream in waiting:
            selector.register(stream, selectors.EVENT_READ)
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RunError(
                    f"bench: {len(waiting)} job(s) not ready after {READY_TIMEOUT_S:.0f} s",
                    "check the GPU is free (nvidia-smi)",
                )
            for key, _ in selector.select(timeout=min(left, 1.0)):
                line = key.fileobj.readline()
                if line.strip() == "ready" or not line:  # ready, or it died before (its result says why)
                    selector.unregister(key.fileobj)
                    waiting.pop(key.fileobj)


def _release(child: subprocess.Popen) -> None:
    try:
        child.stdin.write("go\n")
        child.stdin.flush()
    except BrokenPipeError:
        pass  # it died while the others got ready; _collect reports how


def _wait(child: subprocess.Popen, deadline: float) -> None:
    try:
        child.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise RunError(
            "bench: a job ran past its time limit", "use a shorter --seconds or a lighter workload"
        ) from None


def _collect(child: subprocess.Popen, deadline: float) -> JobResult:
    _wait(child, deadline)
    out, err = child.stdout.read(), child.stderr.read()
    if child.returncode != 0:
        return JobResult(exit_code=child.returncode, error=_last_line(err) or _ended(child.returncode))
    try:
        data = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return JobResult(exit_code=None, error="the job printed no result")
    return JobResult(
        steps=int(data["steps"]),
        seconds=float(data["seconds"]),
        latency_ms=tuple(data["latency_ms"]),
        memory_mib=data.get("memory_mib"),
    )


def _ended(code: int) -> str:
    import signal

    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The jobs' environment: this one, one BLAS/OpenMP thread per job (so N jobs contend like N GPU clients, not
    N thread pools), and the mode's own settings."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(extra or {})
    return env
