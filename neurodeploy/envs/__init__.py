"""Gymnasium environments: creation with clear errors, and the project's own environments."""

from __future__ import annotations

import difflib

import gymnasium as gym
import numpy as np

from neurodeploy.errors import EnvError

if "neurodeploy/QuadHover-v0" not in gym.envs.registry:
    gym.register(
        id="neurodeploy/QuadHover-v0",
        entry_point="neurodeploy.envs.quad_hover:QuadHoverEnv",
        max_episode_steps=500,
    )


def make_env(env_id: str, seed: int | None = None, render_mode: str | None = None) -> gym.Env:
    """``gym.make`` with errors a user can act on; checks the spaces a TD3 actor needs."""
    try:
        env = gym.make(env_id, **({"render_mode": render_mode} if render_mode else {}))
    except gym.error.Error as exc:
        known = list(gym.envs.registry.keys())
        close = difflib.get_close_matches(env_id, known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise EnvError(f"environment {env_id!r} does not exist ({exc}).{hint}") from None
    except ImportError as exc:
        raise EnvError(f"environment {env_id!r} needs a missing package: {exc}") from None
    if not isinstance(env.action_space, gym.spaces.Box):
        env.close()
        raise EnvError(
            f"environment {env_id!r} has a {type(env.action_space).__name__} action space; "
            "TD3 needs continuous (Box) actions"
        )
    if (
        not isinstance(env.observation_space, gym.spaces.Box)
        or len(env.observation_space.shape) != 1
    ):
        env.close()
        raise EnvError(f"environment {env_id!r} needs a flat Box observation space")
    if not np.all(np.isfinite(env.action_space.low)) or not np.all(
        np.isfinite(env.action_space.high)
    ):
        env.close()
        raise EnvError(f"environment {env_id!r} has an unbounded action space; TD3 needs bounds")
    if seed is not None:
        env.action_space.seed(seed)
    return env


def check_env_id(env_id, source: str) -> str:
    """An env id read from a file must be a plain registered id: ``module:Env`` would make
    ``gym.make`` import that module."""
    if not isinstance(env_id, str) or ":" in env_id or env_id not in gym.envs.registry:
        raise EnvError(
            f"{source}: env {env_id!r} is not a registered gymnasium id (an id read from a file "
            "may not name a module to import)"
        )
    return env_id


def check_observation(obs: np.ndarray, env_id: str, step: int) -> np.ndarray:
    """Raise a clear error on NaN or inf in an observation."""
    if not np.all(np.isfinite(obs)):
        bad = np.flatnonzero(~np.isfinite(obs)).tolist()
        raise EnvError(
            f"{env_id} returned a non-finite observation at step {step} (indices {bad}): "
            "check the environment; training stopped, the last checkpoint is intact"
        )
    return obs
