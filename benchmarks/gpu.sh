#!/usr/bin/env bash
# One short GPU run (issue 17): stock diffusers against each of the engine's speed paths, for
# SD 1.5- and SDXL-sized models with random weights (no download, no network), 30-step 2x2 grids.
#
#   benchmarks/gpu.sh                 # on a CUDA machine, from anywhere; under 8 minutes on an H200
#   benchmarks/gpu.sh --stages plain,cuda-graphs    # extra arguments go to benchmarks.gpu_speed
#
# It prints the figures and writes them, with the log, to $OUT (default benchmarks/out/):
# gpu_speed.json, gpu_speed.txt. Needs a Python with a CUDA build of torch and this project's
# dependencies (diffusers, transformers); $PYTHON picks it (default: .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
OUT=${OUT:-benchmarks/out}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
"$PYTHON" - <<'PY' || { echo "gpu.sh: no usable CUDA torch in $PYTHON (set PYTHON=...)" >&2; exit 2; }
import torch, diffusers
assert torch.cuda.is_available(), "torch sees no CUDA GPU"
print(f"torch {torch.__version__} CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}, diffusers {diffusers.__version__}")
PY
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>/dev/null | tee "$OUT/gpu.txt" || true
# The script stops starting stages at --budget-s (420 s) and writes the JSON after every stage;
# the outer timeout (480 s) is the hard stop that keeps the run under 8 minutes. The compile cache
# is a fresh temporary folder, so the compile stage is a true cold start and `restart` a warm one.
timeout 480 "$PYTHON" -m benchmarks.gpu_speed --archs sd15,sdxl --steps 30 --repeats 2 --budget-s 420 \
    --json "$OUT/gpu_speed.json" "$@" 2>&1 | tee "$OUT/gpu_speed.txt"
