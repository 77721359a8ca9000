#!/usr/bin/env bash
# Prepare a GPU machine of the `run` device tool (Python 3.12, CUDA PyTorch preinstalled, no package
# index) to run this project:
#
#   source tools/device/bootstrap.sh [DEPS_DIR]      # from the repository root
#
# installs the pinned OpenMMLab stack from DEPS_DIR/wheels plus tools/device/wheels into a site
# folder (DIT_DEVICE_SITE, default /tmp/dit-site) that goes ahead of the image's packages on
# PYTHONPATH, together with the repository root, and builds mmcv 2.1.0's CPU ops there from
# DEPS_DIR/mmcv-2.1.0.tar.gz (MMSeg imports mmcv.ops; the model uses none of its CUDA kernels).
# DEPS_DIR defaults to ../shared/device. That folder does not travel to the device machine: copy
# it into an ignored folder of the checkout and carry it (README, "Benchmark").
#
# This is ../shared/device/bootstrap.sh with one fix found by rehearsing it on CPU with Python 3.12:
# the shared importlib_metadata 10.2.0 wheel needs lazy_importer, which the shared wheels lack, so
# mmpretrain failed to import; tools/device/wheels carries it. A second run reinstalls only when
# the set of wheels changed.
deps=$(cd "${1:-../shared/device}" && pwd) || { echo "no dependency folder ${1:-../shared/device}"; return 1 2>/dev/null || exit 1; }
repo=$(pwd)
site=${DIT_DEVICE_SITE:-/tmp/dit-site}
mkdir -p "$site"
wheels=$(ls "$deps"/wheels/*.whl "$repo"/tools/device/wheels/*.whl)
if [ "$(cat "$site/.installed" 2>/dev/null)" != "$(basename -a $wheels)" ]; then
  python3 -m pip install -q --no-index --no-deps --upgrade --target "$site" $wheels &&
  basename -a $wheels > "$site/.installed"
fi
export PYTHONPATH="$site:$repo:${PYTHONPATH:-}"
if ! python3 -c "import mmcv.ops" >/dev/null 2>&1; then
  # CPU-only mmcv ops are enough for MMSeg's imports; hiding the GPU keeps the build short.
  work=$(mktemp -d)
  tar -xzf "$deps/mmcv-2.1.0.tar.gz" -C "$work"
  (cd "$work/mmcv-2.1.0" && CUDA_VISIBLE_DEVICES="" MMCV_WITH_OPS=1 MAX_JOBS=$(nproc) \
     python3 setup.py build_ext --inplace >"$work/build.log" 2>&1) ||
     { echo "mmcv build failed: see $work/build.log"; return 1 2>/dev/null || exit 1; }
  cp -r "$work/mmcv-2.1.0/mmcv" "$site/"
fi
python3 -c "import torch, mmcv, mmseg, mmpretrain.models, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'mmcv', mmcv.__version__, 'mmseg', mmseg.__version__, 'transformers', transformers.__version__)"
