"""Where a deployed policy's return parts from torch's: paired episodes, open-loop error and
an action-noise control.

Exports RUN to loihi2 (the bundle is kept in --bundle) and measures, on the same episodes
(env seeds 0..N-1):

1. closed loop, torch (float) against the emulator (Lava ``fixed_pt`` bit for bit, so also
   loihi2-sim): returns, episode lengths, and the paired difference emulator - torch with its
   standard error. A difference within ~2 standard errors is the episodes' spread, not a bias.
2. open loop along torch's own trajectories: the emulator's action on every observation torch
   visited, against torch's action there. This is the per-step quantization error on the
   states the policy actually meets (the bundle's fidelity.json measures it on the export's
   check trajectory).
3. a control: torch with Gaussian action noise as large as that per-step error (same RMS,
   clipped to the action range). If float + noise parts from float as much as the fixed point
   does, the closed loop's sensitivity to a small per-step error explains the gap; a
   quantization bias would need more.

    python benchmarks/fixed_point_gap.py "results/hopper/algo=pt-td3,neuron=lif/seed0" \\
        --episodes 30
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

from neurodeploy.envs import make_env  # noqa: E402
from neurodeploy.export.bundle import export_bundle, open_policy  # noqa: E402
from neurodeploy.hardware.backends import lookup  # noqa: E402
from neurodeploy.hardware.runner import run_policy  # noqa: E402


def paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean of b - a and its standard error."""
    d = b - a
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def open_loop(bundle: Path, observations: np.ndarray) -> dict:
    """torch's and the emulator's actions on the same observations (each act starts from zero
    state: the policy is not stateful)."""
    actor, _, _ = open_policy(bundle, "policy.net")
    actions = {}
    for name in ("torch", "emulator"):
        backend = lookup(name)(actor, bundle, len(observations))
        backend.reset()
        actions[name] = backend.act(observations.astype(np.float32))
    err = actions["emulator"] - actions["torch"]
    return {
        "steps": len(observations),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "max": float(np.abs(err).max()),
        "over_0.1": float(np.mean(np.abs(err).max(axis=1) > 0.1)),
        "exact": float(np.mean(np.all(err == 0, axis=1))),
    }


def noisy_torch(bundle: Path, env_id: str, episodes: int, sigma: float, seed: int):
    """torch's returns and episode lengths with N(0, sigma) added to every action (clipped
    to the action range)."""
    actor, _, _ = open_policy(bundle, None)
    backend = lookup("torch")(actor, bundle)
    rng = np.random.default_rng(seed)
    env = make_env(env_id)
    low, high = env.action_space.low, env.action_space.high
    returns, lengths = [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        backend.reset()
        total, steps, done = 0.0, 0, False
        while not done:
            action = backend.act(np.asarray(obs, np.float32)[None])[0]
            action = np.clip(action + rng.normal(0.0, sigma, action.shape), low, high)
            obs, reward, term, trunc, _ = env.step(action.astype(np.float32))
            total, steps, done = total + float(reward), steps + 1, term or trunc
        returns.append(total)
        lengths.append(steps)
    env.close()
    return np.asarray(returns), np.asarray(lengths)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", type=Path, help="run directory or results/<env>/<group>/seedN")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--bundle", type=Path, default=None, help="default runs/fixed-point-gap")
    args = parser.parse_args()
    bundle = args.bundle or Path("runs/fixed-point-gap") / args.run.as_posix().replace("/", "_")
    if not (bundle / "manifest.json").exists():
        export_bundle(args.run, "loihi2", bundle)
    _, env_id, _ = open_policy(bundle)
    seen: dict[int, list[np.ndarray]] = {}
    n = args.episodes

    def observe(episode, obs):
        seen.setdefault(episode, []).append(obs)

    runs = {
        "torch": run_policy(bundle, "torch", n, envs=n, observe=observe),
        "emulator": run_policy(bundle, "emulator", n, envs=n),
    }
    ret = {k: np.asarray(r.returns) for k, r in runs.items()}
    lengths = {k: np.asarray(r.lengths) for k, r in runs.items()}
    loop = open_loop(bundle, np.concatenate([np.stack(seen[e]) for e in sorted(seen)]))
    noisy = "torch + noise"
    ret[noisy], lengths[noisy] = noisy_torch(bundle, env_id, n, loop["rmse"], seed=0)

    checked = json.loads((bundle / "fidelity.json").read_text())
    fidelity = checked["float_vs_fixed"]
    rows = [
        "| policy | return mean ± std | paired difference to torch (± s.e.) | wins over torch |"
        " mean episode length |",
        "|---|---|---|---|---|",
    ]
    for name, r in ret.items():
        diff, se = paired(ret["torch"], r) if name != "torch" else (0.0, 0.0)
        wins = "-" if name == "torch" else f"{int(np.sum(r > ret['torch']))}/{n}"
        rows.append(
            f"| {name} | {r.mean():.1f} ± {r.std():.1f} | {diff:+.1f} ± {se:.1f} | {wins} |"
            f" {lengths[name].mean():.0f} |"
        )
    body = (
        f"Policy `{args.run}` ({env_id}), exported to loihi2 (bundle `{bundle}`); "
        f"{n} episodes, env seeds 0..{n - 1}, the same on every row. The emulator is Lava "
        "`fixed_pt` bit for bit (loihi2-sim gives the same actions). torch + noise: torch's "
        f"action plus N(0, {loop['rmse']:.3f}) per dimension, clipped (the open-loop RMSE "
        "below).\n\n" + "\n".join(rows) + "\n\n"
        f"Open loop on the {loop['steps']:,} observations torch visited: emulator vs torch "
        f"action RMSE {loop['rmse']:.3f} (max {loop['max']:.3f}); {loop['over_0.1'] * 100:.1f} % "
        f"of actions off by more than 0.1 in some dimension, {loop['exact'] * 100:.1f} % exact. "
        f"On the export's {checked['observations']} check observations "
        f"(fidelity.json): RMSE {fidelity['action_rmse']:.3f}, max "
        f"{fidelity['action_max_error']:.3f}.\n\n"
        f"The first 3 episodes alone (bench-energy's default `--episodes 3`, seeds 0-2): torch "
        f"{ret['torch'][:3].mean():.1f}, emulator {ret['emulator'][:3].mean():.1f}."
    )
    print(body)
    key = "fixed-point-gap_" + args.run.parts[1] if len(args.run.parts) > 1 else "fixed-point-gap"
    write_section(key, f"Deployed against torch in closed loop: {env_id}", body)


if __name__ == "__main__":
    main()
