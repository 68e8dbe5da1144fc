"""`neurodeploy bench-energy`: count operations in closed loop, then energy per profile."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from neurodeploy.errors import BundleError, MismatchWarning
from neurodeploy.export import emulator
from neurodeploy.export.bundle import written_with_mismatches
from neurodeploy.export.loihi2 import chip_input
from neurodeploy.export.netx import read_netx
from neurodeploy.hardware import energy as E
from neurodeploy.hardware import workload
from neurodeploy.hardware.backends import bundle_schedule, lookup, shipped
from neurodeploy.hardware.runner import RunResult, open_target, run_policy
from neurodeploy.snn import SpikingActor
from neurodeploy.snn.sops import fanout

DEFAULT_PROFILES = ("loihi", "loihi2", "paper", "cmos45nm")
LATENCY_BACKENDS = ("torch", "emulator", "loihi2-sim")


def bench_energy(
    path: Path,
    hardware=DEFAULT_PROFILES,
    episodes: int = 3,
    seed: int = 0,
    out: Path | None = None,
    latency_episodes: int = 1,
) -> dict:
    profiles = E.profiles_used(list(hardware))  # an unknown profile fails before any run
    with warnings.catch_warnings():  # a bundle written with --allow-mismatch: refused below
        warnings.simplefilter("ignore", MismatchWarning)
        actor, env_id, bundle = open_target(Path(path), "policy.net")
    if not isinstance(actor, SpikingActor):
        raise BundleError(f"{path}: bench-energy needs a spiking actor")
    if bundle is None or not (bundle / "policy.net").exists():
        raise BundleError(
            f"{path}: no exported bundle with policy.net; run "
            "`neurodeploy export RUN --target loihi2` first"
        )
    failed = written_with_mismatches(bundle)
    if failed:  # the count runs on the emulator as a stand-in for Lava: it must be the chip's
        raise BundleError(
            f"{bundle} was exported with --allow-mismatch ({'; '.join(failed)}): its counts "
            "would not be the chip's; export it again without mismatches"
        )
    # What ships: the schedule the manifest records, the weights and graded input of policy.net
    schedule = bundle_schedule(bundle)
    fixed = read_netx(shipped(bundle, "policy.net"), int(schedule["input_message_bits"]))
    T = int(schedule["timesteps_per_action"])
    lava_steps = int(schedule["lava_steps_per_action"])
    # spikes identical to Lava fixed_pt
    counted, ops, steps, starts = closed_loop_ops(
        bundle, actor, "emulator", [f.weight for f in fixed], lava_steps, episodes, seed
    )
    stateful = actor.config.mode == "stateful"
    # the reset schedule's empty steps, which the emulator's windows skip (stateful: none)
    frames = [] if stateful else [s[0] for s in steps]
    ops.update(outside_windows(fixed, frames, lava_steps - T))
    macs = E.ann_macs(actor.config.obs_dim, actor.config.act_dim)
    report = {
        "policy": str(path),
        "env": env_id,
        "method": f"{actor.config.neuron.model} SNN, {actor.config.mode}, T={T}",
        "episodes": episodes,
        "seed": seed,  # episode i starts from env.reset(seed=seed + i)
        "latency_episodes": latency_episodes,  # simulation_latency's episodes, same seeds
        "counted_on": "emulator",
        "return_mean": counted.summary()["return_mean"],
        "ops": ops,
        "ann_macs": macs,
        "lava_steps_per_action": lava_steps,
        "firing_rates": _rates(counted, T),
        # the same control steps' chip input, through NeuroBench's own hooks and metrics
        "neurobench": workload.neurobench_metrics(
            fixed, np.stack([s[0] for s in steps]), stateful, starts
        ),
        "profiles": {},
        "simulation_latency": {},
    }
    for profile in profiles:
        row = E.energy(profile, ops, macs, lava_steps)
        row["citations"] = E.citations(profile)
        row["ann_platform"], row["assumptions"] = profile.ann_platform, profile.assumptions
        report["profiles"][profile.name] = row
    for backend in LATENCY_BACKENDS:
        result = run_policy(bundle, backend, latency_episodes, seed).summary()
        report["simulation_latency"][backend] = {
            k: result[k]
            for k in ("latency_ms_median", "latency_ms_p99", "control_steps_per_s", "return_mean")
        }
    E.write_report(Path(out) if out else bundle, report)
    return report


def outside_windows(fixed, frames_per_step: list[np.ndarray], empty: int) -> dict:
    """Per control step, the spikes the layers fire in the ``empty`` steps after their
    windows (:func:`emulator.empty_steps`) and the SOPs they cost (each spike times its
    neuron's fan-out into the next layer; the output layer's spikes leave the chip)."""
    fanouts = [fanout(f.weight).numpy() for f in fixed[1:]]
    sops = spikes = 0.0
    for frames in frames_per_step:  # one control step's [T, n_in] (a batch of one)
        frames = np.asarray(frames).reshape(len(frames), -1, fixed[0].weight.shape[1])
        trains = [t != 0 for t in emulator.empty_steps(fixed, frames, empty)]
        spikes += sum(float(t.sum()) for t in trains)
        sops += sum(float(t.sum(axis=(0, 1)) @ f) for t, f in zip(trains, fanouts, strict=False))
    n = max(len(frames_per_step), 1)
    return {"sops_outside_windows": sops / n, "spiking_outside_windows": spikes / n}


class ClosedLoopOps(NamedTuple):
    """What :func:`closed_loop_ops` counted: the run, its operations per control step, and
    the kept trains (per control step: the core's input frames, each hidden layer's spikes)
    with the control step each episode began at."""

    run: RunResult
    ops: dict
    steps: list[list[np.ndarray]]
    starts: list[int]


def closed_loop_ops(
    path: Path,
    actor: SpikingActor,
    backend: str,
    weights: list[np.ndarray],
    lava_steps: int,
    episodes: int,
    seed: int,
    observe=None,
) -> ClosedLoopOps:
    """Run ``path``'s policy on ``backend`` in closed loop (episode i seeded seed + i) and count
    its operations per control step, as ``bench-energy`` does: every control step's spike
    trains are kept, and each layer's SOPs are its input spikes times their neurons' own
    fan-out in ``weights`` (``neurodeploy/snn/sops.py``), averaged over the control steps.
    A fixed-point backend's input frames are counted as the chip receives them (graded
    payloads that round to zero are not events). ``observe(episode, obs)`` sees every
    observation."""
    chip = getattr(lookup(backend), "fixed", False)
    steps: list[list[np.ndarray]] = []  # per control step: input frames, each layer's spikes
    starts: list[int] = []  # the control step each episode began with

    def keep(env, policy, episode, step, action, total):
        if step == 1:
            starts.append(len(steps))
        frames = policy.trains[0]
        frames = chip_input(frames, actor.graded_input) if chip else np.asarray(frames)
        steps.append([frames, *(np.asarray(t, np.int8) for t in policy.trains[1:-1])])

    counted = run_policy(path, backend, episodes, seed, observe=observe, on_step=keep)
    inputs = _synapse_inputs(steps, starts, actor.config.mode == "stateful")
    exact = [s / len(steps) for s in workload.synaptic_events(inputs, weights)]
    ops = E.count_ops(counted.spikes_per_step, counted.layer_sizes, weights, lava_steps, exact)
    return ClosedLoopOps(counted, ops, steps, starts)


def _synapse_inputs(steps, starts, stateful: bool) -> list[np.ndarray]:
    """What each layer's synapses received over the run, [steps * T, n] per layer. Stateful:
    Lava's Dense delays every input one step, zero at an episode's start (the emulator's
    ``timing.delayed``), so an episode's last step never reaches the next layer."""
    inputs = []
    for i in range(len(steps[0])):
        episodes = []
        for begin, end in zip(starts, [*starts[1:], len(steps)], strict=True):
            trains = np.concatenate([s[i] for s in steps[begin:end]])
            if stateful:
                trains = np.concatenate([np.zeros_like(trains[:1]), trains[:-1]])
            episodes.append(trains)
        inputs.append(np.concatenate(episodes))
    return inputs


def _rates(counted, timesteps: int) -> dict[str, float]:
    """Spikes per neuron per timestep, per population."""
    pairs = zip(counted.layer_names, counted.spikes_per_step, counted.layer_sizes, strict=True)
    return {name: spikes / (size * timesteps) for name, spikes, size in pairs}
