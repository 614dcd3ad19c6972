#!/usr/bin/env bash
# Everything that needs a GPU, in one call of a lent GPU machine (bare image with torch, no network; about
# 8 minutes on an H200):
#   0. the captured step against the eager one (benchmarks/graph_check.py: weights, momentum, EMA, sums
#      after 12 steps with a new learning rate at each, float32);
#   1. the GPU section (ResNet-18 epochs: the train.fast step eager and captured as a CUDA graph, the plain
#      step beside it, the card's busy share of each, the floor);
#   2. the PGD-20 compaction and weight-landscape comparisons on cuda (their points repeated so that the card
#      sets the pace);
#   3. the CIFAR path end to end on CUDA (benchmarks/cifar_e2e.py: CIFAR-10 files in the real layout, every
#      method one epoch on ResNet-18 in bf16, every evaluation, diagnostics, figures, explorers, report).
# Each runs in its own process with its own time limit, so one that fails leaves the others measured.
# Wheels the image lacks travel in .whl/ (git-ignored; `echo /.whl/ >> .git/info/exclude` first), made with
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#     mlxtend==0.25.0 loss-landscapes==3.0.6 pyautoattack==0.2.0 plotly==7.1.0 ipywidgets==8.1.9 \
#     widgetsnbextension==4.0.16 jupyterlab_widgets==3.0.17 comm==0.2.3 traitlets==5.16.1 anywidget==0.11.0 \
#     psygnal==0.16.1 ipython==9.18.1 and IPython's own (asttokens executing ipython_pygments_lexers jedi
#     matplotlib-inline parso pexpect prompt_toolkit ptyprocess pure_eval stack-data wcwidth: the versions
#     `pip list` shows in .venv)
# with pyautoattack's wheel slimmed of its examples/ folder (a 44 MB model file; the call carries 64 MiB).
# Records and logs go to $OUT (default: benchmarks/results); copy the records into benchmarks/results and
# `python -m benchmarks.report` redraws docs/benchmarks.md from every record there.
set -u
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="$PWD:/tmp/site:${PYTHONPATH:-}"
else
  export PYTHONPATH="$PWD:${PYTHONPATH:-}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
timeout "${GRAPH_CHECK_S:-60}" python3 -m benchmarks.graph_check --device cuda --out "$out" > "$out/graph_check.log" 2>&1
echo "graph check: exit $?"; grep -E '"(method|captured|ok|max_relative_difference)"' "$out/graph_check.log" | head -30
timeout "${GPU_SECTION_S:-200}" python3 -m benchmarks --device cuda --only gpu --out "$out" --doc "$out/gpu.md" \
  > "$out/gpu.log" 2>&1; echo "gpu section: exit $?"; tail -25 "$out/gpu.log"
timeout "${SECTIONS_S:-90}" python3 -m benchmarks --device cuda --only eval,landscape --repeats 3 --out "$out" \
  --doc "$out/sections.md" > "$out/sections.log" 2>&1; echo "eval, landscape: exit $?"; tail -8 "$out/sections.log"
timeout "${E2E_S:-240}" python3 -m benchmarks.cifar_e2e --device cuda --out "$out/cifar_e2e" > "$out/cifar_e2e.log" 2>&1
echo "cifar_e2e: exit $?"; tail -40 "$out/cifar_e2e.log"
# a folder tree under $OUT does not come back whole from the device tool: the e2e folder travels as a tarball
cp "$out/cifar_e2e/cifar_e2e.json" "$out/cifar_e2e.json" 2>/dev/null
tar czf "$out/cifar_e2e.tgz" --exclude='*.pt' --exclude='*-batches-py' -C "$out" cifar_e2e && rm -rf "$out/cifar_e2e"
ls -la "$out"
