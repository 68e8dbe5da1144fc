#!/bin/bash
# The GPU checks of issue 17, for a lent GPU host that has Python 3.12, torch with CUDA and
# numpy but no network. Two steps:
#
#   bash benchmarks/gpu.sh wheels   # here: the training stack's wheels into .device/wheels
#   bash benchmarks/gpu.sh run      # there (the repository root, .device carried): install
#                                   # them, run the CUDA tests and the GPU throughput table
#
# .device/ stays out of git (.git/info/exclude) and must fit the 64 MiB carry with the
# working tree: numpy is dropped (the host has it), TensorBoard is left out (metrics.csv
# holds every value) and so is mujoco's viewer, mujoco-studio (mujoco goes in --no-deps).
# `run` copies docs/results.md, with the "Vectorised seeds, GPU" section, to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(gymnasium imageio typer rich matplotlib tomli-w pytest mujoco-core glfw pyopengl)

case "${1:-}" in
    wheels)
        grep -qx ".device/" .git/info/exclude 2>/dev/null || echo ".device/" >> .git/info/exclude
        rm -rf .device/wheels
        .venv/bin/pip download "${PACKAGES[@]}" mujoco -d .device/wheels --only-binary=:all: \
            --python-version 3.12 --platform manylinux2014_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 -q
        rm -f .device/wheels/numpy-*.whl .device/wheels/mujoco_studio-*.whl \
            .device/wheels/websockets-*.whl
        du -sh .device/wheels ;;
    run)
        export OUT=${OUT:-/tmp/gpu-out} PYTHONPATH=$PWD OMP_NUM_THREADS=1
        mkdir -p "$OUT"
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
        python -m pip install -q --no-index --find-links .device/wheels --no-deps mujoco
        python -m pip install -q --no-index --find-links .device/wheels "${PACKAGES[@]}"
        python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
            | tee -a "$OUT/gpu.txt"
        python -m pytest -q -p no:cacheprovider tests/test_seeds.py 2>&1 | tail -15 \
            | tee "$OUT/test_seeds.txt"
        python benchmarks/train_throughput.py --seeds 1,5,8,10 --device cuda 2>&1 | tail -30 \
            | tee "$OUT/throughput.txt"
        cp docs/results.md "$OUT/results.md" ;;
    *)
        echo "usage: bash benchmarks/gpu.sh wheels|run" >&2
        exit 2 ;;
esac
