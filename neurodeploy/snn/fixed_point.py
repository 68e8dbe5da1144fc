"""The Loihi 2 fixed-point grid (lava-nc 0.10.0), shared by the ``loihi`` neuron and the exporter.

A layer's float weights ``W`` live in the units of the float LIF, whose
threshold is ``threshold`` (0.5 for the paper LIF). On the chip an input spike
adds ``(w_int << weight_exp) << 6`` to a membrane compared with ``vth << 6``, so
with ``scale = vth / threshold`` (chip units per float unit)

    w_int = round_even(W * scale / 2**weight_exp),   w_int in [-256, 254], even

(Lava's Dense clips 8-bit weights and, for mixed signs, drops the lowest bit).
``weight_exp`` is the smallest exponent in [0, 7] that keeps max|w_int| <= 254
(negative exponents exist in Lava's Dense, but netx files hold exponent-0 integer
weights, so they are not used). Biases are added to v each step:
``bias = bias_mant << 6`` with a 13-bit signed mantissa; ``bias_exp`` is always 6,
the value netx uses for CUBA neurons. Training and export call the same
functions, so a policy trained with the ``loihi`` neuron is exported unchanged.
"""

from __future__ import annotations

import math

import torch

W_MIN, W_MAX = -256, 254
EXP_MIN, EXP_MAX = 0, 7
BIAS_MANT_MIN, BIAS_MANT_MAX = -4096, 4095
BIAS_EXP = 6  # netx's fixed bias exponent for CUBA neurons


def _ste(x: torch.Tensor, rounded: torch.Tensor) -> torch.Tensor:
    return x + (rounded - x).detach()


def weight_exponent(scaled_max: float) -> int:
    """Smallest exponent with max|scaled| / 2**exp <= 254, within Loihi's range."""
    if scaled_max <= 0:
        return 0
    return int(min(EXP_MAX, max(EXP_MIN, math.ceil(math.log2(scaled_max / W_MAX)))))


def quantize_weights(weight: torch.Tensor, scale: float) -> tuple[torch.Tensor, int]:
    """Integer weights (as a float tensor, straight-through gradient) and the layer exponent."""
    scaled = weight * scale
    exp = weight_exponent(float(scaled.detach().abs().max()))
    mant = scaled / 2.0**exp
    w_int = (2 * torch.round(mant.detach() / 2)).clamp(W_MIN, W_MAX)
    return _ste(mant, w_int), exp


def shift_activation(a: torch.Tensor, exp: int) -> torch.Tensor:
    """Dense output ``a << exp`` (or arithmetic ``a >> -exp``), straight-through."""
    if exp >= 0:
        return a * 2.0**exp
    shifted = a / 2.0**-exp
    return _ste(shifted, torch.floor(shifted.detach()))


def quantize_bias(bias: torch.Tensor, scale: float) -> tuple[torch.Tensor, int]:
    """Bias mantissa (straight-through) and ``bias_exp`` (always 6): effective = mant << 6.

    In chip units a bias ``b`` is ``b * scale * 64``, so the mantissa is ``round(b * scale)``.
    """
    mant = bias * scale
    rounded = torch.round(mant.detach()).clamp(BIAS_MANT_MIN, BIAS_MANT_MAX)
    return _ste(mant, rounded), BIAS_EXP
