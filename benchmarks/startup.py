"""Startup time of the real `affordml` console script: `--help` and `plan --facts <fixture>`.

Run: python benchmarks/startup.py [--runs 15] [--facts tests/fixtures/hardware/desktop-rtx4090.json]
Each command runs as a fresh subprocess of the console script installed next to this interpreter (not a pyenv
shim, which would add its own start-up), in a throw-away project folder. Prints median, min and max wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FACTS = ROOT / "tests" / "fixtures" / "hardware" / "desktop-rtx4090.json"
TARGETS_MS = {"--help": 150, "plan --facts": 600}


def console_script() -> Path:
    script = Path(sys.executable).parent / "affordml"
    if not script.exists():
        sys.exit(f"no affordml console script next to {sys.executable}; install the project (pip install -e .)")
    return script


def time_runs(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    subprocess.run(argv, capture_output=True, env=env, check=False)  # warm the file cache once, not counted
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, env=env, check=False)
        times.append((time.perf_counter() - start) * 1000)
        if done.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode().strip()}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--facts", type=Path, default=DEFAULT_FACTS)
    args = parser.parse_args()
    script = console_script()
    with tempfile.TemporaryDirectory() as project:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AFFORDML_")}
        cases = {
            "--help": [str(script), "--help"],
            "plan --facts": [str(script), "--project-dir", project, "plan", "--facts", str(args.facts)],
        }
        print(f"affordml startup, {args.runs} runs each ({script}, Python {sys.version.split()[0]})")
        print(f"{'command':<14} {'median':>9} {'min':>9} {'max':>9} {'target':>9}  verdict")
        over = False
        for name, argv in cases.items():
            times = time_runs(argv, args.runs, env)
            median, target = statistics.median(times), TARGETS_MS[name]
            verdict = "ok" if median <= target else "OVER TARGET"
            over |= median > target
            print(f"{name:<14} {median:>7.0f}ms {min(times):>7.0f}ms {max(times):>7.0f}ms {target:>7d}ms  {verdict}")
    sys.exit(1 if over else 0)


if __name__ == "__main__":
    main()
