"""Training throughput of PT-LIF on Hopper-v4 against the reference implementation.

Paper settings (K=3, batch 256, proxy 512-512, lr 1e-3). Both agents first fill
their replay buffer with random actions (the random-start phase, not timed), run
WARMUP training steps untimed (torch.compile compiles there), then time full training
steps (act + env step + store + one update) for --steps steps.
The reference runs its own PT_TD3.train and ReplayBuffer, imported from the
checkout given on the command line, in the same process.

    python benchmarks/train_throughput.py --reference /path/to/Proxy-Target-with-PLIF

``--seeds N`` measures vectorised seeds instead (issue 17): the aggregate env steps/s of N
seeds trained in one process (``neurodeploy train hopper --seeds``) against N separate
processes started together on the same machine, each through the real training loop and
read from its metrics.csv (the steps/s between the last two evaluations, so the
random-start phase and evaluation are not timed). The same run counts the FLOPs of one
training step (torch's FlopCounterMode: matrix products, forward and backward) and times
torch.mm at the step's largest shapes, so the achieved GFLOP/s is set against what this
machine's matrix products reach. ``--device cuda --seeds 1,5,8,10`` gives the GPU table.

    python benchmarks/train_throughput.py --seeds 3
    python benchmarks/train_throughput.py --seeds 1,5,8,10 --device cuda
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
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


# --- vectorised seeds (issue 17) ------------------------------------------------------------


def _train_command(out: Path, seeds: str, random_steps: int, steps: int, device: str) -> list:
    """``neurodeploy train hopper``: evaluations at the end of the warm-up and at the end,
    so the last metrics row's steps/s covers exactly the timed training steps."""
    warm = random_steps + WARMUP
    flag = ["--seeds", seeds] if "," in seeds or "-" in seeds else ["--seed", seeds]
    sets = [f"start_steps={random_steps}", f"eval_every={warm}", "eval_episodes=1",
            f"checkpoint_every={10 * (warm + steps)}"]  # fmt: skip
    return [sys.executable, "-m", "neurodeploy.cli", "train", "hopper", *flag, "--out", str(out),
            "--steps", str(warm + steps), "--device", device,
            *[x for kv in sets for x in ("--set", kv)]]  # fmt: skip


def _last_rate(run_dir: Path) -> float:
    with (run_dir / "metrics.csv").open() as f:
        return float(list(csv.DictReader(f))[-1]["steps_per_s"])


def _launch(commands: list[list], threads: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL) for c in commands]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"a training run failed: {' '.join(map(str, p.args))}")


def separate_rate(n: int, random_steps: int, steps: int, device: str, tmp: Path) -> float:
    """N ordinary runs (one seed each), started together; their rates summed."""
    runs = [tmp / f"solo{k}" for k in range(n)]
    _launch([_train_command(r, str(k), random_steps, steps, device) for k, r in enumerate(runs)], 1)
    return sum(_last_rate(r) for r in runs)


def vectorised_rate(n: int, random_steps: int, steps: int, device: str, threads: int,
                    tmp: Path) -> float:  # fmt: skip
    """One process training seeds 0..n-1 together; every seed logs its own rate."""
    out = tmp / f"vec{n}-{threads}"
    _launch([_train_command(out, f"0-{n - 1}", random_steps, steps, device)], threads)
    return sum(_last_rate(out / f"seed{k}") for k in range(n))


def step_gflop() -> float:
    """FLOPs of one training step of one seed (an act and a TD3 update), in GFLOP."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = TrainConfig(env=ENV, algo="pt-td3", neuron="lif")
    env = make_env(ENV, 0)
    agent = Agent.build(cfg, env)
    rng = np.random.default_rng(0)
    for _ in range(cfg.batch_size):
        agent.buffer.add(
            rng.normal(size=11), rng.uniform(-1, 1, 3), 0.0, rng.normal(size=11), False
        )
    agent.td3.update(lambda: agent.buffer.sample(cfg.batch_size, rng))  # update 1: no actor step
    with FlopCounterMode(display=False) as count:
        agent.td3.update(lambda: agent.buffer.sample(cfg.batch_size, rng))  # with the actor step
        with torch.no_grad():
            agent.actor(torch.zeros(1, 11))
    return count.get_total_flops() / 1e9


def update_ms(batch: int, device: str = "cpu", reps: int = 20) -> float:
    """Milliseconds of one seed's act + TD3 update at ``batch`` (1 CPU thread). At batch 2
    the arithmetic is nil and what is left is the per-op fixed cost (Python, dispatch and,
    on a GPU, kernel launches): the only part of a step that stacking seeds can share."""
    torch.set_num_threads(1)
    cfg = TrainConfig(env=ENV, algo="pt-td3", neuron="lif")
    agent = Agent.build(cfg, make_env(ENV, 0), device)
    rng = np.random.default_rng(0)
    for _ in range(1000):
        agent.buffer.add(
            rng.normal(size=11), rng.uniform(-1, 1, 3), 0.0, rng.normal(size=11), False
        )
    obs = torch.zeros(1, 11, device=device)

    def step():
        with torch.no_grad():
            agent.actor(obs).cpu()  # the action goes back to the CPU environment
        agent.td3.update(lambda: agent.buffer.sample(batch, rng))

    for _ in range(4):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        step()
    _sync(device)
    return (time.perf_counter() - start) / reps * 1e3


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def mm_gflops(threads: int, device: str = "cpu") -> float:
    """torch.mm GFLOP/s at the step's largest shapes (actor hidden layer over B*T rows, the
    proxy's and the critic's hidden layers over B rows), with ``threads`` CPU threads or on
    ``device``."""
    torch.set_num_threads(threads)
    shapes = [(256 * 5, 256, 256), (256, 512, 512), (256, 256, 256)]
    flops = seconds = 0.0
    for m, k, n in shapes:
        a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
        for _ in range(5):
            a @ b
        _sync(device)
        start, reps = time.perf_counter(), 200
        for _ in range(reps):
            a @ b
        _sync(device)
        seconds += time.perf_counter() - start
        flops += 2 * m * k * n * reps
    return flops / seconds / 1e9


def seeds_main(args) -> None:
    counts = [int(x) for x in args.seeds.split(",")]
    gflop = step_gflop()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.device == "cpu":
            n = counts[0]
            rates = {
                f"{n} separate processes (1 thread each)": separate_rate(
                    n, args.random_steps, args.steps, "cpu", tmp
                ),
                f"{n} vectorised seeds, 1 process, 1 thread": vectorised_rate(
                    n, args.random_steps, args.steps, "cpu", 1, tmp
                ),
                f"{n} vectorised seeds, 1 process, {os.cpu_count()} threads": vectorised_rate(
                    n, args.random_steps, args.steps, "cpu", os.cpu_count(), tmp
                ),
            }
        else:
            rates = {"1 seed, plain run": separate_rate(1, args.random_steps, args.steps,
                                                        args.device, tmp)}  # fmt: skip
            for n in counts:
                rates[f"{n} vectorised seed{'s' * (n > 1)}"] = vectorised_rate(
                    n, args.random_steps, args.steps, args.device, 1, tmp
                )
    gpu = args.device != "cpu"
    peak = {f"{t} thread{'s' * (t > 1)}": mm_gflops(t) for t in sorted({1, os.cpu_count()})}
    if gpu:
        peak[args.device] = mm_gflops(1, args.device)
    full, fixed = update_ms(256, args.device), update_ms(2, args.device)
    n = counts[-1]
    ceiling = n * full / (n * full - (n - 1) * fixed)  # every seed but one sheds its fixed cost
    base = next(iter(rates.values()))
    rows = "".join(
        f"| {name} | {rate:.1f} | {rate / base:.2f}x | {rate * gflop:.1f} |\n"
        for name, rate in rates.items()
    )
    body = (
        f"PT-LIF on {ENV}, paper settings (batch 256, T=5, 256-256 actor, proxy 512-512, "
        f"K=3), device {args.device}"
        + (f" ({torch.cuda.get_device_name(args.device)})" if gpu else "")
        + ". Every configuration trains through `neurodeploy train` "
        f"for {args.steps} timed steps after {args.random_steps} random-start and {WARMUP} "
        "warm-up steps; the rate is each run's own steps/s from metrics.csv, summed over "
        f"seeds. One training step of one seed is {gflop:.2f} GFLOP (FlopCounterMode: "
        "matrix products of an act and a TD3 update, forward and backward).\n\n"
        "| configuration | aggregate env steps/s | vs first row | achieved GFLOP/s |\n"
        f"|---|---|---|---|\n{rows}\n"
        "torch.mm at the step's shapes (1280x256x256, 256x512x512, 256x256x256), same run: "
        + ", ".join(f"{v:.0f} GFLOP/s with {where}" for where, v in peak.items())
        + ".\n\n"
        f"One seed's act + update on {args.device}, 1 CPU thread: {full:.1f} ms at batch 256, "
        f"{fixed:.1f} ms at batch 2 (the per-op fixed cost, the only part stacking can share)."
        + (
            f" On the GPU the step is {fixed / full:.0%} fixed cost (Python, dispatch, kernel "
            "launches); the arithmetic of more seeds runs in parallel on the device.\n"
            if gpu
            else f" So {n} stacked seeds can at best run {ceiling:.2f}x as fast as {n} seeds "
            "one after another on the same core; the rest of the step is arithmetic that "
            "grows with the seeds.\n"
        )
    )
    print(body)
    key = "train_seeds" if args.device == "cpu" else "train_seeds_gpu"
    title = (
        "Vectorised seeds, CPU (issue 17)"
        if args.device == "cpu"
        else "Vectorised seeds, GPU (issue 17)"
    )
    write_section(key, title, body)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reference", help="checkout of Proxy-Target-with-PLIF")
    parser.add_argument("--seeds", help="vectorised seeds: N (cpu) or N1,N2,... (cuda)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda (with --seeds)")
    parser.add_argument("--random-steps", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    if args.seeds:
        return seeds_main(args)
    if not args.reference:
        parser.error("give --reference (against the authors' code) or --seeds N")
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
