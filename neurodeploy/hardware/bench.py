"""`neurodeploy bench-energy`: count operations in closed loop, then energy per profile."""

from __future__ import annotations

from pathlib import Path

from neurodeploy.errors import BundleError
from neurodeploy.export.netx import read_netx
from neurodeploy.hardware import energy as E
from neurodeploy.hardware.backends import bundle_schedule, shipped
from neurodeploy.hardware.runner import open_target, run_policy
from neurodeploy.snn import SpikingActor

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
    actor, env_id, bundle = open_target(Path(path), "policy.net")
    if not isinstance(actor, SpikingActor):
        raise BundleError(f"{path}: bench-energy needs a spiking actor")
    if bundle is None or not (bundle / "policy.net").exists():
        raise BundleError(
            f"{path}: no exported bundle with policy.net; run "
            "`neurodeploy export RUN --target loihi2` first"
        )
    # What ships: the schedule the manifest records, the weights and graded input of policy.net
    schedule = bundle_schedule(bundle)
    fixed = read_netx(shipped(bundle, "policy.net"), int(schedule["input_message_bits"]))
    T = int(schedule["timesteps_per_action"])
    lava_steps = int(schedule["lava_steps_per_action"])
    counted = run_policy(bundle, "emulator", episodes, seed)  # spikes identical to Lava fixed_pt
    ops = E.count_ops(
        counted.spikes_per_step, counted.layer_sizes, [f.weight for f in fixed], lava_steps
    )
    macs = E.ann_macs(actor.config.obs_dim, actor.config.act_dim)
    report = {
        "policy": str(path),
        "env": env_id,
        "method": f"{actor.config.neuron.model} SNN, {actor.config.mode}, T={T}",
        "episodes": episodes,
        "counted_on": "emulator",
        "return_mean": counted.summary()["return_mean"],
        "ops": ops,
        "ann_macs": macs,
        "lava_steps_per_action": lava_steps,
        "firing_rates": _rates(counted, T),
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


def _rates(counted, timesteps: int) -> dict[str, float]:
    """Spikes per neuron per timestep, per population."""
    pairs = zip(counted.layer_names, counted.spikes_per_step, counted.layer_sizes, strict=True)
    return {name: spikes / (size * timesteps) for name, spikes, size in pairs}
