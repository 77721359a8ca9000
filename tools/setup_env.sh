#!/usr/bin/env bash
# One-command environment for dit_sam_mm.
#
#   bash tools/setup_env.sh
#
# Creates (or reuses) a virtual environment, installs the pinned OpenMMLab stack from
# requirements/*.txt, builds mmcv 2.1.0 from source with its ops and installs this project in
# editable mode. A re-run on an environment that is already right only checks it (seconds).
#
# Environment variables:
#   DIT_VENV     path of the virtual environment (default: <repo>/.venv)
#   DIT_PYTHON   interpreter used to create it (default: python3.11, else python3)
#   MAX_JOBS     parallel compile jobs for mmcv's ops (default: number of cores)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DIT_VENV:-$ROOT/.venv}"
STAMP="$VENV/.dit_sam_mm_setup"

say() { echo "[setup_env] $*"; }
fail() {
    echo "[setup_env] ERROR: $1" >&2
    [ -n "${2:-}" ] && echo "[setup_env] what to do: $2" >&2
    exit 1
}
run_step() {  # run_step "description" "remedy" cmd...
    local what="$1" remedy="$2"
    shift 2
    say "$what"
    "$@" || fail "step failed: $what" "$remedy"
}

requirements_hash() {
    cat "$ROOT"/requirements/*.txt "$ROOT/setup.py" | sha256sum | cut -d' ' -f1
}

environment_is_right() {
    [ -x "$VENV/bin/python" ] || return 1
    [ -f "$STAMP" ] || return 1
    [ "$(cat "$STAMP")" = "$(requirements_hash)" ] || return 1
    "$VENV/bin/python" - <<'EOF' 2>/dev/null
import importlib.metadata as md
import dit_sam_mm, mmseg, mmpretrain.models, segment_anything  # noqa: F401
import mmcv.ops  # noqa: F401  (compiled ops present)
import pkg_resources  # noqa: F401  (mmengine's `mmseg::` configs)
assert md.version('torch') == '2.13.0', md.version('torch')
assert md.version('mmcv') == '2.1.0', md.version('mmcv')
EOF
}

if environment_is_right; then
    say "environment at $VENV is up to date (delete $STAMP to force a reinstall)"
    exit 0
fi

# ---- prerequisites -------------------------------------------------------------------------
PY="${DIT_PYTHON:-}"
if [ -z "$PY" ]; then
    if command -v python3.11 >/dev/null; then PY=python3.11; else PY=python3; fi
fi
command -v "$PY" >/dev/null || fail "no Python interpreter '$PY'" "install Python 3.11 or set DIT_PYTHON"
"$PY" -c 'import sys; assert sys.version_info[:2] >= (3, 9)' \
    || fail "$PY is older than Python 3.9" "use Python 3.11 (set DIT_PYTHON)"
command -v g++ >/dev/null || command -v c++ >/dev/null \
    || fail "no C++ compiler found (mmcv 2.1.0 is built from source)" \
        "install one, e.g. 'apt-get install g++' (Debian/Ubuntu)"
"$PY" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || fail "Python headers (Python.h) are missing; mmcv's ops cannot compile" \
        "install them, e.g. 'apt-get install python3-dev'"

# ---- virtual environment -------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    run_step "creating virtual environment at $VENV" \
        "check that the venv module is available ('apt-get install python3-venv')" \
        "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
export PIP_NO_INPUT=1

# torch pulls in a recent setuptools; mmcv 2.1.0 needs one older than 70 (pkg_resources).
run_step "installing torch and torchvision" "check network access to the package index" \
    "${PIP[@]}" install -q "torch===2.13.0" "torchvision==0.28.0"
run_step "installing build requirements" "check network access to the package index" \
    "${PIP[@]}" install -q -r "$ROOT/requirements/build.txt"

if ! "$VENV/bin/python" -c 'import mmcv.ops, importlib.metadata as m; assert m.version("mmcv") == "2.1.0"' 2>/dev/null; then
    export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
    run_step "building mmcv 2.1.0 with ops (about 9 minutes on 2 cores the first time; pip caches the wheel)" \
        "read the compiler error above; a C++ compiler, Python headers and torch must be present" \
        env MMCV_WITH_OPS=1 "${PIP[@]}" install --no-build-isolation "mmcv==2.1.0"
fi

run_step "installing the pinned stack and test requirements" \
    "check network access to the package index; pins are in requirements/*.txt" \
    "${PIP[@]}" install -q -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" \
        -r "$ROOT/requirements/optional.txt"
run_step "installing dit_sam_mm in editable mode" "see pip's message above" \
    "${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
# The stack's resolver step lets torch raise setuptools past 70; put pkg_resources back (build.txt).
run_step "restoring setuptools<70 for mmengine's pkg_resources (pip warns about torch's pin)" \
    "check network access to the package index" \
    "${PIP[@]}" install -q -r "$ROOT/requirements/build.txt"

say "checking the environment"
"$VENV/bin/python" -c "import dit_sam_mm, mmseg, mmpretrain.models, segment_anything, mmcv.ops, pkg_resources" \
    || fail "the installed environment does not import" "see the traceback above"
requirements_hash > "$STAMP"
say "done. Activate with: source $VENV/bin/activate"
