"""QuadHover: guided jump-start vs TD3 from scratch vs behaviour cloning of the guide.

Each (method, seed) run lives in RUNS/<method>-s<seed>. ``guided`` and ``td3`` train their
recipes (quad-hover-guided, quad-hover-td3); ``bc`` clones the guide that the guided run of the
same seed trained (RUNS/guided-s<seed>/guide), so it needs that run's guide first. Finished
runs are reused; --train trains the missing ones (``--steps``/``--guide-steps`` shrink the
budget, and the table says so). Every finished policy is then flown for --episodes episodes on
torch, exported to loihi2 and flown on loihi2-sim: the last policy (policy.pt) and, in rows
marked "best eval", the best-evaluated one (best.pt; its training evaluations used other
episode seeds). Hover error = mean |position| (m) over the last 100 steps of each episode (a
crash keeps its last position until step 500).

    python benchmarks/quad.py --runs runs/quad --train --seeds 0

``--train-only`` trains without evaluating (run several at once, one per seed or method, then
one command without it for the report).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402
from quad_bc import ENV, EVAL_SEED, TAIL, GuideDriver, fly, tail_error  # noqa: E402
from returns import eval_curve  # noqa: E402

from neurodeploy.envs import make_env  # noqa: E402
from neurodeploy.export.bundle import export_bundle  # noqa: E402
from neurodeploy.hardware.runner import run_policy  # noqa: E402
from neurodeploy.train.checkpoint import BEST_POLICY  # noqa: E402
from neurodeploy.train.config import parse_set, read_config, resolve  # noqa: E402
from neurodeploy.train.guide import Guide, guide_config  # noqa: E402
from neurodeploy.train.loop import train  # noqa: E402

METHODS = ("guided", "td3", "bc")


def config(method: str, seed: int, runs: Path, steps: int | None, round_steps: int | None = None,
           sets: dict | None = None):  # fmt: skip
    overrides: dict = {**(sets or {}), "seed": seed}
    if steps:
        overrides["steps"] = steps
    if round_steps:
        overrides["guide_round_steps"] = round_steps
    if method == "td3":
        return resolve("quad-hover-td3", overrides)[0]
    overrides.update(guide=str(runs / f"guide-s{seed}"), guide_steps=0)
    if method == "bc":
        overrides["algo"] = "bc"
    return resolve("quad-hover-guided", overrides)[0]


def finished(run: Path, steps: int) -> bool:
    metrics = run / "metrics.csv"
    curve = eval_curve(metrics) if metrics.exists() else []
    return bool(curve) and curve[-1][0] >= steps  # a run stopped before its first eval: []


def train_guide(runs: Path, seed: int, guide_steps: int | None, sets: dict | None = None) -> None:
    """The guide of ``seed``: the guided recipe's guide config, trained in RUNS/guide-s<seed>."""
    cfg = guide_config(resolve("quad-hover-guided", {**(sets or {}), "seed": seed})[0])
    if guide_steps:
        cfg = dataclasses.replace(cfg, steps=guide_steps)
    out = runs / f"guide-s{seed}"
    if not finished(out, cfg.steps):
        train(cfg, out, (out / "config.toml").exists(), progress=False)


def hover_error(path: Path, backend: str, episodes: int) -> tuple[float, float, float]:
    """Mean return, mean |position| over the last TAIL steps and mean steps flown before
    leaving the 0.6 m ball (500: no crash), over ``episodes`` flights."""
    positions: dict[int, list[float]] = {}
    result = run_policy(
        path,
        backend,
        episodes,
        seed=EVAL_SEED,
        observe=lambda ep, obs: positions.setdefault(ep, []).append(float(np.linalg.norm(obs[:3]))),
    )
    tails = [tail_error(dist) for dist in positions.values()]
    return float(np.mean(result.returns)), float(np.mean(tails)), float(np.mean(result.lengths))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=Path, default=Path("runs/quad"))
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--steps", type=int, help="SNN steps (default: the recipe's)")
    parser.add_argument("--guide-steps", type=int, help="guide steps (default: the recipe's)")
    parser.add_argument("--guide-only", action="store_true", help="train the guides, stop")
    parser.add_argument(
        "--train-only", action="store_true", help="train the missing runs, stop (no report)"
    )
    parser.add_argument("--round-steps", type=int, help="guide_round_steps (shorter budgets)")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="recipe override for every run and guide (own --runs; report not recorded "
        "unless --label)",
    )
    parser.add_argument(
        "--label",
        help="record the report in its own section of docs/results.md (a variant, or runs "
        "trained by an older recipe), not over the recipe's table",
    )
    args = parser.parse_args()
    sets = parse_set(args.set)
    # one torch thread: lanes run side by side, and two guides with two threads each on the
    # 2 cores trained at 63 steps/s each, against ~480 with one thread each (session 4)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")
    if args.guide_only:
        for seed in seeds:
            train_guide(args.runs, seed, args.guide_steps, sets)
        return
    training = args.train or args.train_only
    rows = []
    for method in methods:
        for seed in seeds:
            if training and method != "td3":
                train_guide(args.runs, seed, args.guide_steps, sets)
            cfg = config(method, seed, args.runs, args.steps, args.round_steps, sets)
            out = args.runs / f"{method}-s{seed}"
            done = finished(out, cfg.steps)
            if not done and training:
                train(cfg, out, (out / "config.toml").exists(), progress=False)
                done = True
            if not done or args.train_only:
                continue  # untrained runs are left out of the report
            budget = f"{cfg.steps:,}"
            if cfg.guide:
                budget += f" + guide {read_config(Path(cfg.guide) / 'config.toml').steps:,}"
            # the last policy, and the best-evaluated one (best.pt) as a row of its own
            for label, policy, bundle in (
                (method, out, out / "bundle-loihi2"),
                (f"{method}, best eval", out / BEST_POLICY, out / "bundle-loihi2-best"),
            ):
                if not policy.exists():
                    continue
                if not bundle.exists():
                    export_bundle(policy, "loihi2", bundle, observations=200)
                ret, err, flown = hover_error(policy, "torch", args.episodes)
                ret_chip, err_chip, _ = hover_error(bundle, "loihi2-sim", args.episodes)
                rows.append((label, seed, budget, ret, err, flown, ret_chip, err_chip))
    if args.train_only:
        return  # no report: docs/results.md keeps the last one
    lines = [
        "| method | seed | budget (steps) | return (torch) | hover error m (torch) | "
        "steps flown (torch) | return (loihi2-sim) | hover error m (loihi2-sim) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, seed, budget, ret, err, flown, ret_chip, err_chip in rows:
        lines.append(
            f"| {method} | {seed} | {budget} | {ret:.1f} | {err:.3f} | {flown:.0f} | "
            f"{ret_chip:.1f} | {err_chip:.3f} |"
        )
    lines += ["", "| method | seeds | return (torch) | hover error m (torch) | steps flown | "
              "seeds < 0.1 m | return (loihi2-sim) | hover error m (loihi2-sim) |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for method in dict.fromkeys(r[0] for r in rows):
        got = np.array([r[3:] for r in rows if r[0] == method])
        if len(got):
            mean, std = got.mean(axis=0), got.std(axis=0)
            digits = (1, 3, 0, 1, 3)  # return, error, steps flown, chip return, chip error
            cells = [f"{m:.{d}f} ± {x:.{d}f}" for m, x, d in zip(mean, std, digits, strict=True)]
            under = int((got[:, 1] < 0.1).sum())
            lines.append(f"| {method} | {len(got)} | {' | '.join(cells[:3])} | {under} | "
                         f"{' | '.join(cells[3:])} |")  # fmt: skip
    lines += ["", "| guide | seed | step (best eval) | return | hover error m | steps flown | "
              "chatter |"]  # fmt: skip
    lines.append("|---|---|---|---|---|---|---|")
    env = make_env(ENV)
    env.unwrapped.set_curriculum(1.0)
    for seed in seeds:
        guide = args.runs / f"guide-s{seed}"
        if (guide / "policy.pt").exists():
            curve = eval_curve(guide / "metrics.csv")  # Guide.load flies best.pt if there
            step = (
                max(curve, key=lambda r: r[1])[0] if (guide / "best.pt").exists() else curve[-1][0]
            )
            driver = GuideDriver(Guide.load(guide))
            cells = fly(env, driver, args.episodes, EVAL_SEED).cells()
            lines.append(f"| ANN TD3, privileged observation | {seed} | {step:,} | {cells} |")
    body = (
        f"QuadHover-v0, stateful LIF 256-128 SNN (T = 1, Lava timing modelled, the observation "
        f"as input current: graded spikes on Loihi 2). {args.episodes} "
        f"evaluation episodes per policy (seeds 1000+), final reward coefficients. Hover error "
        f"= mean distance to the target over the last {TAIL} steps of the 500-step episode.\n\n"
        + "\n".join(lines)
    )
    print(body)
    if args.label:
        write_section(f"quad-{args.label}", f"QuadHover variant: {args.label} (issue 7)", body)
    elif not sets:  # a variant's report is printed, not published over the recipe's
        write_section("quad", "QuadHover: guided vs TD3 vs BC (issue 7)", body)


if __name__ == "__main__":
    main()
