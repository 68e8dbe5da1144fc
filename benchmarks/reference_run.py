"""Train the Proxy Target authors' implementation and evaluate it as neurodeploy evaluates ours.

The reference (``madao2333/Proxy-Target-with-PLIF`` at 8d1635f, fetched, never committed)
is imported from ``--reference``: its ``PT_TD3`` / ``TD3`` agents and its ``ReplayBuffer``
do all the learning. This script only drives them with the loop of its ``main.py``
(random actions for ``start_steps``, then the actor plus N(0, 0.1 max_action) noise, one
``train`` call per step, episodes ending on termination or truncation), and adds two
things the authors' script lacks:

* evaluation by neurodeploy's own :func:`neurodeploy.train.evaluate.evaluate` (10
  deterministic episodes, episode i reset with seed ``seed + 100 + i``), so the reference
  and our runs are scored by the same code on the same initial states;
* a checkpoint at the first episode boundary after every ``--checkpoint-every`` steps
  (networks, optimisers, replay buffer, every random stream), so a killed run resumes.

The run directory looks like a sweep trial to ``neurodeploy report``: ``config.toml``
(with ``steps``), ``metrics.csv`` (``step``, ``eval_return_mean``, ...), ``trial.json``.

    python benchmarks/reference_run.py --reference /tmp/ref --env Hopper-v4 --seed 0 \
        --steps 100000 --start-steps 25000 --out runs/reference/hopper/seed0
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import tomli_w
import torch

from neurodeploy.envs import make_env
from neurodeploy.train.checkpoint import atomic_torch_save, atomic_write_bytes, safe_torch_load
from neurodeploy.train.evaluate import evaluate
from neurodeploy.train.loop import EVAL_SEED_OFFSET

COMMIT = "8d1635f"
AGENT_PARTS = ("actor", "actor_target", "critic", "critic_target", "actor_optimizer",
               "critic_optimizer", "target_optimizer")  # fmt: skip
BUFFER_FIELDS = ("state", "action", "next_state", "reward", "not_done")
METRIC_FIELDS = ("step", "eval_return_mean", "eval_return_std", "steps_per_s")


class Deterministic(torch.nn.Module):
    """The reference actor as our evaluator expects an actor: ``forward`` and ``reset``."""

    def __init__(self, actor: torch.nn.Module):
        super().__init__()
        self.actor = actor

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs)

    def reset(self) -> None:  # the reference actor keeps no state between actions
        pass


def build_agent(ref, args, env):
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    max_action = float(env.action_space.high[0])
    kwargs = dict(state_dim=obs_dim, action_dim=act_dim, max_action=max_action,
                  spiking_neurons=args.neuron, discount=0.99, tau=0.005,
                  policy_noise=0.2 * max_action, noise_clip=0.5 * max_action,
                  policy_freq=2)  # fmt: skip
    if args.proxy:
        return ref.PT_TD3(hidden_sizes=[512, 512], proxy_lr=args.proxy_lr, proxy_iters=3, **kwargs)
    return ref.TD3(**kwargs)


def save(path: Path, agent, buffer, env, counters: dict) -> None:
    size = buffer.size
    atomic_torch_save(
        {
            "agent": {k: getattr(agent, k).state_dict() for k in AGENT_PARTS if hasattr(agent, k)},
            "total_it": agent.total_it,
            "buffer": {
                k: torch.from_numpy(getattr(buffer, k)[:size].copy()) for k in BUFFER_FIELDS
            },  # fmt: skip
            "buffer_ptr": buffer.ptr,
            "numpy_global": json.dumps(_np_state_to_json(np.random.get_state())),
            "torch_rng": torch.get_rng_state(),
            "env_rng": json.dumps(env.unwrapped.np_random.bit_generator.state),
            "space_rng": json.dumps(env.action_space.np_random.bit_generator.state),
            "counters": counters,
        },
        path,
    )


def restore(path: Path, agent, buffer, env) -> dict:
    ckpt = safe_torch_load(path, "reference checkpoint")
    for k, state in ckpt["agent"].items():
        getattr(agent, k).load_state_dict(state)
    agent.total_it = int(ckpt["total_it"])
    for k in BUFFER_FIELDS:
        data = ckpt["buffer"][k].numpy()
        getattr(buffer, k)[: len(data)] = data
    buffer.size, buffer.ptr = len(ckpt["buffer"]["state"]), int(ckpt["buffer_ptr"])
    np.random.set_state(_np_state_from_json(json.loads(ckpt["numpy_global"])))
    torch.set_rng_state(ckpt["torch_rng"])
    env.unwrapped.np_random.bit_generator.state = json.loads(ckpt["env_rng"])
    env.action_space.np_random.bit_generator.state = json.loads(ckpt["space_rng"])
    return dict(ckpt["counters"])


def _np_state_to_json(state) -> list:
    name, keys, pos, has_gauss, gauss = state
    return [name, keys.tolist(), int(pos), int(has_gauss), float(gauss)]


def _np_state_from_json(state: list):
    name, keys, pos, has_gauss, gauss = state
    return (name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss)


def metrics_rows(path: Path, upto: int) -> list[dict]:
    if not path.is_file():
        return []
    with path.open() as f:
        return [r for r in csv.DictReader(f) if int(r["step"]) <= upto]


def write_metrics(path: Path, rows: list[dict]) -> None:
    lines = [",".join(METRIC_FIELDS)]
    lines += [",".join(str(r[k]) for k in METRIC_FIELDS) for r in rows]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="checkout at 8d1635f")
    parser.add_argument("--env", default="Hopper-v4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=100_000, help="env steps, random included")
    parser.add_argument("--start-steps", type=int, default=25_000)
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--checkpoint-every", type=int, default=10_000)
    parser.add_argument("--neuron", default="LIF", help="LIF | CLIF | DN | ANN (theirs)")
    parser.add_argument("--no-proxy", dest="proxy", action="store_false")
    parser.add_argument("--proxy-lr", type=float, default=1e-3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if not (args.reference / "actor_critic.py").is_file():
        sys.exit(f"error: {args.reference} is not a checkout of the reference (no actor_critic.py)")
    if not 0 <= args.start_steps < args.steps:
        sys.exit(f"error: --start-steps {args.start_steps} must be below --steps {args.steps}")
    sys.path.insert(0, str(args.reference.resolve()))
    ref = importlib.import_module("actor_critic")
    buffers = importlib.import_module("utils")
    torch.set_num_threads(1)

    out = args.out
    config = {"implementation": f"madao2333/Proxy-Target-with-PLIF@{COMMIT}",
              "env": args.env, "seed": args.seed, "steps": args.steps,
              "start_steps": args.start_steps, "eval_every": args.eval_every,
              "eval_episodes": args.eval_episodes, "neuron": args.neuron,
              "proxy": args.proxy, "proxy_lr": args.proxy_lr}  # fmt: skip
    config_path, ckpt_path = out / "config.toml", out / "checkpoint" / "state.pt"
    record = json.loads((out / "trial.json").read_text()) if (out / "trial.json").is_file() else {}
    if record.get("status") == "done" and not ckpt_path.exists():  # e.g. restored from results/
        sys.exit(f"error: {out} finished at {record.get('steps')} steps and has no checkpoint "
                 "to resume from; move it away to train it again")  # fmt: skip
    if config_path.exists():
        import tomllib

        saved = tomllib.loads(config_path.read_text())
        diff = [k for k in config if k != "steps" and saved.get(k) != config[k]]
        if diff:
            sys.exit(f"error: {config_path} differs in {', '.join(diff)}; choose another --out")
    atomic_write_bytes(config_path, tomli_w.dumps(config).encode())

    # Seeding and construction in main.py's order, so a fresh run matches the authors' script.
    env = make_env(args.env)
    env.reset(seed=args.seed)
    env.action_space.seed(args.seed)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    agent = build_agent(ref, args, env)
    buffer = buffers.ReplayBuffer(env.observation_space.shape[0], env.action_space.shape[0])
    eval_env = make_env(args.env)
    max_action = float(env.action_space.high[0])
    act_dim = env.action_space.shape[0]

    counters = {"step": 0, "last_ckpt": 0}
    if ckpt_path.exists():
        counters = restore(ckpt_path, agent, buffer, env)
        print(f"resumed from step {counters['step']:,}", flush=True)
    rows = metrics_rows(out / "metrics.csv", counters["step"])
    state, _ = env.reset()
    episode_steps, tick, tick_step = 0, time.perf_counter(), counters["step"]
    limit = env.spec.max_episode_steps
    for t in range(counters["step"], args.steps):
        episode_steps += 1
        if t < args.start_steps:
            action = env.action_space.sample()
        else:
            noise = np.random.normal(0, max_action * 0.1, size=act_dim)
            action = (agent.select_action(np.array(state)) + noise).clip(-max_action, max_action)
        next_state, reward, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
        buffer.add(state, action, next_state, reward, float(done) if episode_steps < limit else 0)
        state = next_state
        if t >= args.start_steps:
            agent.train(buffer, 256)
        step = t + 1
        if step % args.eval_every == 0 or step == args.steps:
            returns, _ = evaluate(Deterministic(agent.actor), eval_env, args.eval_episodes,
                                  args.seed + EVAL_SEED_OFFSET)  # fmt: skip
            rate = (step - tick_step) / max(time.perf_counter() - tick, 1e-9)
            rows.append({"step": step, "eval_return_mean": float(np.mean(returns)),
                         "eval_return_std": float(np.std(returns)),
                         "steps_per_s": rate})  # fmt: skip
            write_metrics(out / "metrics.csv", rows)
            print(f"step {step:,}: eval {np.mean(returns):.1f} ({rate:.1f} steps/s)", flush=True)
            tick, tick_step = time.perf_counter(), step
        if done:  # checkpoint before the reset: a resumed run makes this same reset
            if step - counters["last_ckpt"] >= args.checkpoint_every:
                counters = {"step": step, "last_ckpt": step}
                save(ckpt_path, agent, buffer, env, counters)
            state, _ = env.reset()
            episode_steps = 0
    trial = {"status": "done", "steps": args.steps, "implementation": config["implementation"]}
    atomic_write_bytes(out / "trial.json", json.dumps(trial, indent=1).encode())
    best = max(float(r["eval_return_mean"]) for r in rows) if rows else math.nan
    print(f"done: {out} (max eval {best:.1f})")


if __name__ == "__main__":
    main()
