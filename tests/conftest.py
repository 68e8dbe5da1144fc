"""The suite runs on the CPU, on any host: its resume and equality tests are bitwise, and
CUDA kernels are not deterministic (docs/training.md, "Determinism"). On a GPU host
``--device auto`` would otherwise train on the GPU, in this process and in every CLI
subprocess. ``NEURODEPLOY_TEST_CUDA=1`` leaves the GPU visible for the CUDA tests
(``bash benchmarks/gpu.sh run`` sets it).

One torch thread per process unless OMP_NUM_THREADS says otherwise: the suite's networks are
too small to gain from intra-op threads, and several tests run two trainings side by side (a
killed run and its twin, a sweep's lanes), which on a 2-core machine oversubscribe the cores
with torch's default of one thread per core (docs/results.md, "Default test suite time")."""

import os

if os.environ.get("NEURODEPLOY_TEST_CUDA") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # read when CUDA first initialises, not at import
os.environ.setdefault("OMP_NUM_THREADS", "1")  # read when torch first sizes its thread pool
