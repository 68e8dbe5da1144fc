"""TD3 for stateful actors on replayed episode segments (Van den Berghe et al., NeurIPS 2025).

One update on a batch of segments [L, B] (``SequenceBuffer``), read top to bottom. Steps
1-3 and 6 run only on the actor's turn (every ``policy_delay`` updates); a critic-only
update never runs the online actor, which is most of an update's cost.

1. Burn-in: the online actor runs the first ``burn_in`` steps without gradient,
   from a zero state; those steps warm its state and are left out of every loss
   (their mask is 0).
2. BPTT: from that state the actor runs the remaining steps with gradient,
   giving ``a_t = actor(s_<=t)``.
3. Proxy target only: K times, ``L = mean ||proxy(s_t) - a_t||^2`` with ``a_t``
   as a constant (a feed-forward proxy tracks the actor's average response).
4. Critic target: ``a'_t`` from the target strategy: the proxy, or the Polyak copy
   of the actor run over the whole ``s'`` segment (burn-in included, no gradient); with TD3's
   clipped noise, ``y = r + gamma * not_done * min(Q1', Q2')(s', a')``.
5. Critic: ``(Q1 - y)^2 + (Q2 - y)^2`` over the masked steps (the critic is a
   feed-forward network on the observation, as in the paper).
6. Every ``policy_delay`` updates, the actor loss (TD3+BC):
   ``-lambda_Q Q1(s_t, a_t) + lambda_BC ||a_t - a_guide_t||^2`` with
   ``lambda_Q = q_alpha / mean|Q1|`` (``q_alpha = 0`` means plain ``-Q1``), then
   Polyak for the critic target (and the actor target without a proxy).
   ``bc_only`` skips the critic and trains the actor on the BC term alone
   (behaviour cloning of the guide).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from neurodeploy.train.buffer import SequenceBatch
from neurodeploy.train.targets import PolyakTarget, ProxyTarget, polyak
from neurodeploy.train.td3 import TD3, Critic, TD3Settings, decoded_gradient


class SequenceTD3(TD3):
    """:class:`TD3` with the update above; networks, optimisers and checkpoints are TD3's."""

    def __init__(self, actor: nn.Module, critic: Critic, settings: TD3Settings,
                 action_low: torch.Tensor, action_high: torch.Tensor,
                 target: PolyakTarget | ProxyTarget, burn_in: int = 50, q_alpha: float = 0.0,
                 bc_weight: float = 0.0, bc_only: bool = False):  # fmt: skip
        super().__init__(actor, critic, settings, action_low, action_high, target)
        self.burn_in, self.q_alpha, self.bc_only = burn_in, q_alpha, bc_only
        self.bc_weight = bc_weight  # lambda_BC; the training loop sets it per episode

    def update(self, sample: Callable[[], SequenceBatch]) -> dict[str, float]:
        s, b = self.settings, sample()
        self.updates += 1
        losses = {}

        burn = self.burn_in
        actor_turn = self.bc_only or self.updates % s.policy_delay == 0
        obs, mask, guide = b.obs[burn:], b.mask[burn:], b.guide_action[burn:]
        weight = mask / mask.sum().clamp(min=1.0)

        def masked_mean(values: torch.Tensor) -> torch.Tensor:  # values [L, B, 1]
            return (values * weight).sum()

        # 1-2. burn-in without gradient, then BPTT over the rest of the segment (only when
        # the actor learns: a critic-only update needs nothing from the online actor)
        if actor_turn:
            warm = None
            if burn:
                with torch.no_grad():
                    _, warm = self.actor.forward_sequence(b.obs[:burn])
            actions, _ = self.actor.forward_sequence(obs, warm)

        if self.bc_only:
            bc = masked_mean(((actions - guide) ** 2).sum(-1, keepdim=True))
            self._step(self.actor_opt, bc)
            return {"actor_loss": bc.item(), **decoded_gradient(self.decoded_weight)}

        # 3. the target learns from the actor when the actor has just run (proxy: K steps
        # of the masked squared error onto its actions; Polyak: nothing)
        if actor_turn:
            k = self.target.steps
            losses.update(self.target.fit([obs] * k, [actions.detach()] * k, _masked_mse(weight)))

        # 4. critic target with target-policy smoothing
        with torch.no_grad():
            next_action = self.target.act_sequence(b.next_obs, burn)
            clip = s.noise_clip * self.half_range
            noise = torch.randn_like(next_action) * (s.policy_noise * self.half_range)
            next_action = next_action + torch.maximum(torch.minimum(noise, clip), -clip)
            next_action = torch.maximum(torch.minimum(next_action, self.high), self.low)
            q1_next, q2_next = self.critic_target(_flat(b.next_obs[burn:]), _flat(next_action))
            y = _flat(b.reward[burn:]) + _flat(b.not_done[burn:]) * s.gamma * torch.minimum(
                q1_next, q2_next
            )

        # 5. critic over the masked steps
        q1, q2 = self.critic(_flat(obs), _flat(b.action[burn:]))
        w = _flat(weight)
        critic_loss = (w * ((q1 - y) ** 2 + (q2 - y) ** 2)).sum()
        self._step(self.critic_opt, critic_loss)
        losses["critic_loss"] = critic_loss.item()

        # 6. delayed actor update (TD3+BC) and Polyak averaging
        if actor_turn:
            q1_pi, _ = self.critic(_flat(obs), _flat(actions))
            lambda_q = self.q_alpha / q1_pi.abs().mean().detach() if self.q_alpha > 0 else 1.0
            actor_loss = -lambda_q * (w * q1_pi).sum()
            if self.bc_weight > 0:
                bc = masked_mean(((actions - guide) ** 2).sum(-1, keepdim=True))
                actor_loss = actor_loss + self.bc_weight * bc
                losses["bc_loss"] = bc.item()
            self._step(self.actor_opt, actor_loss)
            losses["actor_loss"] = actor_loss.item()
            losses.update(decoded_gradient(self.decoded_weight))
            polyak(self.critic, self.critic_target, s.tau)
            self.target.after_actor_step()
        return losses

    @staticmethod
    def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def state_dict(self) -> dict:
        return {**super().state_dict(), "bc_weight": self.bc_weight}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.bc_weight = float(state["bc_weight"])


def _masked_mse(weight: torch.Tensor):
    """Mean squared error per step, averaged over the steps the mask keeps."""

    def loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (((pred - target) ** 2).mean(-1, keepdim=True) * weight).sum()

    return loss


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, x.shape[-1])
