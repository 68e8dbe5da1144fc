"""Which trained actors can still learn: the share of output units a gradient reaches, per
committed trial.

With the ``rect`` surrogate (Xu et al., Proxy Target, NeurIPS 2025, as PopSAN) a spike's
gradient is non-zero only while the membrane is within 0.5 of the threshold. An output
neuron whose membrane stays outside that window on every state (always or never firing)
passes no gradient to any weight below it. When that holds for every output neuron, the
actor's action no longer depends on the observation and only the decoder still learns
(docs/training.md, "A dead output layer"). An ANN actor's output unit is dead the same way
when its tanh is saturated to exactly +-1 in float32 on every state. Training logs the same
share on its batches as ``output_grad``.

For each trial this rolls out the policy (its own actions) and uniform random actions,
``--states`` states each, and reports the share of output units whose incoming weights get
any gradient from the mean action, and the action's std over those states.

    python benchmarks/output_gradient.py results/idp results/hopper results/pendulum
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

from neurodeploy.envs import make_env  # noqa: E402
from neurodeploy.export.bundle import load_policy  # noqa: E402
from neurodeploy.train.td3 import decoded_gradient, decoded_weight  # noqa: E402


def states(actor, env_id: str, n: int, seed: int) -> torch.Tensor:
    """n states from the policy's own episodes, then n from uniform random actions."""
    env = make_env(env_id, seed)
    env.action_space.seed(seed)
    out = []
    for use_policy in (True, False):
        obs, _ = env.reset(seed=seed)
        for _ in range(n):
            out.append(obs)
            if use_policy:
                with torch.no_grad():
                    action = actor(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
            else:
                action = env.action_space.sample()
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                obs, _ = env.reset()
    env.close()
    return torch.as_tensor(np.array(out), dtype=torch.float32)


def measure(policy: Path, n: int, seed: int) -> dict:
    actor, env_id = load_policy(policy)
    if getattr(actor.config, "mode", "reset") == "stateful":
        sys.exit(f"error: {policy} is stateful: its output depends on its history, and this "
                 "measures actors reset at every action")  # fmt: skip
    obs = states(actor, env_id, n, seed)
    actor.zero_grad(set_to_none=True)
    actions = actor(obs)
    actions.mean().backward()
    alive = decoded_gradient(decoded_weight(actor))["output_grad"]
    return {"alive": alive, "std": actions.detach().std(0).mean().item(), "env": env_id}


def trials(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("policy.pt"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("roots", nargs="+", type=Path, help="results/<env> folders")
    parser.add_argument("--states", type=int, default=1000, help="per source (policy, random)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = [
        f"Each committed trial's final policy on {2 * args.states} states ({args.states} "
        "from its own deterministic episodes, then as many from uniform random actions; env "
        f"seed {args.seed}). *Output units reached*: the share of output units (a spiking "
        "actor's output population, an ANN's pre-tanh outputs) whose incoming weights get a "
        "non-zero gradient from the mean action (0: no gradient reaches any layer below). "
        "*Action std*: over those states, mean over action dimensions.\n",
        "| trial | output units reached | action std |",
        "|---|---|---|",
    ]
    for root in args.roots:
        for trial in trials(root):
            r = measure(trial, args.states, args.seed)
            name = trial.relative_to(root.parent).as_posix()
            print(name, r)
            lines.append(f"| {name} | {r['alive']:.2f} | {r['std']:.3g} |")
    write_section("output_gradient", "Output units a gradient reaches (issue 15)", "\n".join(lines))


if __name__ == "__main__":
    main()
