"""TD3 with either a Polyak target actor or a proxy target (Xu et al., Proxy Target, NeurIPS 2025).

One update, read top to bottom:

1. Proxy target only: K times, sample a batch s and regress the proxy ANN onto
   the online actor in output space, ``L = mean ||proxy(s) - actor(s)||^2``,
   with the actor's output as a constant (no gradient reaches the actor).
   The critic update below uses the last of these K batches (as the authors' code).
2. Critic target: ``a' = clip(target(s') + clip(N(0, sigma), -c, c))``,
   ``y = r + gamma * not_done * min(Q1'(s', a'), Q2'(s', a'))``, where ``target``
   is the proxy ANN or the Polyak copy of the actor.
3. Critic: minimise ``(Q1(s, a) - y)^2 + (Q2(s, a) - y)^2``.
4. Every ``policy_delay`` updates: actor loss ``-Q1(s, actor(s))``, then Polyak
   ``theta' <- tau theta + (1 - tau) theta'`` for the critic target, and
   ``target.after_actor_step()`` (a Polyak target moves; a proxy does nothing).
   With smoothness weights (CAPS, Mysore et al., ICRA 2021) the loss is
   ``-Q1 / mean|Q1| + lambda_T ||pi(s) - pi(s')||^2
   + lambda_S ||pi(s) - pi(s + N(0, sigma_S))||^2``: the Q term is normalised so the
   weights do not depend on the reward scale; it stops bang-bang chattering.
   With a synaptic-operation budget B (``sop_budget``) the loss adds the excess
   ``lambda * max(SOP / B - 1, 0)``, SOP the actor's SOPs per action on the batch (Q
   normalised as above), and ``lambda`` then takes one dual-ascent step
   (``neurodeploy/train/budget.py``).

Steps 1 and 2 go through the target strategy (``neurodeploy/train/targets.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from neurodeploy.errors import ConfigError
from neurodeploy.train.budget import make_budget
from neurodeploy.train.buffer import Batch
from neurodeploy.train.stacked import SeedAxis, Solo, Stacked
from neurodeploy.train.targets import PolyakTarget, ProxyTarget, adam, polyak


class Critic(nn.Module):
    """Twin Q networks, 256-256 ReLU each."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 256):
        super().__init__()

        def q():
            return nn.Sequential(
                nn.Linear(obs_dim + act_dim, hidden), nn.ReLU(),
                nn.Linear(hidden, hidden), nn.ReLU(),
                nn.Linear(hidden, 1),
            )  # fmt: skip

        self.q1, self.q2 = q(), q()

    def forward(self, obs, action):
        sa = torch.cat([obs, action], dim=1)
        return self.q1(sa), self.q2(sa)


@dataclass
class TD3Settings:
    gamma: float = 0.99
    tau: float = 0.005
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    policy_noise: float = 0.2  # fraction of the action half-range
    noise_clip: float = 0.5  # fraction of the action half-range
    policy_delay: int = 2
    proxy_lr: float = 1e-3
    proxy_steps: int = 3  # K
    smooth_temporal: float = 0.0  # lambda_T (CAPS): ||pi(s) - pi(s')||^2
    smooth_spatial: float = 0.0  # lambda_S (CAPS): ||pi(s) - pi(s + noise)||^2
    smooth_sigma: float = 0.01  # sigma_S, the observation noise of the spatial term
    sop_budget: float = 0.0  # synaptic operations per action (0: none; train/budget.py)
    sop_lr: float = 1e-3  # Adam learning rate of log(lambda), the budget's multiplier


class TD3:
    """TD3 over any actor; ``target`` is a :class:`PolyakTarget` or a :class:`ProxyTarget`."""

    def __init__(self, actor: nn.Module, critic: Critic, settings: TD3Settings,
                 action_low: torch.Tensor, action_high: torch.Tensor,
                 target: PolyakTarget | ProxyTarget,
                 axis: Solo | SeedAxis | None = None):  # fmt: skip
        self.actor, self.critic, self.settings, self.target = actor, critic, settings, target
        self.axis = axis or Solo()  # one agent, or N stacked seeds (train/stacked.py)
        self.critic_target = copy.deepcopy(critic)
        self.actor_opt = adam(actor, settings.actor_lr)
        self.critic_opt = adam(critic, settings.critic_lr)
        self.low, self.high = action_low, action_high
        self.half_range = (action_high - action_low) / 2
        if settings.sop_budget and not isinstance(self.axis, Solo):
            raise ConfigError("sop_budget holds one actor's multiplier; stacked seeds have N")
        self.budget = make_budget(settings.sop_budget, settings.sop_lr, action_low.device)
        self.decoded_weight = decoded_weight(actor)
        self.updates = 0

    def update(self, sample: Callable[[], Batch]) -> dict[str, float]:
        s = self.settings
        self.updates += 1

        # 1. the target learns from the actor (proxy: K regression steps; Polyak: nothing).
        # The critic update below uses the last batch drawn (as the authors' code).
        batches = [sample() for _ in range(self.target.steps)]
        losses = self.target.fit_to(self.actor, [b.obs for b in batches], self.axis.mse)
        batch = batches[-1]

        # 2. critic target with target-policy smoothing
        with torch.no_grad():
            noise = self.axis.randn_like(batch.action) * (s.policy_noise * self.half_range)
            noise = torch.maximum(torch.minimum(noise, s.noise_clip * self.half_range),
                                  -s.noise_clip * self.half_range)  # fmt: skip
            next_action = self.target.act(batch.next_obs) + noise
            next_action = torch.maximum(torch.minimum(next_action, self.high), self.low)
            q1_next, q2_next = self.critic_target(batch.next_obs, next_action)
            y = batch.reward + batch.not_done * s.gamma * torch.minimum(q1_next, q2_next)

        # 3. critic
        q1, q2 = self.critic(batch.obs, batch.action)
        critic_loss = self.axis.mse(q1, y) + self.axis.mse(q2, y)  # per seed when stacked
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.sum().backward()
        self.critic_opt.step()
        losses["critic_loss"] = critic_loss.tolist()

        # 4. delayed actor update, then Polyak averaging of the critic (and a Polyak target)
        if self.updates % s.policy_delay == 0:
            actions, sops = self.budget.act(self.actor, batch.obs)  # sops: None without budget
            q1_pi, _ = self.critic(batch.obs, actions)
            actor_loss = -self.axis.mean(q1_pi)
            if s.smooth_temporal or s.smooth_spatial or self.budget.normalises_q:
                actor_loss = actor_loss / self.axis.mean(q1_pi.abs()).detach()
            if s.smooth_temporal or s.smooth_spatial:
                smooth = self._smoothness(batch, actions)
                actor_loss = actor_loss + smooth
                losses["smooth_loss"] = smooth.tolist()
            actor_loss = actor_loss + self.budget.penalty(sops)
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.sum().backward()
            self.actor_opt.step()
            losses["actor_loss"] = actor_loss.tolist()
            losses.update(decoded_gradient(self.decoded_weight))
            losses.update(self.budget.step(sops))  # the multiplier follows the batch's SOPs
            polyak(self.critic, self.critic_target, s.tau)
            self.target.after_actor_step()
        return losses

    def _smoothness(self, batch: Batch, actions: torch.Tensor) -> torch.Tensor:
        """CAPS: ``lambda_T ||pi(s) - pi(s')||^2 + lambda_S ||pi(s) - pi(s + noise)||^2``."""
        s = self.settings
        loss = 0.0
        if s.smooth_temporal:
            step = self.actor(batch.next_obs) - actions
            loss = loss + s.smooth_temporal * self.axis.mean((step**2).sum(-1))
        if s.smooth_spatial:
            noisy = batch.obs + self.axis.randn_like(batch.obs) * s.smooth_sigma
            loss = loss + s.smooth_spatial * self.axis.mean(
                ((self.actor(noisy) - actions) ** 2).sum(-1)
            )
        return loss

    # -- checkpointing ------------------------------------------------------------------

    def _modules(self) -> dict:
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target,
                "actor_opt": self.actor_opt, "critic_opt": self.critic_opt}  # fmt: skip

    def state_dict(self) -> dict:
        state = {name: part.state_dict() for name, part in self._modules().items()}
        return {**state, **self.target.state_dict(), **self.budget.state_dict(),
                "updates": self.updates}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        for name, part in self._modules().items():
            part.load_state_dict(state[name])
        self.target.load_state_dict(state)
        self.budget.load_state_dict(state)
        self.updates = int(state["updates"])


def decoded_weight(actor: nn.Module) -> torch.Tensor:
    """The weights into the actor's output units: the spiking neurons the decoder reads, or
    an ANN's last linear layer (``[N, out, in]`` for stacked seeds)."""
    params = actor.params() if isinstance(actor, Stacked) else dict(actor.named_parameters())
    return params[actor.decoded_weight_name]


def decoded_gradient(weight: torch.Tensor) -> dict:
    """``output_grad``: the share of the output units whose incoming weights the last actor
    loss gave any gradient (per seed when stacked). A spiking neuron gets none when its
    membrane stays outside the ``rect`` surrogate's window on every sample of the batch
    (always or never firing), an ANN output when its tanh is saturated to exactly +-1 in
    float32 on every sample. At 0 the actor loss reaches no layer below them (a spiking actor's
    decoder still learns, and a SOP budget's penalty still reaches the spiking layers). Only
    an exact zero counts: with a surrogate that has tails (fast_sigmoid, arctan) it is 1 by
    construction. docs/training.md, "A dead output layer"."""
    if weight.grad is None:
        return {}
    share = (weight.grad != 0).any(-1).float().mean(-1)
    return {"output_grad": share.tolist()}


def make_target(actor: nn.Module, settings: TD3Settings, proxy: nn.Module | None):
    """The proxy target when a proxy network is given, else TD3's Polyak copy of the actor."""
    if proxy is None:
        return PolyakTarget(actor, settings.tau)
    return ProxyTarget(proxy, settings.proxy_lr, settings.proxy_steps)
