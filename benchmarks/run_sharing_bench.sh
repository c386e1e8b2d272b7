#!/usr/bin/env bash
# The GPU run of `affordml bench sharing --local`, prepared to finish in under 10 minutes on one NVIDIA GPU
# (estimated ~6 min on an H200: 22 runs of N processes, each ~5 s of counting after its PyTorch warm-up).
#
#   bash benchmarks/run_sharing_bench.sh [RESULTS_DIR]
#
# Needs: the NVIDIA driver (nvidia-smi), PyTorch with CUDA and affordml's dependencies (`pip install -e .`) in this
# Python ($PYTHON, default python3), nvidia-cuda-mps-control for the MPS rows. Changes no GPU setting: MPS runs with private pipe/log folders and is told to quit after each row; MIG
# rows only where MIG instances already exist. Writes per workload: <name>.json (the full result), <name>.txt
# (the table, blast radius, chart and recommendation), <name>.png; and env.txt (GPU, driver, torch).
# Commit RESULTS_DIR under benchmarks/results/ with the date and the GPU in its name.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python3}"

if ! nvidia-smi -L >/dev/null 2>&1; then echo "no NVIDIA GPU answers nvidia-smi: nothing to measure" >&2; exit 2; fi
if ! "$PY" -c 'import typer, pydantic, yaml' 2>/dev/null; then
  echo "affordml's dependencies are not importable by $PY: pip install -e . first" >&2; exit 2
fi
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "PyTorch with CUDA is not importable by $PY: install it (pip install torch), then run again" >&2; exit 2
fi
gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader --id=0 | tr ' /' '--')"
out="${1:-benchmarks/results/$(date -u +%Y-%m-%d)-${gpu}}"
mkdir -p "$out"
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,mig.mode.current --format=csv --id=0
  nvidia-smi -L
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  command -v nvidia-cuda-mps-control || echo "nvidia-cuda-mps-control: absent (no MPS rows)"
} > "$out/env.txt" 2>&1

bench() {  # name, time limit in s, then the options for `affordml bench sharing`
  local name="$1" limit="$2"; shift 2
  local started=$SECONDS
  timeout "$limit" "$PY" -m affordml bench sharing --local --device cuda "$@" --json > "$out/$name.json"
  "$PY" - "$out/$name.json" > "$out/$name.txt" <<'PYEOF'
import json, sys
from affordml.bench import report
from affordml.bench.metrics import Blast, Row
from affordml.bench.recommend import Recommendation
from affordml.bench.result import BenchResult, Device
data = json.load(open(sys.argv[1]))
d = data["device"]
result = BenchResult(data["where"], Device(d["kind"], d["name"], d["memory_mib"], tuple(d["mig_devices"])),
                     data["workload"], data["seconds"], data["counts"], [Row(**r) for r in data["rows"]],
                     [Blast(**b) for b in data["blast_radius"]], data["skipped"],
                     Recommendation(**data["recommendation"]))
print("\n".join(report.text_report(result)))
from affordml.bench.recommend import recommend
training = recommend(result.rows, result.blasts, role="training")
print("\nfor role training (a crash must end only its own job):")
print("\n".join(report.recommendation_lines(BenchResult("", result.device, "", 0, [], recommendation=training))))
PYEOF
  echo "$name: $((SECONDS - started)) s" | tee -a "$out/env.txt"
}

bench mlp    270 --workload mlp    --n 1,2,4,8 --seconds 5 --png "$out/mlp.png"
bench cnn    150 --workload cnn    --n 1,4     --seconds 5 --png "$out/cnn.png"
bench matmul 150 --workload matmul --n 1,4     --seconds 5 --png "$out/matmul.png"
echo "results in $out"
