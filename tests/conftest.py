"""The suite runs on the CPU, on any host: its resume and equality tests are bitwise, and
CUDA kernels are not deterministic (docs/training.md, "Determinism"). On a GPU host
``--device auto`` would otherwise train on the GPU, in this process and in every CLI
subprocess. ``NEURODEPLOY_TEST_CUDA=1`` leaves the GPU visible for the CUDA tests
(``bash benchmarks/gpu.sh run`` sets it)."""

import os

if os.environ.get("NEURODEPLOY_TEST_CUDA") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # read when CUDA first initialises, not at import
