#!/usr/bin/env bash
# The prepared GPU check of issue 28, on one machine with an NVIDIA GPU. Every step has a timeout; together they
# stay under 8 minutes (150 + 20 + 20 + 240 + 50 s), and a step that runs out is reported and the next one runs.
#
#   bash benchmarks/gpu_check.sh [OUT]        (OUT defaults to a fresh temporary folder)
#
# 1. installs the tensorrt extra (and the test extra) into the current Python environment (from PyPI, or with
#    WHEELS=/folder/of/wheels from that folder only, for a machine without network);
# 2. prints the installed TensorRT and, when it is a release without a committed API list, writes one
#    (tools/tensorrt_api_surface.py --installed) so it can be compared and committed;
# 3. benchmarks/gpu_check.py: exports MobileOne-S0 and three paper rows to TensorRT fp16 and measures each with
#    TensorRT replayed from a CUDA graph, TensorRT launched every run, and torch-cuda (CUDA graph), then
#    `explain` on TensorRT (each layer read back to its ONNX nodes: categories, coverage);
# 4. runs the tests marked `gpu` (real engine build, parity, launch and replay, profilers);
# 5. prints one summary line per step and the check's JSON.
set -u -o pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${1:-$(mktemp -d -t gpu-check-XXXXXX)}
mkdir -p "$OUT"
status=0
step() { echo "== $*" >&2; }

step "install: .[tensorrt,test]"
pip_from=()
if [ -n "${WHEELS:-}" ]; then pip_from=(--no-index --find-links "$WHEELS"); fi
if ! timeout 150 "$PY" -m pip install -q ${pip_from[@]+"${pip_from[@]}"} -e '.[tensorrt,test]' >"$OUT/pip.log" 2>&1; then
    echo "pip install failed (see $OUT/pip.log); the checks below run with what is installed" >&2
    status=1
fi

step "environment"
timeout 20 "$PY" - <<'PYEOF' | tee "$OUT/environment.json" >&2
import json, torch
from mobileone_bench.devices._tensorrt import installed_tensorrt
info = {"tensorrt": installed_tensorrt(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
print(json.dumps(info))
PYEOF

step "API list of the installed TensorRT (compare with tests/fixtures/tensorrt)"
timeout 20 "$PY" tools/tensorrt_api_surface.py --installed --out "$OUT/api-list" >&2 || status=1

step "export + latency (benchmarks/gpu_check.py)"
if ! timeout 240 "$PY" benchmarks/gpu_check.py --out "$OUT" >"$OUT/gpu_check.json" 2>"$OUT/gpu_check.log"; then
    echo "gpu_check.py failed: $(tail -3 "$OUT/gpu_check.log")" >&2
    status=1
fi

step "tests marked gpu"
timeout 50 "$PY" -m pytest -q -p no:randomly -m gpu tests/test_tensorrt.py tests/test_tensorrt_runtime.py \
    tests/test_tensorrt_torch_cuda.py >"$OUT/pytest.log" 2>&1 || status=1
tail -3 "$OUT/pytest.log" >&2

step "summary (all files under $OUT)"
cat "$OUT/gpu_check.json" 2>/dev/null || echo '{"error": "no summary"}'
exit $status
