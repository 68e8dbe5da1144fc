"""QuadHover: can the stateful SNN imitate the guide at all? (offline behaviour cloning)

The guided recipe's SNN does not fly alone although its guide does. This benchmark takes
the learning problem apart from the RL loop: a trained guide (RUNS/guide-s<seed>) flies
``--episodes`` episodes with the training exploration noise, its clean actions are the
labels, and each SNN variant (``--variant NAME:KEY=VALUE,...``, keys of the training
config) is cloned on 100-step segments with the recipe's 50-step burn-in and BPTT, then
flown alone. ``--dagger`` adds rounds in which the SNN flies after the guide's warm-up
and the guide labels what it sees (the data the guided loop's BC term gets).

    python benchmarks/quad_bc.py --guide runs/quad/guide-s0 --variant recipe: \
        --variant subtract:reset='subtract' --dagger 2

Reports the guide's own flight and, per variant, the held-out BC loss and the SNN's
return, hover error (mean |p| over the last 100 steps; a crash keeps its last position)
and steps flown, on the evaluation seeds of benchmarks/quad.py.
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
from neurodeploy.snn import build_actor  # noqa: E402
from neurodeploy.train.config import parse_set, resolve  # noqa: E402
from neurodeploy.train.guide import Guide  # noqa: E402
from neurodeploy.train.loop import actor_config  # noqa: E402

ENV = "neurodeploy/QuadHover-v0"
EPISODE, TAIL, EVAL_SEED = 500, 100, 1000


def tail_error(dist: list[float]) -> float:
    """Mean distance to the target over the last TAIL of EPISODE steps; a crashed flight
    stays where it left the ball."""
    return float(np.mean((dist + [dist[-1]] * (EPISODE - len(dist)))[-TAIL:]))


def fly(env, act, reset, episodes: int, seed: int, noise: float = 0.0, rng=None, label=None):
    """Fly ``act(obs, info)`` for ``episodes``; returns (returns, tail errors, lengths, data).

    ``data`` holds one (obs [n, 18], label [n, 4]) pair per episode when ``label`` is given
    (the guide's clean action at every visited state)."""
    returns, errors, lengths, data = [], [], [], []
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        reset()
        dist, total, observed, labels = [], 0.0, [], []
        for t in range(EPISODE):
            action = act(obs, info, t)
            if label is not None:
                observed.append(obs)
                labels.append(label(obs, info, t))
            if noise:
                action = np.clip(action + rng.normal(0.0, noise, action.shape), -1.0, 1.0)
            obs, reward, terminated, _, info = env.step(np.asarray(action, np.float32))
            total += float(reward)
            dist.append(float(np.linalg.norm(obs[:3])))
            if terminated:
                break
        returns.append(total)
        lengths.append(len(dist))
        errors.append(tail_error(dist))
        if label is not None:
            data.append((np.array(observed, np.float32), np.array(labels, np.float32)))
    return returns, errors, lengths, data


class GuideDriver:
    """The guide as ``act(obs, info, t)``; it records the action the env received."""

    def __init__(self, guide: Guide):
        self.guide = guide

    def __call__(self, obs, info, t):
        return self.guide.act(obs, info)

    def reset(self):
        self.guide.reset()


class SnnDriver:
    """The SNN flying alone as ``act(obs, info, t)``; the guide watches (so its action
    history is the executed actions, as in the training loop) and can label."""

    def __init__(self, actor, guide: Guide):
        self.actor, self.guide = actor, guide

    @torch.no_grad()
    def __call__(self, obs, info, t):
        self.guide.act(obs, info)
        return self.actor(torch.as_tensor(obs)[None])[0].numpy()

    def reset(self):
        self.actor.reset()
        self.guide.reset()


def segments(data, length: int, stride: int, burn_in: int):
    """All (obs, label, mask) segments of ``length`` steps, as SequenceBuffer cuts them."""
    out = []
    for obs, lab in data:
        n = len(obs)
        for start in range(0, n, stride):
            if start + burn_in >= n:
                break
            idx = np.minimum(np.arange(start, start + length), n - 1)
            mask = (np.arange(start, start + length) < n).astype(np.float32)
            mask[:burn_in] = 0.0
            out.append((obs[idx], lab[idx], mask))
    obs, lab, mask = (np.stack(x, axis=1) for x in zip(*out, strict=True))
    return torch.from_numpy(obs), torch.from_numpy(lab), torch.from_numpy(mask)[..., None]


def bc_loss(actor, obs, lab, mask, burn_in: int) -> torch.Tensor:
    with torch.no_grad():
        _, warm = actor.forward_sequence(obs[:burn_in])
    actions, _ = actor.forward_sequence(obs[burn_in:], warm)
    m = mask[burn_in:]
    return (((actions - lab[burn_in:]) ** 2).sum(-1, keepdim=True) * m).sum() / m.sum()


def clone(actor, train, held_out, cfg, updates: int, rng) -> tuple[float, float]:
    """Adam on the BC loss over random batches of segments; (train loss, held-out loss)."""
    opt = torch.optim.Adam(actor.parameters(), lr=cfg.actor_lr)
    obs, lab, mask = train
    recent = []
    for _ in range(updates):
        pick = torch.from_numpy(rng.integers(0, obs.shape[1], cfg.batch_size))
        loss = bc_loss(actor, obs[:, pick], lab[:, pick], mask[:, pick], cfg.burn_in)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        recent = (recent + [loss.item()])[-100:]
    with torch.no_grad():
        held = bc_loss(actor, *held_out, cfg.burn_in).item()
    return float(np.mean(recent)), held


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--guide", type=Path, required=True)
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME:KEY=VALUE,KEY=VALUE (training-config keys)")  # fmt: skip
    parser.add_argument("--episodes", type=int, default=60, help="guide episodes to clone")
    parser.add_argument("--updates", type=int, default=4000, help="BC updates per round")
    parser.add_argument("--dagger", type=int, default=0, help="rounds of SNN-flown labels")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--noise", type=float, default=0.1, help="guide exploration std")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--record", action="store_true", help="write docs/results.md")
    args = parser.parse_args()
    torch.set_num_threads(1)

    env = make_env(ENV)
    env.unwrapped.set_curriculum(1.0)
    guide = GuideDriver(Guide.load(args.guide))
    rng = np.random.default_rng(args.seed)
    g_ret, g_err, g_len, _ = fly(env, guide, guide.reset, args.eval_episodes, EVAL_SEED)
    print(f"guide: return {np.mean(g_ret):.1f} error {np.mean(g_err):.3f} m flown "
          f"{np.mean(g_len):.0f}", flush=True)  # fmt: skip
    label = lambda obs, info, t: guide.guide.act(obs, info)  # noqa: E731
    flown = fly(env, guide, guide.reset, args.episodes, 10_000, args.noise, rng, label)[3]
    held_out = fly(env, guide, guide.reset, 10, 20_000, args.noise, rng, label)[3]

    rows = []
    for spec in args.variant or ["recipe:"]:
        name, _, sets = spec.partition(":")
        cfg = resolve("quad-hover-guided", {"seed": args.seed, **parse_set(
            [s for s in sets.split(",") if s])})[0]  # fmt: skip
        torch.manual_seed(args.seed)
        actor = build_actor(actor_config(cfg, env))
        data = list(flown)
        held = segments(held_out, cfg.sequence_length, cfg.sequence_stride, cfg.burn_in)
        start = time.perf_counter()
        for rnd in range(args.dagger + 1):
            train = segments(data, cfg.sequence_length, cfg.sequence_stride, cfg.burn_in)
            train_loss, held_loss = clone(actor, train, held, cfg, args.updates, rng)

            snn = SnnDriver(actor, guide.guide)
            ret, err, length, _ = fly(env, snn, snn.reset, args.eval_episodes, EVAL_SEED)
            seconds = time.perf_counter() - start
            print(f"{name} round {rnd}: bc loss {train_loss:.4f} held-out {held_loss:.4f} "
                  f"return {np.mean(ret):.1f} error {np.mean(err):.3f} m flown "
                  f"{np.mean(length):.0f} ({seconds:.0f} s)", flush=True)  # fmt: skip
            if rnd < args.dagger:
                data += fly(env, snn, snn.reset, args.episodes // 2, 30_000 + 1000 * rnd,
                            args.noise, rng, label)[3]  # fmt: skip
        rows.append((name, sets or "(recipe)", train_loss, held_loss, np.mean(ret),
                     np.mean(err), np.mean(length)))  # fmt: skip

    lines = [
        f"Guide {args.guide.name}: return {np.mean(g_ret):.1f}, hover error "
        f"{np.mean(g_err):.3f} m, flies {np.mean(g_len):.0f} of 500 steps "
        f"({args.eval_episodes} episodes).",
        "",
        "| variant | changes | BC loss (train) | BC loss (held out) | SNN return | "
        "hover error m | steps flown |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, sets, tl, hl, ret, err, length in rows:
        lines.append(f"| {name} | `{sets}` | {tl:.4f} | {hl:.4f} | {ret:.1f} | {err:.3f} | "
                     f"{length:.0f} |")  # fmt: skip
    body = (
        f"Offline behaviour cloning of a QuadHover guide: {args.episodes} guide episodes "
        f"(exploration std {args.noise}), {args.updates} updates per round, {args.dagger} "
        f"DAgger rounds; SNN flown alone on {args.eval_episodes} episodes (seeds 1000+).\n\n"
        + "\n".join(lines)
    )
    print(body)
    if args.record:
        write_section("quad_bc", "QuadHover: offline cloning of the guide (issue 7)", body)


if __name__ == "__main__":
    main()
