"""Heaviside spike function with surrogate gradients.

Forward: ``S = [x > 0]`` where ``x = V - V_th``. Backward uses one of

- ``rect``          dS/dx = 1 where |x| < 0.5 (Proxy Target paper, window half-width 0.5)
- ``fast_sigmoid``  dS/dx = 1 / (1 + k|x|)^2 (adaptive-surrogate paper, slope k)
- ``arctan``        dS/dx = (k/2) / (1 + (pi/2 * k * x)^2)

The slope ``k`` is a tensor so a schedule can change it during training without
rebuilding anything; ``rect`` ignores it.
"""

from __future__ import annotations

import math

import torch

from neurodeploy.errors import ConfigError

SURROGATES = ("rect", "fast_sigmoid", "arctan")
_RECT_HALF_WIDTH = 0.5


def surrogate_grad(x: torch.Tensor, kind: str, slope: torch.Tensor | float) -> torch.Tensor:
    """dS/dx of the named surrogate at ``x`` (for ``rect``, a bool mask: multiply by it)."""
    if kind == "rect":
        return x.abs() < _RECT_HALF_WIDTH
    if kind == "fast_sigmoid":
        return 1.0 / (1.0 + slope * x.abs()) ** 2
    if kind == "arctan":
        return (slope / 2) / (1.0 + (math.pi / 2 * slope * x) ** 2)
    raise ConfigError(f"unknown surrogate {kind!r}; choose one of {', '.join(SURROGATES)}")


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(x, slope, kind):
        return (x > 0).to(x.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, slope, kind = inputs
        ctx.save_for_backward(x, slope)
        ctx.kind = kind

    @staticmethod
    def vmap(info, in_dims, x, slope, kind):
        """Elementwise: vectorised seeds (torch.func.vmap) run it on all seeds at once."""
        if in_dims[1] is not None:
            raise NotImplementedError("spike: the surrogate slope cannot differ per seed")
        return _Spike.apply(x, slope, kind), in_dims[0]

    @staticmethod
    def backward(ctx, grad_out):
        x, slope = ctx.saved_tensors
        return grad_out * surrogate_grad(x, ctx.kind, slope), None, None


class Surrogate(torch.nn.Module):
    """Spike function ``S = [x > 0]`` whose backward pass is the named surrogate.

    ``slope`` is a buffer (saved with the model, moved with ``.to``) that a slope
    schedule overwrites in place.
    """

    def __init__(self, kind: str = "rect", slope: float = 1.0):
        super().__init__()
        if kind not in SURROGATES:
            raise ConfigError(f"unknown surrogate {kind!r}; choose one of {', '.join(SURROGATES)}")
        self.kind = kind
        self.register_buffer("slope", torch.tensor(float(slope)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing():  # ONNX export: plain ops, no Python autograd function
            return (x > 0).to(x.dtype)
        return _Spike.apply(x, self.slope, self.kind)

    def set_slope(self, value: float) -> None:
        self.slope.fill_(float(value))

    def extra_repr(self) -> str:
        return f"kind={self.kind}, slope={float(self.slope):g}"
