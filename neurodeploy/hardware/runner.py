"""Closed-loop runner: a gymnasium env and an exported policy on one backend.

Backends: ``torch`` (the actor), ``onnx`` (onnxruntime), ``emulator`` (bit-accurate
numpy fixed point), ``lava`` (Lava ``floating_pt``) and ``loihi2-sim`` (Lava
``fixed_pt``). Spiking backends run the host codec (encoder, decoder) around the
core; the Lava runtime is compiled and started once per run. Every spiking step's
spikes are counted per layer (they drive the synaptic-op and energy accounting).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from neurodeploy.envs import check_observation, make_env
from neurodeploy.errors import BundleError
from neurodeploy.export import emulator, loihi2
from neurodeploy.export.bundle import open_policy
from neurodeploy.export.nir_graph import nir_to_layers, read_nir
from neurodeploy.snn import SpikingActor

BACKENDS = ("torch", "onnx", "emulator", "lava", "loihi2-sim")
MAX_EPISODES = 100_000
NEEDS = {
    "onnx": "policy.onnx",
    "emulator": "policy.nir",
    "lava": "policy.nir",
    "loihi2-sim": "policy.nir",
}


@dataclass
class RunResult:
    backend: str
    returns: list[float]
    lengths: list[int]
    latencies_ms: list[float]  # policy time per control step
    layer_names: list[str] = field(default_factory=list)
    spikes_per_step: list[float] = field(default_factory=list)  # mean spikes per layer per step
    layer_sizes: list[int] = field(default_factory=list)

    def summary(self) -> dict:
        lat = np.asarray(self.latencies_ms)
        return {
            "backend": self.backend,
            "episodes": len(self.returns),
            "return_mean": float(np.mean(self.returns)),
            "return_std": float(np.std(self.returns)),
            "returns": self.returns,
            "episode_lengths": self.lengths,
            "latency_ms_median": float(np.median(lat)),
            "latency_ms_p99": float(np.percentile(lat, 99)),
            "control_steps_per_s": float(1e3 / lat.mean()),
            "spikes_per_step": dict(zip(self.layer_names, self.spikes_per_step, strict=True)),
        }


def open_target(path: Path, needs: str | None = None):
    """A run directory, a policy file (policy.pt, best.pt) or a deploy bundle -> (actor,
    env id, bundle dir or None), verified before use (``export.bundle.open_policy``)."""
    return open_policy(path, needs)


class _Policy:
    """Maps an observation to an action on one backend; counts spikes."""

    def __init__(self, actor, backend: str, bundle: Path | None):
        self.actor, self.backend = actor, backend
        self.core = None
        if backend != "torch":
            need = NEEDS[backend]
            if bundle is None or not (bundle / need).exists():
                raise BundleError(
                    f"backend {backend!r} needs {need} in the bundle"
                    + (f" {bundle}" if bundle else "; export the run first")
                    + (" (export --target onnx)" if backend == "onnx" else "")
                )
        if backend != "torch" and backend != "onnx" and not isinstance(actor, SpikingActor):
            raise BundleError(f"backend {backend!r} needs a spiking actor; this one is an ANN")
        if backend == "onnx":
            import onnxruntime as ort

            try:
                self.session = ort.InferenceSession(str(bundle / "policy.onnx"))
            except Exception as exc:  # onnxruntime's own errors: one line, naming the file
                reason = str(exc).splitlines()[0][:200]
                raise BundleError(f"{bundle / 'policy.onnx'} cannot be loaded ({reason})") from None
        elif backend in ("emulator", "lava", "loihi2-sim"):
            hub = nir_to_layers(read_nir(bundle / "policy.nir"), str(bundle / "policy.nir"))
            T, stateful = actor.config.timesteps, actor.config.mode == "stateful"
            graded = actor.graded_input
            if backend == "emulator":
                self.core = emulator.Emulator(loihi2.quantize(hub, graded)[0], stateful)
            else:
                from neurodeploy.export.lava_graph import LavaNetwork
                from neurodeploy.hardware.lava_runtime import LavaCore

                net = (
                    LavaNetwork.from_fixed(loihi2.quantize(hub, graded)[0], T, stateful)
                    if backend == "loihi2-sim"
                    else LavaNetwork.from_float(hub, T, stateful, graded)
                )
                self.core = LavaCore(net)
        self.encoder_state = None  # the host encoder's potential (carried when stateful)
        spiking = isinstance(actor, SpikingActor) and backend != "onnx"
        self.names = ["encoder", *actor.layer_names] if spiking else []
        self.counts = np.zeros(len(self.names))
        self.trains: list[np.ndarray] = []  # last step's [T, n] per name (encoder: its input)
        self.steps = 0

    @torch.no_grad()
    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(obs, dtype=torch.float32)[None]
        self.steps += 1
        if self.backend == "torch":
            action = self.actor(x)[0].numpy()
            if self.names:
                self.counts += [float(self.actor.spike_counts[n].sum()) for n in self.names]
                self.trains = [self.actor.spike_trains[n][:, 0].numpy() for n in self.names]
            return action
        if self.backend == "onnx":
            return self.session.run(["action"], {"obs": x.numpy()})[0][0]
        frames, state = self.actor.core_input(x[None], self.encoder_state)
        if self.actor.config.mode == "stateful":
            self.encoder_state = state
        # [T, 1, n_in]: spikes, or graded values (fixed point: the chip's integer payloads)
        enc = frames.numpy()
        if self.backend != "lava":
            enc = loihi2.chip_input(enc, self.actor.graded_input)
        if self.backend == "emulator":
            trains = [t[:, 0] for t in self.core.step(enc)]
        else:
            trains = self.core.step(enc[:, 0])
        self.counts += [float(np.count_nonzero(enc))] + [float(t.sum()) for t in trains]
        self.trains = [frames.numpy()[:, 0], *(np.asarray(t) for t in trains)]
        return self.actor.decode(torch.as_tensor(trains[-1])[:, None])[0, 0].numpy()

    def reset(self) -> None:
        """A new episode: the actor's, the host encoder's and the core's state start at zero."""
        self.actor.reset()
        self.encoder_state = None
        if self.core is not None:
            self.core.reset()

    def close(self):
        if self.core is not None:
            self.core.close()


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
) -> RunResult:
    """Run ``episodes`` episodes; ``observe(episode, obs)`` sees every observation.

    ``on_step(env, policy, episode, step, action, total)`` runs after every env step
    (``policy.trains``: that step's spike trains); ``max_steps`` ends an episode early.
    """
    if backend not in BACKENDS:
        raise BundleError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if not 1 <= episodes <= MAX_EPISODES:
        raise BundleError(f"--episodes must be 1 to {MAX_EPISODES}, not {episodes}")
    actor, bundle_env, bundle = open_target(path, NEEDS.get(backend))
    env_id = env_id or bundle_env
    if env_id != bundle_env and bundle_env:
        raise BundleError(f"{path} was trained on {bundle_env}, not {env_id}")
    env = make_env(env_id, render_mode=render_mode)
    if env.observation_space.shape[0] != actor.config.obs_dim:
        raise BundleError(
            f"{path} expects {actor.config.obs_dim} observations; {env_id} gives "
            f"{env.observation_space.shape[0]}"
        )
    policy = _Policy(actor, backend, bundle)
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
    sizes = []
    if isinstance(actor, SpikingActor):
        sizes = [actor.layers[0].in_features] + [layer.out_features for layer in actor.layers]
    return RunResult(
        backend,
        returns,
        lengths,
        latencies,
        policy.names,
        list(policy.counts / max(policy.steps, 1)),
        sizes,
    )
