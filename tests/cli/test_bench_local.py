"""`affordml bench sharing --local` through the real console script on the CPU stand-in: real job processes, real
timing (small sizes), a real crash (SIGSEGV) among them, and no process left behind, also after Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from affordml import procs
from affordml.bench.jobs import WORKER
from affordml.config.load import load_config
from tests.cli.conftest import console_script

WORKLOAD_SIZES = {"batch": 2, "inputs": 4, "hidden": 4, "outputs": 2}
FAST = ("bench", "sharing", "--local", "--device", "cpu", "--n", "1,2", "--seconds", "0.3")


def workers_alive() -> list[int]:
    return [pid for pid in procs.all_pids() if str(WORKER) in procs.cmdline(pid) and procs.read(pid)]


def test_cpu_run_measures_each_mode_and_the_crash_spares_the_others(cli, tmp_path):
    done = cli(*FAST, "--modes", "exclusive,time-slicing,mps,mig,hami", "--json")
    assert done.rc == 0, done.err
    data = json.loads(done.out)
    assert data["device"]["kind"] == "cpu" and data["device"]["stand_in"] is True
    assert [(r["mode"], r["n"]) for r in data["rows"]] == [
        ("exclusive", 1),
        ("time-slicing", 1),
        ("time-slicing", 2),
        ("mps", 1),
        ("mps", 2),
    ]
    for figures in data["rows"]:
        assert figures["jobs_ok"] == figures["n"] and figures["throughput"] > 0
        assert 0 < figures["latency_p50_ms"] <= figures["latency_p95_ms"]
        assert 1 / figures["n"] <= figures["fairness"] <= 1.0 and figures["memory_mib"] > 1
        assert figures["note"].startswith("cpu stand-in")
    base = data["rows"][0]["throughput"]
    two = data["rows"][2]
    assert two["ratio"] == round(two["throughput"] / base, 2)
    # separate processes: the faulting job dies by SIGSEGV, the other lives (what time-slicing promises on a GPU)
    assert [(b["mode"], b["n"], b["crashed"], b["others_died"]) for b in data["blast_radius"]] == [
        ("time-slicing", 2, True, 0),
        ("mps", 2, True, 0),
    ]
    assert set(data["skipped"]) == {"mig", "hami"}
    rec = data["recommendation"]
    assert rec["caveat"].startswith("CPU stand-in") and rec["mode"] in ("exclusive", "time-slicing", "mps")
    config_file = tmp_path / "affordml.yaml"
    config_file.write_text(rec["config_lines"])
    assert load_config(config_file, environ={}).gpu.sharing.mode == rec["mode"]
    assert workers_alive() == []


def test_table_chart_and_png(cli, tmp_path):
    png = tmp_path / "chart.png"
    done = cli(*FAST, "--modes", "time-slicing", "--workload", "cnn", "--png", png)
    assert done.rc == 0, done.err
    assert "CPU STAND-IN" in done.out and "fault blast radius" in done.out and "recommended:" in done.out
    assert "time-slicing  N=2" in done.out and "apply it with these lines in affordml.yaml" in done.out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    link = tmp_path / "link.png"
    link.symlink_to(tmp_path / "elsewhere.png")
    refused = cli(*FAST, "--modes", "time-slicing", "--png", link)
    assert refused.rc != 0 and "symbolic link" in refused.err and not (tmp_path / "elsewhere.png").exists()


def test_users_own_command_is_timed_per_copy(cli):
    done = cli(*FAST, "--modes", "time-slicing", "--command", "python3 -c 'sum(range(300000))'", "--json")
    assert done.rc == 0, done.err
    data = json.loads(done.out)
    assert data["workload"].startswith("command: python3 -c")
    assert [(r["n"], r["jobs_ok"]) for r in data["rows"]] == [(1, 1), (1, 1), (2, 2)]
    assert all(r["latency_p50_ms"] > 0 for r in data["rows"])


def test_bad_input_is_one_line(cli):
    for args, words in (
        (("--n", "0,2"), "--n '0,2': each count must be 1 to 64"),
        (("--modes", "turbo"), "--modes: unknown mode 'turbo'"),
        (("--workload", "resnet"), "--workload: no built-in workload 'resnet'"),
        (("--command", "'unclosed"), "--command: No closing quotation"),
        (("--role", "gaming"), "--role: 'gaming' is not a role"),
        (("--gpu-address", "01:00"), "--gpu-address:"),
        (("--device", "cpu", "--n", "1", "--seconds", "0.3", "--command", "no-such-program-x"), "cannot be started"),
    ):
        done = cli("bench", "sharing", "--local", *args)
        assert done.rc == 2 and len(done.err_lines) == 1 and words in done.err, (args, done.err)


def test_cuda_without_a_gpu_says_so(cli):
    done = cli("bench", "sharing", "--local", "--device", "cuda", "--seconds", "0.3")
    assert done.rc != 0 and len(done.err_lines) == 1 and "--device cuda:" in done.err


@pytest.fixture
def sigint_not_ignored():
    """A shell without job control starts background commands with SIGINT ignored, and a child inherits SIG_IGN:
    the bench must meet Ctrl-C as a terminal delivers it, however this suite was started (a Python handler here
    becomes the default action in the child)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_and_sigterm_leave_no_job_behind(cli, sigint_not_ignored):
    for signum, rc in ((signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM)):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AFFORDML_")}
        child = subprocess.Popen(
            [*console_script(), "bench", "sharing", "--local", "--device", "cpu", "--n", "4", "--seconds", "60"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 60
        while len(workers_alive()) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert workers_alive(), "no job started"
        time.sleep(0.5)
        child.send_signal(signum)
        _, err = child.communicate(timeout=60)
        assert child.returncode == rc, err
        assert workers_alive() == []


def test_the_cli_loads_no_bench_engine_until_the_command_runs():
    code = (
        "import sys, affordml.cli.main; "
        "print(sorted(m for m in sys.modules if m.startswith(('affordml.bench', 'matplotlib', 'kubernetes'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout


def test_a_job_whose_bench_is_gone_before_the_start_does_not_run():
    spec = json.dumps({"kind": "mlp", "device": "cpu", "seconds": 60, "sizes": WORKLOAD_SIZES})
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(WORKER), spec], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1 and "no start signal" in done.stderr and time.monotonic() - started < 20
