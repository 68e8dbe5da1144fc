"""Host-side codec: population encoder (observation -> spikes) and decoders (spikes -> action)."""

from __future__ import annotations

import math

import torch
from torch import nn

ENCODER_THRESHOLD = 0.999
ENCODER_STD = math.sqrt(0.05)
PLACE_THRESHOLD = 0.5


def _batched(x: torch.Tensor) -> bool:
    """True inside ``torch.func.vmap`` (vectorised seeds), where ``out=`` loops do not apply."""
    return torch._C._functorch.is_batchedtensor(x)


class _StraightThroughSpike(torch.autograd.Function):
    @staticmethod
    def forward(v):
        return (v > ENCODER_THRESHOLD).to(v.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def vmap(info, in_dims, v):  # elementwise: vectorised seeds run it on all seeds at once
        return _StraightThroughSpike.apply(v), in_dims[0]

    @staticmethod
    def backward(ctx, grad):
        return grad


class PopulationEncoder(nn.Module):
    """tanh(obs) -> Gaussian receptive fields -> deterministic integrate-and-fire spikes.

    Each observation dimension has ``pop`` neurons with learnable means (evenly
    spaced in ``mean_range``) and stds. Activation ``A = exp(-(x - mu)^2 / (2 std^2))``
    is integrated every timestep; a neuron spikes when its potential exceeds
    0.999 and then subtracts 0.999. The spike has a straight-through gradient.

    ``place=True`` (stateful controllers): no integration; a neuron spikes at every
    step while its activation exceeds 0.5, so the active receptive fields mark where
    the observation is, without the rate code's step-to-step jitter.
    """

    def __init__(self, obs_dim: int, pop: int = 10, mean_range=(-1.0, 1.0), std=ENCODER_STD,
                 place: bool = False):  # fmt: skip
        super().__init__()
        self.obs_dim, self.pop, self.place = obs_dim, pop, place
        means = torch.linspace(mean_range[0], mean_range[1], pop).repeat(obs_dim, 1)
        self.mean = nn.Parameter(means)
        self.std = nn.Parameter(torch.full((obs_dim, pop), float(std)))

    @property
    def size(self) -> int:
        return self.obs_dim * self.pop

    def activation(self, obs: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(obs).unsqueeze(-1)
        act = torch.exp(-0.5 * (x - self.mean) ** 2 / self.std**2)
        return act.flatten(-2)

    def forward(self, obs: torch.Tensor, timesteps: int, v: torch.Tensor | None = None):
        """obs [L, B, obs_dim] -> spikes [L*T, B, obs_dim*pop] and the final potential."""
        act = self.activation(obs)
        if self.place:
            s = act + ((act > PLACE_THRESHOLD).to(act.dtype) - act).detach()  # straight through
            return s.repeat_interleave(timesteps, dim=0), v
        if v is None:
            v = torch.zeros_like(act[0])
        if not (torch.is_grad_enabled() or torch.jit.is_tracing() or _batched(act)):
            return self._forward_no_grad(act, timesteps, v)
        spikes = []
        for a in act:
            for _ in range(timesteps):
                v = v + a
                if torch.jit.is_tracing():  # ONNX export: plain ops
                    s = (v > ENCODER_THRESHOLD).to(v.dtype)
                else:
                    s = _StraightThroughSpike.apply(v)
                v = v - s * ENCODER_THRESHOLD
                spikes.append(s)
        return torch.stack(spikes), v

    @staticmethod
    def _forward_no_grad(act, timesteps, v):
        """The same integrate-and-fire loop in place, without autograd bookkeeping."""
        v = v.clone()
        spikes = act.new_empty((act.shape[0] * timesteps, *act.shape[1:]))
        t = 0
        for a in act:
            for _ in range(timesteps):
                v.add_(a)
                torch.sub(v, ENCODER_THRESHOLD, out=spikes[t]).sign_().clamp_(min=0.0)
                v.sub_(spikes[t], alpha=ENCODER_THRESHOLD)
                t += 1
        return spikes, v


class PopulationDecoder(nn.Module):
    """Firing rate of ``pop`` neurons per action -> grouped linear (pop -> 1) -> tanh."""

    def __init__(self, act_dim: int, pop: int = 10):
        super().__init__()
        self.act_dim, self.pop = act_dim, pop
        bound = 1.0 / math.sqrt(pop)  # the init of a grouped Conv1d(act, act, pop, groups=act)
        self.weight = nn.Parameter(torch.empty(act_dim, pop).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(act_dim).uniform_(-bound, bound))

    def forward(self, rate: torch.Tensor) -> torch.Tensor:
        grouped = rate.unflatten(-1, (self.act_dim, self.pop))
        return torch.tanh((grouped * self.weight).sum(-1) + self.bias)


class LinearDecoder(nn.Module):
    """Firing rate of the last hidden layer -> Linear -> tanh (stateful controllers)."""

    def __init__(self, in_features: int, act_dim: int):
        super().__init__()
        self.linear = nn.Linear(in_features, act_dim)

    def forward(self, rate: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(rate))
