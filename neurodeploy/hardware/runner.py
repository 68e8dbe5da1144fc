"""Closed-loop runner: a gymnasium env and an exported policy on one backend.

The backends (``neurodeploy.hardware.backends``: torch, onnx, emulator, lava,
loihi2-sim) are a registry of small classes, each declaring the bundle file it runs;
the runner looks one up by name and opens the bundle that holds that file (for a run
directory, the first of its bundles that does). Spiking backends run the host codec
(encoder, decoder) around the core; a Lava runtime is compiled and started once per
run. Every spiking step's spikes are counted per population (they drive the
synaptic-op and energy accounting).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurodeploy.envs import check_observation, make_env
from neurodeploy.errors import BundleError
from neurodeploy.export.bundle import open_policy
from neurodeploy.hardware.backends import REGISTRY, lookup
from neurodeploy.snn import SpikingActor

BACKENDS = tuple(REGISTRY)
MAX_EPISODES = 100_000
MAX_ENVS = 256


@dataclass
class RunResult:
    backend: str
    returns: list[float]
    lengths: list[int]
    latencies_ms: list[float]  # policy time per control step
    layer_names: list[str] = field(default_factory=list)
    spikes_per_step: list[float] = field(default_factory=list)  # mean spikes per layer per step
    layer_sizes: list[int] = field(default_factory=list)
    # Lava backends: actions whose Lava output spikes differed from the reference model's
    output_mismatches: int | None = None
    envs: int = 1  # environments stepped in lock-step; latencies are per batch of envs

    @property
    def control_steps_per_s(self) -> float:
        """Aggregate env steps per second of policy time (an idle slot's actions not counted)."""
        if self.envs == 1:
            return float(1e3 / np.mean(self.latencies_ms))
        return float(1e3 * sum(self.lengths) / np.sum(self.latencies_ms))

    def summary(self) -> dict:
        lat = np.asarray(self.latencies_ms)
        extra = (
            {} if self.output_mismatches is None else {"output_mismatches": self.output_mismatches}
        )
        return {
            "backend": self.backend,
            "episodes": len(self.returns),
            "return_mean": float(np.mean(self.returns)),
            "return_std": float(np.std(self.returns)),
            "returns": self.returns,
            "episode_lengths": self.lengths,
            "latency_ms_median": float(np.median(lat)),
            "latency_ms_p99": float(np.percentile(lat, 99)),
            "envs": self.envs,
            "control_steps_per_s": self.control_steps_per_s,
            "spikes_per_step": dict(zip(self.layer_names, self.spikes_per_step, strict=True)),
            **extra,
        }


def open_target(path: Path, needs: str | None = None):
    """A run directory, a policy file (policy.pt, best.pt) or a deploy bundle -> (actor,
    env id, bundle dir or None), verified before use (``export.bundle.open_policy``)."""
    return open_policy(path, needs)


class _Policy:
    """Maps one env's observation to an action on one backend; counts spikes.

    ``trains``: the last step's spike trains, [T, n] per population in ``names``.
    """

    def __init__(
        self, actor, backend: str, bundle: Path | None, path: Path | None = None, envs: int = 1
    ):
        kind = lookup(backend)
        kind.check(actor, bundle, path or bundle)
        self.impl = kind(actor, bundle, envs) if envs > 1 else kind(actor, bundle)
        self.actor, self.backend = actor, backend
        self.names = self.impl.names
        self.counts = np.zeros(len(self.names))
        self.trains: list[np.ndarray] = []
        self.steps = 0

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        self.steps += 1
        action = self.impl.act(np.asarray(obs, np.float32)[None])[0]
        if self.names:
            self.counts += self.impl.counts
            self.trains = [np.asarray(t)[:, 0] for t in self.impl.trains]
        return action

    def act_batch(self, obs: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Observations [N, obs] of N envs -> actions [N, act]; spikes are counted for the
        ``active`` rows only (an env whose episode has ended idles)."""
        actions = self.impl.act(np.asarray(obs, np.float32))
        self.steps += int(active.sum())
        if self.names:
            self.counts += self.impl.slot_counts()[active].sum(axis=0)
        return actions

    def reset(self) -> None:
        """A new episode: the actor's, the host encoder's and the core's state start at zero."""
        self.impl.reset()

    @property
    def output_mismatches(self) -> int | None:
        return getattr(self.impl, "output_mismatches", None)

    def close(self):
        self.impl.close()


def run_policy(
    path: Path,
    backend: str = "torch",
    episodes: int = 5,
    seed: int = 0,
    env_id: str | None = None,
    progress=None,
    observe=None,
    on_step=None,
    render_mode: str | None = None,
    max_steps: int | None = None,
    envs: int = 1,
) -> RunResult:
    """Run ``episodes`` episodes; ``observe(episode, obs)`` sees every observation.

    ``on_step(env, policy, episode, step, action, total)`` runs after every env step
    (``policy.trains``: that step's spike trains); ``max_steps`` ends an episode early.
    ``envs`` > 1: that many copies of the env in lock-step, one backend holding as many
    copies of the policy (:func:`_run_batched`); episode i is still seeded seed + i.
    """
    kind = lookup(backend)
    if not 1 <= episodes <= MAX_EPISODES:
        raise BundleError(f"--episodes must be 1 to {MAX_EPISODES}, not {episodes}")
    if not 1 <= envs <= MAX_ENVS:
        raise BundleError(f"--envs must be 1 to {MAX_ENVS}, not {envs}")
    if seed < 0:  # gymnasium's reset refuses a negative seed deep in the first episode
        raise BundleError(f"--seed must be 0 or more, not {seed}")
    if envs > 1 and (on_step is not None or render_mode is not None):
        raise BundleError("recording runs one environment; use --envs 1")
    actor, bundle_env, bundle = open_target(path, kind.needs)
    env_id = env_id or bundle_env
    if env_id != bundle_env and bundle_env:
        raise BundleError(f"{path} was trained on {bundle_env}, not {env_id}")
    env = make_env(env_id, render_mode=render_mode)
    if env.observation_space.shape[0] != actor.config.obs_dim:
        raise BundleError(
            f"{path} expects {actor.config.obs_dim} observations; {env_id} gives "
            f"{env.observation_space.shape[0]}"
        )
    if envs > 1:
        env.close()
        return _run_batched(
            actor, backend, bundle, Path(path), env_id, episodes, seed, envs,
            progress, observe, max_steps,
        )  # fmt: skip
    policy = _Policy(actor, backend, bundle, Path(path))
    returns, lengths, latencies = [], [], []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            policy.reset()
            total, steps, done = 0.0, 0, False
            while not done:
                check_observation(obs, env_id, steps)
                if observe is not None:
                    observe(episode, obs)
                start = time.perf_counter()
                action = policy(obs)
                latencies.append((time.perf_counter() - start) * 1e3)
                obs, reward, term, trunc, _ = env.step(np.asarray(action, np.float32))
                total, steps, done = total + float(reward), steps + 1, term or trunc
                if on_step is not None:
                    on_step(env, policy, episode, steps, action, total)
                done = done or (max_steps is not None and steps >= max_steps)
            returns.append(total)
            lengths.append(steps)
            if progress:
                progress(episode + 1, episodes)
    finally:
        policy.close()
        env.close()
    return _result(actor, policy, returns, lengths, latencies)


def _result(actor, policy, returns, lengths, latencies, envs: int = 1) -> RunResult:
    """The run's result: returns and lengths, and the policy's latencies and spike counts."""
    sizes = []
    if isinstance(actor, SpikingActor):
        sizes = [actor.layers[0].in_features] + [layer.out_features for layer in actor.layers]
    counts = list(policy.counts / max(policy.steps, 1))
    return RunResult(policy.backend, returns, lengths, latencies, policy.names, counts, sizes,
                     policy.output_mismatches, envs)  # fmt: skip


def _run_batched(
    actor, backend, bundle, path, env_id, episodes, seed, envs, progress, observe, max_steps
) -> RunResult:
    """N envs in lock-step (gymnasium's ``SyncVectorEnv``), one batch of N observations per
    policy call. Episodes run in batches of N: batch b holds episodes bN .. bN + N - 1 (the
    last batch may hold fewer), each env reset with seed + episode as a single run is, and
    the backend reset (every copy's state zero) at the start of the batch. An env whose
    episode has ended idles until the batch ends: the vector env resets it on its next step
    and its actions, rewards and spikes are not counted. The returns therefore equal N single
    runs' (the spiking backends are exact per row; torch and onnx up to float rounding of a
    batched matmul)."""
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    vec = SyncVectorEnv(
        [lambda: make_env(env_id) for _ in range(envs)], autoreset_mode=AutoresetMode.NEXT_STEP
    )
    policy = _Policy(actor, backend, bundle, path, envs)
    returns, lengths, latencies = [0.0] * episodes, [0] * episodes, []
    try:
        for first in range(0, episodes, envs):
            count = min(envs, episodes - first)
            obs, _ = vec.reset(seed=[seed + first + i for i in range(envs)])
            policy.reset()
            active = np.arange(envs) < count
            while active.any():
                for i in np.flatnonzero(active):
                    check_observation(obs[i], env_id, lengths[first + i])
                    if observe is not None:
                        observe(first + i, obs[i])
                start = time.perf_counter()
                actions = policy.act_batch(obs, active)
                latencies.append((time.perf_counter() - start) * 1e3)
                obs, reward, term, trunc, _ = vec.step(np.asarray(actions, np.float32))
                for i in np.flatnonzero(active):
                    returns[first + i] += float(reward[i])
                    lengths[first + i] += 1
                    done = term[i] or trunc[i]
                    if done or (max_steps is not None and lengths[first + i] >= max_steps):
                        active[i] = False
            if progress:
                progress(first + count, episodes)
    finally:
        policy.close()
        vec.close()
    return _result(actor, policy, returns, lengths, latencies, envs)
