#!/usr/bin/env bash
# Installs torchattacks for the attack-throughput comparison into benchmarks/.deps, a folder of its own
# that only `python -m benchmarks` puts on sys.path: it never becomes a dependency of regmix, and
# --no-deps keeps it from pulling a different torch into any environment.
# Usage: benchmarks/setup.sh [python]   (default: .venv/bin/python, else python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${1:-}"
if [ -z "$python" ]; then
  if [ -x "$here/../.venv/bin/python" ]; then python="$here/../.venv/bin/python"; else python=python3; fi
fi
"$python" -m pip install --quiet --no-deps --upgrade --target "$here/.deps" "torchattacks==3.5.1"
echo "torchattacks installed into $here/.deps (used only by python -m benchmarks)"
