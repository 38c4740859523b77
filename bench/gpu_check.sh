#!/usr/bin/env bash
# One prepared GPU check, offline: the smoke accuracy suite with the hf backend in bf16 on the GPU, and the smoke
# latency scenario against `transformers serve --device cuda`; prints the rows and the recorded hardware.
# Run on a CUDA machine where the project is installed (`make venv`, or the GPU-worker image):
#   bench/gpu_check.sh [OUT_DIR]        (PYTHON=... to use another interpreter than .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-${OUT:-$(mktemp -d)}}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_UPDATE_CHECK=1 TOKENIZERS_PARALLELISM=false

"$PY" - <<'PYEOF'
import torch
if not torch.cuda.is_available():
    raise SystemExit("gpu_check: torch.cuda.is_available() is False: this is not a CUDA machine")
print(f"cuda: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}, torch {torch.__version__}")
PYEOF

MODEL_DIR=$("$PY" -c 'import os, pathlib
from evals.checkpoints.models import smollm2_checkpoint
cache = pathlib.Path(os.environ.get("EVALS_TEST_MODELS_DIR", pathlib.Path.home() / ".cache/checkpoint-evals/test-models"))
print(smollm2_checkpoint(cache)[0])')
echo "checkpoint: $MODEL_DIR"

echo "== accuracy: smoke suite, hf backend, cuda, bfloat16"
EVALS_ACCURACY_DEVICE=cuda EVALS_ACCURACY_DTYPE=bfloat16 \
  "$PY" -m evals accuracy --checkpoint "$MODEL_DIR" --suite smoke --backend hf \
  --model-id HuggingFaceTB/SmolLM2-135M-Instruct --json "$OUT/accuracy.json"

echo "== latency: smoke scenario, transformers serve --device cuda"
EVALS_TRANSFORMERS_SERVE_DEVICE=cuda EVALS_TRANSFORMERS_SERVE_DTYPE=bfloat16 \
  "$PY" -m evals latency --checkpoint "$MODEL_DIR" --scenario smoke --backend transformers \
  --model-id HuggingFaceTB/SmolLM2-135M-Instruct --json "$OUT/latency.json"

echo "== recorded provenance"
"$PY" - "$OUT/accuracy.json" <<'PYEOF'
import json, sys
from evals.environment import detect_hardware
provenance = json.load(open(sys.argv[1]))["provenance"]
print("accuracy run hardware:", json.dumps(provenance.get("hardware"), sort_keys=True))
print("accuracy run dtype/device:", provenance.get("dtype"), provenance.get("device"))
print("this machine:", json.dumps(detect_hardware(), sort_keys=True))
PYEOF
echo "outputs in $OUT"
