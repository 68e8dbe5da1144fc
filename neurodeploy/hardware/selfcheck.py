"""Self-check of the Lava stack: source -> Dense -> LIF, 20 steps, float and fixed point.

The expected spike counts come from a plain-integer hand computation of the
Lava LIF and Dense fixed-point equations (lava-nc 0.10.0), including the one-step delay
that Dense adds.
"""

from __future__ import annotations

import numpy as np

from neurodeploy.lava_compat import import_lava

STEPS = 20
# Two input neurons: one spikes every step, one every third step.
INPUT = np.array([[1] * STEPS, [1 if t % 3 == 0 else 0 for t in range(STEPS)]], dtype=np.int32)
WEIGHTS = np.array([[40, 0], [20, 30], [30, -12]], dtype=np.int32)
DU, DV, VTH = 4095, 1024, 100  # current cleared every step, voltage keeps 3/4, threshold 100


def expected_counts(fixed: bool) -> list[int]:
    """Spike counts per LIF neuron, computed by hand from the Lava equations."""
    n = WEIGHTS.shape[0]
    u, v, counts = [0] * n, [0] * n, [0] * n
    for t in range(STEPS):
        # Dense delay: the LIF sees at step t what the source sent at step t-1.
        a = [0] * n if t == 0 else [int(WEIGHTS[i] @ INPUT[:, t - 1]) for i in range(n)]
        for i in range(n):
            if fixed:
                u[i] = _trunc_div(u[i] * (4096 - (DU + 1)), 4096) + (a[i] << 6)
                v[i] = _trunc_div(v[i] * (4096 - DV), 4096) + u[i]
                spiked = v[i] > (VTH << 6)
            else:
                u[i] = u[i] * (1 - (DU + 1) / 4096) + a[i]
                v[i] = v[i] * (1 - DV / 4096) + u[i]
                spiked = v[i] > VTH
            if spiked:
                counts[i] += 1
                v[i] = 0
    return counts


def _trunc_div(x: int, d: int) -> int:
    q = abs(x) // d
    return q if x >= 0 else -q


def lava_counts(fixed: bool) -> list[int]:
    """Build and run the three-process graph in Lava; return spike counts per LIF neuron."""
    source = import_lava("lava.proc.io.source")
    sink = import_lava("lava.proc.io.sink")
    Dense = import_lava("lava.proc.dense.process").Dense
    LIF = import_lava("lava.proc.lif.process").LIF
    RunSteps = import_lava("lava.magma.core.run_conditions").RunSteps
    Loihi2SimCfg = import_lava("lava.magma.core.run_configs").Loihi2SimCfg

    n = WEIGHTS.shape[0]
    if fixed:
        src = source.RingBuffer(data=INPUT.copy())
        lif = LIF(shape=(n,), du=DU, dv=DV, vth=VTH, bias_mant=0, bias_exp=0)
    else:
        src = source.RingBuffer(data=INPUT.astype(float))
        lif = LIF(shape=(n,), du=(DU + 1) / 4096, dv=DV / 4096, vth=VTH, bias_mant=0, bias_exp=0)
    dense = Dense(weights=WEIGHTS.copy() if fixed else WEIGHTS.astype(float))
    out = sink.RingBuffer(shape=(n,), buffer=STEPS)
    src.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    lif.s_out.connect(out.a_in)
    tag = "fixed_pt" if fixed else "floating_pt"
    try:
        lif.run(condition=RunSteps(num_steps=STEPS), run_cfg=Loihi2SimCfg(select_tag=tag))
        data = out.data.get()
    finally:
        lif.stop()
    return [int(c) for c in np.asarray(data).sum(axis=1)]


def run_selfcheck() -> list[tuple[str, bool, str]]:
    """Return (name, passed, detail) for the float and fixed-point runs."""
    results = []
    for fixed in (False, True):
        name = f"lava {'fixed_pt' if fixed else 'floating_pt'} source->Dense->LIF, {STEPS} steps"
        want = expected_counts(fixed)
        got = lava_counts(fixed)
        results.append((name, got == want, f"spike counts {got}, hand computation {want}"))
    return results
