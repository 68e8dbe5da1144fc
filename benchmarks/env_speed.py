"""QuadHover-v0 simulation speed through ``gymnasium.make`` (default wrappers included).

python benchmarks/env_speed.py --steps 100000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

import neurodeploy.envs  # noqa: E402, F401  (registers the environment)


def measure(steps: int, **kwargs) -> float:
    env = gym.make("neurodeploy/QuadHover-v0", **kwargs)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (1000, 4)).astype(np.float32)
    start = time.perf_counter()
    for i in range(steps):
        _, _, terminated, truncated, _ = env.step(actions[i % 1000])
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100_000)
    args = parser.parse_args()
    rows = [
        ("defaults", {}),
        ("obs_noise=0.01, action_delay=2", {"obs_noise": 0.01, "action_delay": 2}),
    ]
    lines = ["| configuration | steps/s (random actions, resets included) |", "|---|---|"]
    for name, kwargs in rows:
        lines.append(f"| {name} | {measure(args.steps, **kwargs):,.0f} |")
    body = f"{args.steps:,} steps per row; goal: at least 10,000 steps/s.\n\n" + "\n".join(lines)
    print(body)
    write_section("env-speed", "QuadHover-v0 speed (issue 7)", body)


if __name__ == "__main__":
    main()
