"""Bit-accurate numpy emulator of the fixed-point network (Lava ``fixed_pt`` LIF + Dense).

Batched over observations. Per action every layer starts from zero state and runs
T steps; layer l at its step j sees layer l-1's spikes of step j. On Lava the same
happens L steps later per layer (each Dense adds one step) and the runner resets
each layer just before its window, so the spike trains are identical; tests check
this spike for spike against Lava.
"""

from __future__ import annotations

import numpy as np

from neurodeploy.export.loihi2 import FixedLayer

UV_MAX = 2**23


def _decay(x: np.ndarray, keep: int) -> np.ndarray:
    prod = x * keep
    return np.sign(prod) * (np.abs(prod) >> 12)


def lif_layer(fixed: FixedLayer, spikes_in: np.ndarray) -> np.ndarray:
    """spikes_in [T, B, in] (0/1) -> spikes [T, B, out] (0/1), from zero state."""
    T, B = spikes_in.shape[:2]
    w = fixed.weight.T.astype(np.int64)
    bias = fixed.effective_bias().astype(np.int64)
    u = np.zeros((B, fixed.size), np.int64)
    v = np.zeros_like(u)
    out = np.zeros((T, B, fixed.size), np.int8)
    vth = fixed.vth << 6
    for t in range(T):
        a = spikes_in[t].astype(np.int64) @ w
        a = a << fixed.weight_exp if fixed.weight_exp >= 0 else a >> -fixed.weight_exp
        u = _decay(u, 4096 - (fixed.du + 1)) + (a << 6)
        u = np.where(u > UV_MAX, u - 2 * UV_MAX, u)
        u = np.where(u <= -UV_MAX, u + 2 * UV_MAX, u)
        v = np.clip(_decay(v, 4096 - fixed.dv) + u + bias, -UV_MAX + 1, UV_MAX - 1)
        s = v > vth
        v[s] = 0
        out[t] = s
    return out


def run(layers: list[FixedLayer], spikes_in: np.ndarray) -> list[np.ndarray]:
    """Spike trains of every layer, [T, B, n] each, for input spike trains [T, B, n_in]."""
    trains, x = [], spikes_in
    for fixed in layers:
        x = lif_layer(fixed, x)
        trains.append(x)
    return trains
