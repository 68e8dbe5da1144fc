#!/bin/bash
# The GPU checks of issue 17, for a lent GPU host that has Python 3.12, torch with CUDA and
# numpy but no network. Two steps:
#
#   bash benchmarks/gpu.sh wheels   # here: the training stack's wheels into .device/wheels
#   bash benchmarks/gpu.sh run      # there (the repository root, .device carried): install
#                                   # them, write the GPU throughput table, run the CUDA tests
#
# .device/ stays out of git (.git/info/exclude) and must fit the 64 MiB carry with the
# working tree (about 24 MB): only what the host's image lacks travels (gymnasium, MuJoCo,
# tomli-w; its python3 already has torch, numpy, matplotlib, typer, rich, pytest,
# TensorBoard, cloudpickle and typing_extensions), and mujoco's viewer, mujoco-studio, stays behind (mujoco goes in --no-deps).
# `run` writes the "Vectorised seeds, GPU" section and copies docs/results.md to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(gymnasium tomli-w mujoco-core glfw pyopengl)
PY=${PYTHON:-python3}  # the host's python3 holds torch with CUDA

case "${1:-}" in
    wheels)
        grep -qx ".device/" .git/info/exclude 2>/dev/null || echo ".device/" >> .git/info/exclude
        rm -rf .device/wheels
        .venv/bin/pip download "${PACKAGES[@]}" mujoco -d .device/wheels --only-binary=:all: \
            --python-version 3.12 --platform manylinux2014_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 -q
        rm -f .device/wheels/numpy-*.whl .device/wheels/mujoco_studio-*.whl \
            .device/wheels/typing_extensions-*.whl .device/wheels/cloudpickle-*.whl \
            .device/wheels/websockets-*.whl
        du -sh .device/wheels ;;
    run)
        export OUT=${OUT:-/tmp/gpu-out} PYTHONPATH=$PWD OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 \
            NEURODEPLOY_TEST_CUDA=1  # tests/conftest.py hides the GPU without it
        mkdir -p "$OUT"
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
        $PY -m pip install -q --no-index --find-links .device/wheels --no-deps mujoco
        $PY -m pip install -q --no-index --find-links .device/wheels "${PACKAGES[@]}"
        $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
            | tee -a "$OUT/gpu.txt"
        # the throughput table, then the tests (the CUDA ones too)
        # ~150 s and ~90 s on an H200; each log ends with its exit status
        timeout 280 $PY benchmarks/train_throughput.py --seeds 1,5,8,10 --device cuda 2>&1 \
            | tee "$OUT/throughput.txt" || echo "exit ${PIPESTATUS[0]}" | tee -a "$OUT/throughput.txt"
        cp docs/results.md "$OUT/results.md"
        timeout 240 $PY -m pytest -q -p no:cacheprovider tests/test_seeds.py 2>&1 \
            | tee "$OUT/test_seeds.txt" || echo "exit ${PIPESTATUS[0]}" | tee -a "$OUT/test_seeds.txt" ;;
    *)
        echo "usage: bash benchmarks/gpu.sh wheels|run" >&2
        exit 2 ;;
esac
