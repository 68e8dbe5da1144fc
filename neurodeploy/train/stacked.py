"""Several seeds' networks as one: stacked weights run by ``torch.func.vmap``.

``Stacked(modules)`` holds the parameters of N modules of one architecture as tensors with a
leading seed dimension, and runs the first module's code on all of them at once
(``vmap`` over ``functional_call``): every matrix product becomes one batched product.
Inputs and outputs carry the seed dimension first, ``[N, B, ...]``. Buffers (action scale,
surrogate slope, neuron constants) are not stacked: the seeds share them, and the template
module's own buffers are used.

Adam and Polyak averaging are elementwise, so one optimiser over the stacked parameters is
N independent optimisers. The losses are summed over the seeds, each the mean over its own
batch, so no gradient mixes seeds. :class:`SeedAxis` and :class:`Solo` give TD3 those
per-seed means and per-seed noise; a solo agent uses :class:`Solo`.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


def _key(name: str) -> str:
    return name.replace(".", ":")  # ParameterDict keys may not hold dots


class Stacked(nn.Module):
    """N modules with one architecture, run as one on inputs ``[N, B, ...]``.

    Only the stacked parameters are this module's parameters (what an optimiser and a
    Polyak copy see); the template, whose code and buffers run every seed, is kept aside
    and only follows ``.to(device)``.
    """

    def __init__(self, modules: list[nn.Module]):
        super().__init__()
        params, _ = stack_module_state(modules)
        template = copy.deepcopy(modules[0]).requires_grad_(False)
        object.__setattr__(self, "template", template)  # not a submodule: see above
        frozen = {k for k, p in modules[0].named_parameters() if not p.requires_grad}
        self.stack = nn.ParameterDict(  # a parameter a solo run holds fixed stays fixed
            {
                _key(k): nn.Parameter(v.detach(), requires_grad=k not in frozen)
                for k, v in params.items()
            }
        )
        self.size = len(modules)

    def _apply(self, fn, recurse=True):
        self.template._apply(fn, recurse)
        return super()._apply(fn, recurse)

    def params(self) -> dict[str, torch.Tensor]:
        return {k.replace(":", "."): v for k, v in self.stack.items()}

    def forward(self, *inputs):
        def one(params, *x):
            return functional_call(self.template, params, x)

        out = vmap(one)(self.params(), *inputs)
        if getattr(self.template, "spike_trains", None):
            self.template.spike_trains = {}  # kept under vmap: no longer valid tensors
        return out

    def member(self, k: int) -> nn.Module:
        """Seed k's module on its own (a copy: the policy to evaluate, save or export)."""
        module = copy.deepcopy(self.template)
        with torch.no_grad():
            for name, value in self.params().items():
                module.get_parameter(name).copy_(value[k])
        return module

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:  # set_slope, config, layer_names, ...: the template's
            return getattr(self.__dict__["template"], name)


class Solo:
    """One agent: losses are batch means; noise comes from torch's global generator."""

    @staticmethod
    def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(a, b)

    @staticmethod
    def mean(x: torch.Tensor) -> torch.Tensor:
        return x.mean()

    @staticmethod
    def randn_like(x: torch.Tensor) -> torch.Tensor:
        return torch.randn_like(x)


class SeedAxis:
    """N stacked agents: each seed's loss is the mean over its own batch (a vector [N],
    summed before backward); each seed draws noise from its own generator, as its solo
    run draws from torch's global one."""

    def __init__(self, generators: list[torch.Generator]):
        self.generators = generators

    @staticmethod
    def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return ((a - b) ** 2).flatten(1).mean(1)

    @staticmethod
    def mean(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).mean(1)

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            [
                torch.randn(x.shape[1:], generator=g, dtype=x.dtype, device=g.device).to(x.device)
                for g in self.generators
            ]
        )
