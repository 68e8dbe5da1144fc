"""QuadHover: can the stateful SNN imitate the guide at all? (offline behaviour cloning)

This takes the imitation problem apart from the RL loop. Each trained guide (``--guide``,
repeatable) flies ``--episodes`` episodes with the training exploration noise and labels
them with its clean action; each SNN variant (``--variant NAME:KEY=VALUE,...``, keys of the
training config, default the guided recipe) is cloned on 100-step segments with the
recipe's 50-step burn-in and BPTT, then flown alone. ``--dagger`` adds rounds in which the
SNN flies and the guide labels what it meets (the data the guided loop's BC term gets).

    python benchmarks/quad_bc.py --guide runs/old/guide-s0 --guide runs/quad/guide-s0 --dagger 1

Reports, per guide, its own flight and, per variant, the BC losses and the SNN's flight:
return, hover error (as benchmarks/quad.py), steps flown and chatter (mean step-to-step
change of the motor commands), on the evaluation seeds of benchmarks/quad.py.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

from neurodeploy.envs import make_env  # noqa: E402
from neurodeploy.snn import build_actor  # noqa: E402
from neurodeploy.train.buffer import SequenceBuffer  # noqa: E402
from neurodeploy.train.config import parse_set, read_config, resolve  # noqa: E402
from neurodeploy.train.guide import Guide  # noqa: E402
from neurodeploy.train.loop import actor_config  # noqa: E402
from neurodeploy.train.sequence_td3 import SequenceTD3  # noqa: E402
from neurodeploy.train.td3 import Critic, TD3Settings, make_target  # noqa: E402

ENV = "neurodeploy/QuadHover-v0"
EPISODE, TAIL, EVAL_SEED = 500, 100, 1000


def tail_error(dist: list[float]) -> float:
    """Mean distance to the target over the last TAIL of EPISODE steps; a crashed flight
    stays where it left the ball."""
    return float(np.mean((dist + [dist[-1]] * (EPISODE - len(dist)))[-TAIL:]))


@dataclass
class Flight:
    """Per-episode results of :func:`fly` (``data``: (obs, label) arrays when labelled)."""

    returns: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)  # tail_error
    lengths: list[int] = field(default_factory=list)  # steps flown
    chatter: list[float] = field(default_factory=list)  # mean |a_t - a_t-1| over the tail
    data: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def cells(self) -> str:
        """Return, hover error, steps flown and chatter as Markdown table cells."""
        return (f"{np.mean(self.returns):.1f} | {np.mean(self.errors):.3f} | "
                f"{np.mean(self.lengths):.0f} | {np.mean(self.chatter):.3f}")  # fmt: skip


def fly(env, pilot, episodes: int, seed: int, noise=0.0, rng=None, label=None) -> Flight:
    """Fly ``pilot`` (a GuideDriver or SnnDriver) for ``episodes`` from seeds ``seed + i``;
    with ``noise`` the executed action gets Gaussian noise; with ``label`` each step records
    (obs, label(obs, info))."""
    out = Flight()
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        pilot.reset()
        dist, total, observed, labels, actions = [], 0.0, [], [], []
        for _ in range(EPISODE):
            action = np.asarray(pilot(obs, info), np.float32)
            actions.append(action)
            if label is not None:
                observed.append(obs)
                labels.append(label(obs, info))
            if noise:
                action = np.clip(action + rng.normal(0.0, noise, action.shape), -1.0, 1.0)
            pilot.guide.executed(action)  # the guide's action history: what the env got
            obs, reward, terminated, _, info = env.step(action.astype(np.float32))
            total += float(reward)
            dist.append(float(np.linalg.norm(obs[:3])))
            if terminated:
                break
        out.returns.append(total)
        out.lengths.append(len(dist))
        out.errors.append(tail_error(dist))
        out.chatter.append(float(np.abs(np.diff(actions[-TAIL:], axis=0)).mean()))
        if label is not None:
            out.data.append((np.array(observed, np.float32), np.array(labels, np.float32)))
    return out


class GuideDriver:
    """The guide flying (:func:`fly` keeps its action history)."""

    def __init__(self, guide: Guide):
        self.guide = guide

    def __call__(self, obs, info):
        return self.guide.act(obs, info)

    def reset(self):
        self.guide.reset()


class SnnDriver:
    """The SNN flying alone; the guide rides along (its action history is the SNN's actions,
    as in the training loop), so it can label what it sees."""

    def __init__(self, actor, guide: Guide):
        self.actor, self.guide = actor, guide

    @torch.no_grad()
    def __call__(self, obs, info):
        return self.actor(torch.as_tensor(obs)[None])[0].numpy()

    def reset(self):
        self.actor.reset()
        self.guide.reset()


def replay(data, cfg) -> SequenceBuffer:
    """Labelled flights in the training loop's segment replay (labels as guide actions)."""
    buffer = SequenceBuffer(18, 4, sum(len(obs) for obs, _ in data), cfg.sequence_length,
                            cfg.sequence_stride, cfg.burn_in)  # fmt: skip
    for obs, labels in data:
        for o, a in zip(obs, labels, strict=True):
            buffer.add(o, a, 0.0, o, False, guide_action=a)
        buffer.end_episode()
    return buffer


@torch.no_grad()
def held_out_loss(actor, batch, burn_in: int) -> float:
    """The BC loss of SequenceTD3's ``bc_only`` update, measured without a step."""
    _, warm = actor.forward_sequence(batch.obs[:burn_in])
    actions, _ = actor.forward_sequence(batch.obs[burn_in:], warm)
    mask = batch.mask[burn_in:]
    error = ((actions - batch.guide_action[burn_in:]) ** 2).sum(-1, keepdim=True)
    return float((error * mask).sum() / mask.sum())


def clone(actor, train, held_out, cfg, updates: int, rng) -> tuple[float, float]:
    """The ``bc`` baseline's update (SequenceTD3, ``bc_only``) on the labelled replay;
    (mean train loss of the last 100 updates, held-out loss on 256 segments)."""
    low, high = torch.full((4,), -1.0), torch.full((4,), 1.0)
    settings = TD3Settings(actor_lr=cfg.actor_lr)
    bc = SequenceTD3(actor, Critic(18, 4), settings, low, high, make_target(actor, settings, None),
                     burn_in=cfg.burn_in, bc_only=True)  # fmt: skip
    recent = [bc.update(lambda: train.sample(cfg.batch_size, rng))["actor_loss"]
              for _ in range(updates)][-100:]  # fmt: skip
    return float(np.mean(recent)), held_out_loss(actor, held_out.sample(256, rng), cfg.burn_in)


def clone_variants(env, guide: Guide, variants: list[str], args, rng) -> list[str]:
    """Label ``args.episodes`` noisy guide flights, clone each variant, fly it: table rows."""
    flying = GuideDriver(guide)
    label = guide.act
    flown = fly(env, flying, args.episodes, 10_000, args.noise, rng, label).data
    held_out = fly(env, flying, 10, 20_000, args.noise, rng, label).data
    rows = []
    for spec in variants:
        name, _, sets = spec.partition(":")
        overrides = parse_set([s for s in sets.split(",") if s])
        cfg = resolve("quad-hover-guided", {"seed": args.seed, **overrides})[0]
        torch.manual_seed(args.seed)
        actor = build_actor(actor_config(cfg, env))
        snn = SnnDriver(actor, guide)
        data, held = list(flown), replay(held_out, cfg)
        for rnd in range(args.dagger + 1):
            losses = clone(actor, replay(data, cfg), held, cfg, args.updates, rng)
            if rnd < args.dagger:  # the SNN flies, the guide labels what it meets
                seed = 30_000 + 1000 * rnd
                data += fly(env, snn, args.episodes // 2, seed, args.noise, rng,
                            label).data  # fmt: skip
        result = fly(env, snn, args.eval_episodes, EVAL_SEED)
        rows.append(f"| {name} | `{sets or '(recipe)'}` | {losses[0]:.4f} | {losses[1]:.4f} | "
                    f"{result.cells()} |")  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--guide", type=Path, action="append", required=True,
                        help="a guide run directory (repeat to compare guides)")  # fmt: skip
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
    guides = ["| guide | steps | return | hover error m | steps flown | chatter |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    clones = ["| guide | SNN variant | changes | BC loss (train) | BC loss (held out) | "
              "SNN return | hover error m | steps flown | chatter |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for path in args.guide:
        guide = Guide.load(path)
        own = fly(env, GuideDriver(guide), args.eval_episodes, EVAL_SEED)
        guides.append(f"| `{path}` | {read_config(path / 'config.toml').steps:,} | "
                      f"{own.cells()} |")  # fmt: skip
        print(guides[-1], flush=True)
        rng = np.random.default_rng(args.seed)
        rows = clone_variants(env, guide, args.variant or ["recipe:"], args, rng)
        clones += [f"| `{path}` {row}" for row in rows]
    lines = [*guides, "", *clones]
    body = (
        f"Offline behaviour cloning of QuadHover guides: {args.episodes} guide episodes "
        f"(exploration std {args.noise}) labelled with the guide's clean action, "
        f"{args.updates} BC updates per round (100-step segments, 50-step burn-in, BPTT), "
        f"{args.dagger} DAgger rounds; each policy flown alone on {args.eval_episodes} episodes "
        f"(seeds 1000+, final reward). Hover error as benchmarks/quad.py; chatter = mean "
        f"|a_t - a_(t-1)| per motor over the last {TAIL} steps (commands in [-1, 1]).\n\n"
        + "\n".join(lines)
    )
    print(body)
    if args.record:
        write_section("quad_bc", "QuadHover: offline cloning of the guide (issue 7)", body)


if __name__ == "__main__":
    main()
