"""Where a deployed policy's return parts from torch's: the same episodes on both, open-loop
error and an action-noise control.

Exports the run directory RUN to loihi2 (RUN/bundle-loihi2, as `neurodeploy export` writes it;
kept, and refused once policy.pt changes) and measures, on episodes that start from the same
states (env seeds 0..N-1):

1. closed loop, torch (float) against the emulator (Lava ``fixed_pt`` spike for spike, which
   the export checks and loihi2-sim enforces on every action): returns, episode lengths, and
   the difference emulator - torch per seed with its standard error. The two trajectories part
   after the first differing action, so a seed fixes the initial state only; with diverging
   episodes the pairing removes little of the spread, and a difference of a few percent takes
   many episodes to resolve.
2. open loop along torch's own trajectories: the emulator's action on every observation torch
   visited, against torch's action there: the per-step quantization error on the states the
   policy actually meets (the bundle's fidelity.json measures it on the export's check
   trajectory). The policy must not be stateful: every action starts from zero state.
3. a control: torch with independent Gaussian action noise of that error's RMS (sigma before
   clipping to the action range; the RMS actually applied is reported). It shows what an
   error of that size costs when it is unstructured; the fixed point's error is a
   deterministic function of the state, and need not cost the same.

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
from neurodeploy.errors import NeurodeployError  # noqa: E402
from neurodeploy.export.bundle import export_bundle, open_policy  # noqa: E402
from neurodeploy.hardware.backends import lookup  # noqa: E402
from neurodeploy.hardware.runner import MAX_ENVS, run_policy  # noqa: E402


def paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Mean of b - a, its standard error, and the correlation of a and b over the seeds."""
    d = b - a
    return (
        float(d.mean()),
        float(d.std(ddof=1) / np.sqrt(len(d))),
        float(np.corrcoef(a, b)[0, 1]),
    )


def open_loop(actor, bundle: Path, observations: np.ndarray) -> dict:
    """torch's and the emulator's actions and output spikes on the same observations, in one
    batch each (every act starts from zero state)."""
    actions, spikes = {}, {}
    for name in ("torch", "emulator"):
        backend = lookup(name)(actor, bundle, len(observations))
        backend.reset()
        actions[name] = backend.act(observations.astype(np.float32))
        spikes[name] = np.asarray(backend.trains[-1])  # the output layer's, [T, B, n]
    err = actions["emulator"] - actions["torch"]
    same = np.all(spikes["emulator"] == spikes["torch"], axis=(0, 2))
    return {
        "steps": len(observations),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "max": float(np.abs(err).max()),
        "over_0.1": float(np.mean(np.abs(err).max(axis=1) > 0.1)),
        "same_output_spikes": float(np.mean(same)),
    }


def noisy_torch(actor, env_id: str, episodes: int, sigma: float, seed: int):
    """torch's returns and episode lengths with N(0, sigma) added to every action (clipped
    to the action range), and the RMS of the noise after clipping."""
    backend = lookup("torch")(actor, None)
    rng = np.random.default_rng(seed)
    env = make_env(env_id)
    low, high = env.action_space.low, env.action_space.high
    returns, lengths, applied = [], [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        backend.reset()
        total, steps, done = 0.0, 0, False
        while not done:
            clean = backend.act(np.asarray(obs, np.float32)[None])[0]
            action = np.clip(clean + rng.normal(0.0, sigma, clean.shape), low, high)
            applied.append(action - clean)
            obs, reward, term, trunc, _ = env.step(action.astype(np.float32))
            total, steps, done = total + float(reward), steps + 1, term or trunc
        returns.append(total)
        lengths.append(steps)
    env.close()
    rms = float(np.sqrt(np.mean(np.square(applied))))
    return np.asarray(returns), np.asarray(lengths), rms


def loihi2_bundle(run: Path):
    """(actor, env id, bundle): the run's bundle with policy.net, exported when it has none
    (``open_policy`` verifies it and refuses one exported from an older policy.pt)."""
    actor, env_id, bundle = open_policy(run, "policy.net")
    if bundle is None:
        export_bundle(run, "loihi2")
        actor, env_id, bundle = open_policy(run, "policy.net")
    return actor, env_id, bundle


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", type=Path, help="run directory or results/<env>/<group>/seedN")
    parser.add_argument("--episodes", type=int, default=30)
    args = parser.parse_args()
    n = args.episodes
    if n < 3:
        sys.exit("error: --episodes must be 3 or more (a standard error needs a spread)")
    if not args.run.is_dir():
        sys.exit(f"error: {args.run} is not a run directory")
    name = "_".join(args.run.resolve().parts[-3:])  # env, group, seed of a results trial
    try:
        actor, env_id, bundle = loihi2_bundle(args.run)
    except NeurodeployError as exc:  # e.g. a bundle older than policy.pt: one line
        sys.exit(f"error: {exc}")
    if actor.config.mode == "stateful":
        sys.exit("error: a stateful policy carries state from action to action; the open-loop "
                 "comparison here starts every action from zero state")  # fmt: skip
    seen: dict[int, list[np.ndarray]] = {}

    def observe(episode, obs):
        seen.setdefault(episode, []).append(obs)

    envs = min(n, MAX_ENVS)
    runs = {
        "torch": run_policy(bundle, "torch", n, envs=envs, observe=observe),
        "emulator": run_policy(bundle, "emulator", n, envs=envs),
    }
    ret = {k: np.asarray(r.returns) for k, r in runs.items()}
    lengths = {k: np.asarray(r.lengths) for k, r in runs.items()}
    loop = open_loop(actor, bundle, np.concatenate([np.stack(seen[e]) for e in sorted(seen)]))
    noisy = "torch + noise"
    ret[noisy], lengths[noisy], applied = noisy_torch(actor, env_id, n, loop["rmse"], seed=0)

    checked = json.loads((bundle / "fidelity.json").read_text())
    fidelity = checked["float_vs_fixed"]
    rows = [
        "| policy | return mean ± std over seeds | difference to torch, mean ± s.e. |"
        " correlation with torch over seeds | seeds better than torch | mean episode length |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in ret.items():
        if label == "torch":
            cells = "- | - | -"
        else:
            diff, se, corr = paired(ret["torch"], r)
            cells = f"{diff:+.1f} ± {se:.1f} | {corr:+.2f} | {int(np.sum(r > ret['torch']))}/{n}"
        rows.append(
            f"| {label} | {r.mean():.1f} ± {r.std(ddof=1):.1f} | {cells} |"
            f" {lengths[label].mean():.0f} |"
        )
    body = (
        f"Policy `{args.run}` ({env_id}), exported to loihi2 (bundle `{bundle}`); {n} episodes "
        f"from env seeds 0..{n - 1} on every row (the same initial states; the trajectories "
        "part after the first differing action). The emulator equals Lava `fixed_pt` spike for "
        "spike (the export checks it; loihi2-sim refuses any action where they differ). "
        f"torch + noise: torch's action plus independent N(0, {loop['rmse']:.3f}) per dimension "
        f"(the open-loop RMSE below), clipped to the action range: RMS {applied:.3f} applied. "
        "Standard deviations with ddof 1.\n\n" + "\n".join(rows) + "\n\n"
        f"Open loop on the {loop['steps']:,} observations torch visited (one batch each): "
        f"emulator vs torch action RMSE {loop['rmse']:.3f} (max {loop['max']:.3f}); "
        f"{loop['over_0.1'] * 100:.1f} % of actions off by more than 0.1 in some dimension; "
        f"{loop['same_output_spikes'] * 100:.1f} % with every output spike the same. On the "
        f"export's {checked['observations']} check observations (fidelity.json): RMSE "
        f"{fidelity['action_rmse']:.3f}, max {fidelity['action_max_error']:.3f}.\n\n"
        f"The first 3 episodes alone (bench-energy's default `--episodes 3`, seeds 0-2): torch "
        f"{ret['torch'][:3].mean():.1f}, emulator {ret['emulator'][:3].mean():.1f}."
    )
    print(body)
    write_section(f"fixed-point-gap_{name}", f"Deployed against torch in closed loop: {name}", body)


if __name__ == "__main__":
    main()
