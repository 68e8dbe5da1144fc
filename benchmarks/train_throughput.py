"""Training throughput of PT-LIF on Hopper-v4 against the reference implementation.

Paper settings (K=3, batch 256, proxy 512-512, lr 1e-3). Both agents first fill
their replay buffer with random actions (the random-start phase, not timed), run
WARMUP training steps untimed (torch.compile compiles there), then time full training
steps (act + env step + store + one update) for --steps steps.
The reference runs its own PT_TD3.train and ReplayBuffer, imported from the
checkout given on the command line, in the same process.

    python benchmarks/train_throughput.py --reference /path/to/Proxy-Target-with-PLIF
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

from neurodeploy.envs import make_env  # noqa: E402
from neurodeploy.snn import kernels  # noqa: E402
from neurodeploy.train.config import TrainConfig  # noqa: E402
from neurodeploy.train.loop import Agent  # noqa: E402

ENV = "Hopper-v4"
WARMUP = 30


def ours_rate(random_steps: int, steps: int) -> float:
    cfg = TrainConfig(env=ENV, algo="pt-td3", neuron="lif")
    env = make_env(ENV, 0)
    agent = Agent.build(cfg, env)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    half = (agent.action_high - agent.action_low) / 2
    start = None
    for t in range(random_steps + WARMUP + steps):
        if t == random_steps + WARMUP:
            start = time.perf_counter()
        if t < random_steps:
            action = rng.uniform(agent.action_low, agent.action_high).astype(np.float32)
        else:
            with torch.no_grad():
                action = agent.actor(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
            action = np.clip(
                action + rng.normal(0, 0.1 * half), agent.action_low, agent.action_high
            )
        nxt, r, term, trunc, _ = env.step(action)
        agent.buffer.add(obs, action, r, nxt, term)
        obs = nxt
        if t >= random_steps:
            agent.td3.update(lambda: agent.buffer.sample(256, rng))
        if term or trunc:
            obs, _ = env.reset()
    return steps / (time.perf_counter() - start)


def reference_rate(path: str, random_steps: int, steps: int) -> float:
    sys.path.insert(0, path)
    import utils  # the reference's ReplayBuffer
    from actor_critic import PT_TD3

    env = make_env(ENV, 0)
    np.random.seed(0)
    torch.manual_seed(0)
    policy = PT_TD3(state_dim=11, action_dim=3, max_action=1.0, spiking_neurons="LIF",
                    hidden_sizes=[512, 512], proxy_lr=1e-3, proxy_iters=3)  # fmt: skip
    buffer = utils.ReplayBuffer(11, 3)
    obs, _ = env.reset(seed=0)
    start = None
    for t in range(random_steps + WARMUP + steps):
        if t == random_steps + WARMUP:
            start = time.perf_counter()
        if t < random_steps:
            action = env.action_space.sample()
        else:
            action = (policy.select_action(np.array(obs)) + np.random.normal(0, 0.1, size=3)).clip(
                -1, 1
            )
        nxt, r, term, trunc, _ = env.step(action)
        buffer.add(obs, action, nxt, r, float(term))
        obs = nxt
        if t >= random_steps:
            policy.train(buffer, 256)
        if term or trunc:
            obs, _ = env.reset()
    return steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reference", required=True, help="checkout of Proxy-Target-with-PLIF")
    parser.add_argument("--random-steps", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    rates = {"reference": reference_rate(args.reference, args.random_steps, args.steps)}
    kernels.set_compile(False)
    rates["eager"] = ours_rate(args.random_steps, args.steps)
    kernels.set_compile(True)
    rates["compiled"] = ours_rate(args.random_steps, args.steps)
    ref = rates["reference"]
    body = (
        f"PT-LIF on {ENV}, paper settings (K=3, batch 256, proxy 512-512), {args.steps} timed "
        f"training steps after {args.random_steps} random-start and {WARMUP} warm-up steps "
        "(not timed). "
        "Goal: 5x the reference.\n\n"
        "| implementation | env steps/s | vs reference |\n|---|---|---|\n"
        f"| reference (8d1635f) | {ref:.1f} | 1.00x |\n"
        f"| neurodeploy, eager | {rates['eager']:.1f} | {rates['eager'] / ref:.2f}x |\n"
        f"| neurodeploy, torch.compile kernels | {rates['compiled']:.1f} | "
        f"{rates['compiled'] / ref:.2f}x |\n"
    )
    print(body)
    write_section("train_throughput", "Training throughput (issue 4)", body)


if __name__ == "__main__":
    main()
