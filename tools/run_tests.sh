#!/usr/bin/env bash
# Run the test suite in the environment made by tools/setup_env.sh:
#   bash tools/run_tests.sh [pytest options]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DIT_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "[run_tests] no environment at $VENV: run 'bash tools/setup_env.sh' first" >&2
    exit 1
fi
cd "$ROOT"
# pytest exits 5 when it collected no test: that is a failure here, as any non-zero status.
exec "$VENV/bin/python" -m pytest tests "$@"
