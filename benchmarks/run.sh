#!/usr/bin/env bash
# Reproduce docs/performance.md: a separate venv (benchmarks/.venv) with the project and its `bench`
# extra (the peer engines), then the benchmark. Extra arguments go to benchmarks/bench.py, e.g.
#   bash benchmarks/run.sh --cases 10000 --rounds 7
#   bash benchmarks/run.sh --smoke
# BENCH_SCALE=1 also runs the scale benchmark (benchmarks/scale.py) afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=benchmarks/.venv
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$VENV/.installed" ] || [ pyproject.toml -nt "$VENV/.installed" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[bench]'
  touch "$VENV/.installed"
fi
"$VENV/bin/python" -m benchmarks.bench "$@"
if [ "${BENCH_SCALE:-0}" = "1" ]; then
  "$VENV/bin/python" -m benchmarks.scale
fi
