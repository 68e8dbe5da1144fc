"""The synaptic-operation budget: a Lagrange multiplier tuned as SAC tunes its temperature.

The actor should spend at most ``B = sop_budget`` synaptic operations per action. As a
constrained problem and its Lagrangian (multiplier ``lambda >= 0``):

    max_pi  E[Q(s, pi(s))]   subject to   E[SOP(pi, s)] <= B
    L(pi, lambda) = -Q(s, pi(s)) / mean|Q|  +  lambda * max(SOP(pi, s) / B - 1, 0)

``SOP(pi, s)`` is the actor's own count on the training batch (``SpikingActor.forward_with_sops``:
every layer's input spikes times their neurons' fan-out, ``neurodeploy/snn/sops.py``, the
formula ``bench-energy`` counts with), differentiable through the surrogate gradient. Dividing
by ``B`` and the Q term by its batch mean magnitude (as CAPS and TD3+BC do) makes ``lambda``
mean the same whatever the network size and the reward scale.

The actor's term acts on the excess only (``max(., 0)``, a hinge), not on every operation as a
plain Lagrangian's ``lambda * SOP / B`` would. The plain form kept pushing activity down after
the batch was already under its budget (``lambda`` shrinks by dual ascent, but only by a factor
``e`` per ~2,000 updates at ``sop_lr`` 1e-3), and a spiking layer pushed far below threshold
stays silent: its surrogate gradient is zero there, so the critic cannot bring it back.
On Pendulum-v1 PT-LIF (budget 10,000, seed 0) the plain form took the actor from 11,300 SOPs
per action to 110 within 8,000 steps and its return to -1,390, a random policy's
(``benchmarks/sop_budget_forms.py``).

The multiplier follows dual ascent, parameterised as SAC parameterises its temperature
(Haarnoja et al., "Soft Actor-Critic Algorithms and Applications", 2018): ``log lambda``
minimises ``-log_lambda * (SOP / B - 1)`` with Adam, the violation held constant. Its
gradient is ``-(SOP / B - 1)``: ``lambda`` grows while the batch spends more than the budget
and shrinks while it spends less, and the log keeps it positive. The user names a budget,
not a penalty weight. ``lambda`` starts at 1 (``log lambda = 0``, as SAC's temperature) and
``log lambda`` is clipped to +-``LOG_LAMBDA_LIMIT``, so a budget the actor cannot reach leaves
``lambda`` at about 22,000 (visible in ``metrics.csv``) instead of overflowing.

One actor update (``td3.py``, step 4): ``actions, sops = budget.act(actor, s)``; the loss
adds ``budget.penalty(sops)`` (with ``lambda`` constant); after the actor's step,
``budget.step(sops)`` moves ``lambda`` and returns what ``metrics.csv`` logs:
``sops_per_action`` (the batch's count) and ``sop_lambda`` (the multiplier after the step).
:class:`NoBudget` is the same hook doing nothing (``sop_budget = 0``).
"""

from __future__ import annotations

import torch
from torch import nn

LOG_LAMBDA_LIMIT = 10.0


class NoBudget:
    """``sop_budget = 0``: the plain actor, no penalty, nothing logged or saved."""

    normalises_q = False

    def act(self, actor: nn.Module, obs: torch.Tensor):
        return actor(obs), None

    def penalty(self, sops) -> float:
        return 0.0

    def step(self, sops) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class SopBudget:
    """At most ``budget`` synaptic operations per action, held by a multiplier (see above)."""

    normalises_q = True  # the Q term is divided by mean|Q|, so lambda is scale-free

    def __init__(self, budget: float, lr: float, device: torch.device | str = "cpu"):
        self.budget = float(budget)
        self.log_lambda = torch.zeros((), device=device, requires_grad=True)
        self.opt = torch.optim.Adam([self.log_lambda], lr=lr)

    @property
    def multiplier(self) -> torch.Tensor:
        return self.log_lambda.detach().exp()

    def act(self, actor: nn.Module, obs: torch.Tensor):
        """The actor's actions on ``obs`` and its SOPs per action (batch mean, differentiable)."""
        return actor.forward_with_sops(obs)

    def penalty(self, sops: torch.Tensor) -> torch.Tensor:
        """``lambda * max(SOP / B - 1, 0)``, lambda constant: only the excess is penalised."""
        return self.multiplier * torch.relu(sops.float() / self.budget - 1.0)

    def step(self, sops: torch.Tensor) -> dict[str, float]:
        """Dual ascent: ``log lambda`` descends ``-log_lambda * (SOP / B - 1)`` (SAC's rule)."""
        violation = (sops.detach() / self.budget - 1.0).float()
        loss = -self.log_lambda * violation
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            self.log_lambda.clamp_(-LOG_LAMBDA_LIMIT, LOG_LAMBDA_LIMIT)
        return {"sops_per_action": float(sops.detach()), "sop_lambda": float(self.multiplier)}

    def state_dict(self) -> dict:
        return {
            "sop_budget": {
                "log_lambda": self.log_lambda.detach().clone(),
                "optimizer": self.opt.state_dict(),
            }
        }

    def load_state_dict(self, state: dict) -> None:
        saved = state["sop_budget"]
        with torch.no_grad():
            self.log_lambda.copy_(saved["log_lambda"])
        self.opt.load_state_dict(saved["optimizer"])


def make_budget(budget: float, lr: float, device: torch.device | str) -> NoBudget | SopBudget:
    """The hook of TD3's actor update: a :class:`SopBudget` when ``budget`` > 0."""
    return SopBudget(budget, lr, device) if budget > 0 else NoBudget()
