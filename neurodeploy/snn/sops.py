"""Synaptic operations (SOPs): the one formula training, ``bench-energy`` and sweeps count with.

A spike of presynaptic neuron j costs one synaptic operation per non-zero outgoing weight
(column j of the weight matrix ``W [out, in]``). Per layer, over the steps and samples it ran:

    SOP = sum_j  fired_j * fanout_j,   fanout_j = #{i : W[i, j] != 0},

where ``fired_j`` counts the steps at which input j was non-zero: a binary spike, or a graded
value of the direct encoder (a graded spike on Loihi 2). A core's SOPs are the sum over its
layers (encoder -> layer 0, layer 0 -> layer 1, ...); the last layer's spikes leave the chip
for the host decoder and cost no SOP.

The formula is one; the weights it is given differ. Training's estimate (``sop_budget``) and a
sweep's ``trial.json`` count on the actor's float weights, where every weight is non-zero;
``bench-energy`` counts on the deployed, quantised core, where weights that round to zero
cost nothing, and the direct encoder's graded inputs that round to zero send nothing. So the
training-time figures are upper bounds of ``bench-energy``'s for the same spikes (equal for a
``loihi``-neuron actor, trained on the chip's integer weights), and the energy tables use
``bench-energy``'s, which also charges the spikes of the reset schedule's empty steps after
each window (``sops_outside_windows``; training does not see them).

The count is differentiable: when the inputs carry a gradient (spikes of a surrogate-gradient
neuron), ``fired`` has the indicator's value and the spike's own gradient (straight through),
so ``d SOP / d spike_j = fanout_j``. The fan-out, a count of weights, is a constant.
"""

from __future__ import annotations

import numpy as np
import torch


def fanout(weight: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Non-zero outgoing weights of each presynaptic neuron: ``W [out, in]`` -> ``[in]``."""
    return (torch.as_tensor(weight) != 0).sum(dim=0)


def fired(x: torch.Tensor | np.ndarray, dtype=torch.float32) -> torch.Tensor:
    """1 where the input is non-zero, 0 elsewhere (in ``dtype``), with ``x``'s gradient."""
    x = torch.as_tensor(x)
    indicator = (x != 0).to(dtype)
    if x.requires_grad:  # value: exactly the indicator (x - x == 0); gradient: x's own
        indicator = indicator + (x - x.detach()).to(dtype)
    return indicator


def synaptic_ops(inputs: list, weights: list) -> list[torch.Tensor]:
    """Per layer: the SOPs its synapses performed, summed over every leading axis of its input.

    ``inputs[i]`` is what layer i received, ``[..., in_i]`` (steps, batch, ...); ``weights[i]``
    its weight matrix ``[out_i, in_i]``. Returns one float64 scalar tensor per layer: exact for
    integer counts below 2**53, and differentiable through spikes that carry a gradient. Each
    neuron's spike count is summed in float32 (exact below 2**24 rows, float64 beyond).
    """
    out = []
    for x, w in zip(inputs, weights, strict=True):
        rows = int(np.prod(x.shape[:-1]))
        dtype = torch.float32 if rows < 2**24 else torch.float64
        per_neuron = fired(x, dtype).reshape(rows, w.shape[1]).sum(dim=0).to(torch.float64)
        out.append(per_neuron @ fanout(w).to(torch.float64).to(per_neuron.device))
    return out
