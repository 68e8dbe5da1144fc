"""Loihi 2 fixed-point mapping of NIR layers, and what it cannot represent.

Rules (lava-nc 0.10.0 LIF and Dense fixed point, docs/export.md):

- Lava's LIF has one ``du``, ``dv`` and ``vth`` per population. Per-neuron
  thresholds are folded into the weights (row i is scaled by ``vth / threshold_i``);
  per-neuron decays cannot be folded and are refused.
- ``dv = round(4096 (1 - decay))``, ``du = round(4096 (1 - current_decay)) - 1``
  (a layer without a synaptic state gets ``du = 4095``: the current is cleared every step).
- Weights: ``w_int = round_even(W * vth / threshold / 2**weight_exp)`` in [-256, 254]
  with one ``weight_exp`` per layer (``neurodeploy.snn.fixed_point``). ``vth`` (17-bit)
  is chosen per layer as the largest value with max|w_int| <= 254 at ``weight_exp = 0``
  (and every bias mantissa within 13 bits): all 8 weight bits are used and the netx
  file can hold the layer exactly. A layer trained with the ``loihi`` neuron keeps its
  own ``vth`` (NIR metadata ``loihi_vth``), so it is reproduced bit for bit.
- Biases are added to ``v``: ``bias_mant << 6``. An input-current bias moves to
  ``v`` exactly when the current is cleared every step; otherwise it is refused.
- Real-valued input (the ``direct`` encoder) arrives as graded spikes: the host sends
  ``round(x * 2**INPUT_FRACTION_BITS)`` as a signed ``GRADED_BITS``-bit payload
  (:func:`chip_input`) and the first Dense multiplies it by its weights
  (``num_message_bits = GRADED_BITS``). The first layer is quantised as if its weights
  were ``W / 2**INPUT_FRACTION_BITS``, so ``W_int @ x_int`` is ``W x`` in chip units.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from neurodeploy.errors import ExportError
from neurodeploy.export.nir_graph import Layer
from neurodeploy.snn.fixed_point import (
    BIAS_MANT_MAX,
    W_MAX,
    W_MIN,
    quantize_bias,
    quantize_weights,
)

VTH_MAX = 2**17 - 1
GRADED_BITS = 16  # payload of an input graded spike (signed)
INPUT_FRACTION_BITS = 8  # input resolution 1/256; range +-128


@dataclass
class FixedLayer:
    weight: np.ndarray  # int64 [out, in], even, in [-256, 254]
    weight_exp: int
    bias_mant: np.ndarray  # int64 [out]
    bias_exp: int
    du: int
    dv: int
    vth: int
    input_bits: int = 0  # message bits of this layer's input: 0 = binary spikes

    @property
    def size(self) -> int:
        return self.weight.shape[0]

    def effective_bias(self) -> np.ndarray:
        return self.bias_mant << self.bias_exp


def _uniform(values: np.ndarray, what: str, where: str, fix: str) -> float:
    if np.ptp(values) > 1e-9:
        raise ExportError(
            f"{where}: per-neuron {what} cannot be represented on Loihi 2 "
            f"(Lava's LIF has one {what} per layer); {fix}"
        )
    return float(values[0])


def auto_vth(layer: Layer) -> int:
    """Largest 17-bit vth with max|w_int| <= 254 and |bias_mant| <= 4095 at weight_exp 0."""
    w_ratio = float(np.max(np.abs(layer.weight) / layer.threshold[:, None], initial=0.0))
    b_ratio = float(np.max(np.abs(layer.bias + layer.v_bias) / layer.threshold, initial=0.0))
    vth = VTH_MAX
    if w_ratio > 0:
        vth = min(vth, int(W_MAX / w_ratio))
    if b_ratio > 0:
        vth = min(vth, int(BIAS_MANT_MAX / b_ratio))
    return max(vth, 1)


def quantize_layer(layer: Layer, index: int) -> tuple[FixedLayer, dict]:
    """The fixed-point layer and its quantisation facts (weight_exp, clipped fraction, error)."""
    where = f"layer {index}"
    fix = "train with per_neuron=False (the default) or export with --target nir"
    decay = _uniform(layer.decay, "membrane decay", where, fix)
    current_decay = _uniform(layer.current_decay, "current decay", where, fix)
    dv = int(round(4096 * (1.0 - decay)))
    du = int(round(4096 * (1.0 - current_decay))) - 1
    if not (0 <= dv <= 4095 and 0 <= du <= 4095):
        raise ExportError(
            f"{where}: decays {decay}, {current_decay} are outside Loihi's 12-bit range"
        )
    if current_decay != 0 and np.any(layer.bias != 0):
        raise ExportError(
            f"{where}: a bias on a persistent synaptic current (current decay {current_decay}) "
            "has no Loihi 2 equivalent (Lava adds biases to the membrane); train with "
            "--set bias=false (a bias-free clif) or a neuron whose current is cleared every "
            "step (lif, loihi du=4095)"
        )
    if np.any(layer.threshold <= 0):
        raise ExportError(f"{where}: thresholds must be positive for Loihi 2")
    vth = layer.vth if layer.vth is not None else auto_vth(layer)
    scale = vth / layer.threshold  # chip units (before << 6) per float unit, per neuron
    scaled_w = torch.from_numpy(layer.weight * scale[:, None])
    w_int, w_exp = quantize_weights(scaled_w, 1.0)
    b_mant, b_exp = quantize_bias(torch.from_numpy((layer.bias + layer.v_bias) * scale), 1.0)
    w_int = w_int.detach().round().to(torch.int64).numpy()
    wanted = scaled_w.numpy() / 2.0**w_exp
    clipped = float(np.mean((wanted > W_MAX + 1) | (wanted < W_MIN - 1)))
    err = (w_int * 2.0**w_exp - scaled_w.numpy()) / scale[:, None]
    facts = {
        "weight_exp": w_exp,
        "bias_exp": b_exp,
        "du": du,
        "dv": dv,
        "vth": vth,
        "clipped_fraction": clipped,
        "weight_rms_error": float(np.sqrt(np.mean(err**2))),
        "weight_rms": float(np.sqrt(np.mean(layer.weight**2))),
    }
    fixed = FixedLayer(
        w_int, w_exp, b_mant.detach().round().to(torch.int64).numpy(), b_exp, du, dv, vth
    )
    return fixed, facts


def quantize(layers: list[Layer], graded: bool = False) -> tuple[list[FixedLayer], list[dict]]:
    """Every layer in fixed point; ``graded``: the first takes graded input (:func:`chip_input`)."""
    if graded:
        first = dataclasses.replace(layers[0], weight=layers[0].weight / 2.0**INPUT_FRACTION_BITS)
        layers = [first, *layers[1:]]
    pairs = [quantize_layer(layer, i) for i, layer in enumerate(layers)]
    fixed = [p[0] for p in pairs]
    if graded:
        fixed[0] = dataclasses.replace(fixed[0], input_bits=GRADED_BITS)
        facts = pairs[0][1]
        facts["input"] = f"graded {GRADED_BITS}-bit, {INPUT_FRACTION_BITS} fraction bits"
        for key in ("weight_rms_error", "weight_rms"):  # in the float layer's units
            facts[key] *= 2.0**INPUT_FRACTION_BITS
    return fixed, [p[1] for p in pairs]


def chip_input(frames: np.ndarray, graded: bool) -> np.ndarray:
    """The core's input frames as the chip receives them: 0/1 spikes (int8) or graded
    payloads ``round(x * 2**INPUT_FRACTION_BITS)`` saturated to ``GRADED_BITS`` (int32)."""
    if not graded:
        return np.asarray(frames).astype(np.int8)
    limit = 2 ** (GRADED_BITS - 1) - 1
    scaled = np.rint(np.asarray(frames, np.float64) * 2.0**INPUT_FRACTION_BITS)
    return np.clip(scaled, -limit, limit).astype(np.int32)
