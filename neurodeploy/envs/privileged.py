"""The privileged observation a guide policy sees: the true state plus recent actions.

An environment may put its noise-free state in ``info["privileged"]`` (QuadHover
does: state and rotor speeds); otherwise the observation itself is used. The
last ``history`` actions (zeros after a reset, newest first) are appended. An
optional ``scale`` multiplies the first ``len(scale)`` entries (QuadHover: position
x10, velocity x3, so that centimetres are visible to the guide and its critic).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from neurodeploy.errors import ConfigError


class ActionHistory:
    """The last ``history`` actions, newest first, zeros after ``reset``."""

    def __init__(self, act_dim: int, history: int, scale=()):
        self.actions = np.zeros((history, act_dim), np.float32)
        self.scale = np.asarray(scale, np.float32)

    def reset(self) -> None:
        self.actions[:] = 0.0

    def push(self, action: np.ndarray) -> None:
        if len(self.actions):
            self.actions[1:] = self.actions[:-1]
            self.actions[0] = action

    def observe(self, obs: np.ndarray, info: dict) -> np.ndarray:
        state = np.asarray(info.get("privileged", obs), np.float32)
        observed = np.concatenate([state, self.actions.ravel()])
        if len(self.scale) > len(observed):
            raise ConfigError(
                f"guide_obs_scale has {len(self.scale)} entries; the privileged observation "
                f"has only {len(observed)}"
            )
        observed[: len(self.scale)] *= self.scale
        return observed


class PrivilegedObservation(gym.Wrapper):
    """Replaces the observation by :meth:`ActionHistory.observe` (for training a guide)."""

    def __init__(self, env: gym.Env, history: int, scale=()):
        super().__init__(env)
        self.history = ActionHistory(env.action_space.shape[0], history, scale)
        obs, info = env.reset(seed=0)
        n = len(self.history.observe(obs, info))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n,), np.float32)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.history.reset()
        return self.history.observe(obs, info), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.history.push(action)
        return self.history.observe(obs, info), reward, terminated, truncated, info
