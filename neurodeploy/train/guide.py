"""Guided jump-start (adaptive-surrogate paper, Van den Berghe et al., NeurIPS 2025).

A *guide* is an ANN policy trained with ordinary TD3 on the privileged
observation (``neurodeploy.envs.privileged``: true state + recent actions). In
guided training it acts for the first ``share`` steps of every episode while the
stateful SNN runs alongside on the ordinary observation, warming its state; then
the SNN acts. The share shrinks by ``guide_share_step`` every
``guide_round_steps`` environment steps, from ``guide_share_start`` down to the
warm-up (``burn_in``). Its action at every step is stored for the BC term, whose
weight lambda_BC decays by ``bc_decay`` per round (the paper's "per epoch").
A guide is loaded from its best-evaluated policy (``best.pt``) when the run has one:
TD3's evaluations swing between checkpoints, and a guide is only as good as its flights.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from neurodeploy.envs.privileged import ActionHistory
from neurodeploy.errors import CheckpointError, ConfigError
from neurodeploy.snn import actor_from_payload
from neurodeploy.train.checkpoint import BEST_POLICY, safe_torch_load
from neurodeploy.train.config import TrainConfig, read_config


class Guide:
    def __init__(self, actor: torch.nn.Module, history: int, scale=()):
        self.actor = actor
        self.history = ActionHistory(actor.config.act_dim, history, scale)

    @classmethod
    def load(cls, run_dir: Path, env_id: str | None = None) -> Guide:
        """The guide trained in ``run_dir``; ``env_id``: the env it must have trained on."""
        run_dir = Path(run_dir)
        cfg = read_config(run_dir / "config.toml")
        if env_id is not None and cfg.env != env_id:
            raise ConfigError(f"guide {run_dir} was trained on {cfg.env}, not {env_id}")
        if cfg.observation != "privileged":
            raise CheckpointError(
                f"guide {run_dir}: trained on observation={cfg.observation!r}; a guide needs "
                "observation='privileged'"
            )
        policy = run_dir / BEST_POLICY
        if not policy.exists():
            policy = run_dir / "policy.pt"
        actor = actor_from_payload(safe_torch_load(policy, "policy"), str(run_dir))
        return cls(actor.eval(), cfg.guide_history, cfg.guide_obs_scale)

    def reset(self) -> None:
        self.history.reset()

    @torch.no_grad()
    def act(self, obs: np.ndarray, info: dict) -> np.ndarray:
        x = torch.as_tensor(self.history.observe(obs, info))[None]
        return self.actor(x)[0].numpy()

    def executed(self, action: np.ndarray) -> None:
        """Record the action the environment received (guide's or SNN's)."""
        self.history.push(action)


def guide_round(cfg: TrainConfig, step: int) -> int:
    """The round of the jump-start schedule that environment step ``step`` falls in."""
    return max(0, step - cfg.start_steps) // cfg.guide_round_steps


def guide_share(cfg: TrainConfig, step: int) -> int:
    """Steps the guide acts in an episode that starts at environment step ``step``."""
    return max(cfg.burn_in, cfg.guide_share_start - guide_round(cfg, step) * cfg.guide_share_step)


def bc_weight(cfg: TrainConfig, step: int) -> float:
    """lambda_BC for an episode that starts at ``step``: ``bc_weight`` x ``bc_decay`` per round."""
    return cfg.bc_weight * cfg.bc_decay ** guide_round(cfg, step)


def guide_config(cfg: TrainConfig) -> TrainConfig:
    """The config of the guide a guided run trains first (``guide_steps`` > 0)."""
    return dataclasses.replace(
        cfg,
        algo="td3",
        neuron="ann",
        steps=cfg.guide_steps,
        hidden=[256, 256],
        mode="reset",
        sequence_length=0,
        observation="privileged",
        guide="",
        guide_steps=0,
        q_alpha=0.0,
        bc_weight=0.0,
        update_every=1,
        slope_schedule="fixed",
        slope_params={},
        obs_scale=[],  # the SNN's observation scale; the guide sees the privileged one
    )
