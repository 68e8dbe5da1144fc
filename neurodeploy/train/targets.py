"""The target policy of TD3's critic target: a Polyak copy of the actor, or a proxy ANN.

TD3 (flat or on sequences) asks its target strategy for three things and never tests
which one it holds:

* ``fit(obs, actions)``: learn from the online actor's actions on replayed states
  (``actions`` carry no gradient). The proxy regresses onto them; the Polyak copy
  ignores them.
* ``act(next_obs)``: the target action for the critic target, before TD3's smoothing noise.
* ``after_actor_step()``: called after every actor update. The Polyak copy moves
  ``theta' <- tau theta + (1 - tau) theta'``; the proxy does nothing.

``ProxyTarget`` is the Proxy Target method (Xu et al., NeurIPS 2025): a continuous ANN
tracks the spiking actor in output space, ``L = mean ||proxy(s) - actor(s)||^2``, with K
Adam steps each time it is fitted, so the critic target never sees the jumps a soft
update of spiking weights produces. ``PolyakTarget`` is TD3's soft update (Fujimoto et
al., ICML 2018), the "vanilla" baseline of the Proxy Target paper.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class PolyakTarget:
    """A frozen copy of the actor, moved towards it by ``tau`` after every actor step."""

    steps = 1  # batches to draw per update: one

    def __init__(self, actor: nn.Module, tau: float):
        self.actor, self.tau = actor, tau
        self.net = copy.deepcopy(actor)

    def fit_to(self, actor: nn.Module, obs: list[torch.Tensor], loss=None) -> dict:
        return {}

    def fit(self, obs: list[torch.Tensor], actions: list[torch.Tensor], loss=None) -> dict:
        return {}

    def act(self, next_obs: torch.Tensor) -> torch.Tensor:
        return self.net(next_obs)

    def act_sequence(self, next_obs: torch.Tensor, burn_in: int) -> torch.Tensor:
        """A stateful copy runs the whole next-observation segment, burn-in included."""
        return self.net.forward_sequence(next_obs)[0][burn_in:]

    def after_actor_step(self) -> None:
        polyak(self.actor, self.net, self.tau)

    def state_dict(self) -> dict:
        return {"actor_target": self.net.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["actor_target"])


class ProxyTarget:
    """A feed-forward ANN regressed onto the actor's actions, ``steps`` (K) Adam steps a fit."""

    def __init__(self, proxy: nn.Module, lr: float, steps: int):
        self.net, self.steps = proxy, steps
        self.opt = adam(proxy, lr)

    def fit_to(self, actor: nn.Module, obs: list[torch.Tensor], loss=None) -> dict:
        """Fit to ``actor``'s actions on each batch of states. The actor does not change
        during the K steps, so one forward pass gives the targets of every batch (the
        batches are joined on the batch dimension: -2, after any seed dimension)."""
        with torch.no_grad():
            actions = actor(torch.cat(obs, dim=-2)).split(obs[0].shape[-2], dim=-2)
        return self.fit(obs, list(actions), loss)

    def fit(
        self,
        obs: list[torch.Tensor],
        actions: list[torch.Tensor],
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> dict:
        """One Adam step per (obs, actions) pair; ``loss`` defaults to the mean squared error
        (with stacked seeds, a vector of per-seed losses, summed before backward)."""
        loss = loss or F.mse_loss
        total = 0.0
        for o, a in zip(obs, actions, strict=True):
            value = loss(self.net(o), a)
            self.opt.zero_grad(set_to_none=True)
            value.sum().backward()
            self.opt.step()
            total = total + value.detach()
        return {"proxy_loss": (total / len(obs)).tolist()}

    def act(self, next_obs: torch.Tensor) -> torch.Tensor:
        return self.net(next_obs)

    def act_sequence(self, next_obs: torch.Tensor, burn_in: int) -> torch.Tensor:
        """The proxy is feed-forward: it needs no burn-in."""
        return self.net(next_obs[burn_in:])

    def after_actor_step(self) -> None:
        pass

    def state_dict(self) -> dict:
        return {"actor_target": self.net.state_dict(), "proxy_opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["actor_target"])
        self.opt.load_state_dict(state["proxy_opt"])


def adam(module: nn.Module, lr: float) -> torch.optim.Adam:
    # fused: one kernel per step instead of a dozen per parameter (same update rule)
    return torch.optim.Adam(module.parameters(), lr=lr, fused=True)


@torch.no_grad()
def polyak(source: nn.Module, target: nn.Module, tau: float) -> None:
    for p, tp in zip(source.parameters(), target.parameters(), strict=True):
        tp.mul_(1.0 - tau).add_(p, alpha=tau)
