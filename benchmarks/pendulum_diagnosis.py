"""Why does PT-LIF decline late on Pendulum-v1? Our variants beside the reference, same seeds.

Each variant trains Pendulum-v1 for 15k steps (1k random start steps, evaluation every 1k
steps over 10 deterministic episodes with the same initial states for every variant):

* ``ours``: the pendulum recipe as it shipped before the fix (PT-LIF, paper settings,
  gamma 0.99, no observation scale);
* ``reference``: the authors' code (8d1635f) driven by ``benchmarks/reference_run.py``
  with the same budget, scored by our evaluator;
* one variant per candidate cause: ``obs-scale`` (angular velocity / 4 before the
  encoder's tanh, which saturates beyond |w| ~ 2 of Pendulum's +-8 rad/s), with a faster
  proxy (``+proxy-lr-3e-3``) or a shorter horizon (``+gamma-0.98``: the recipe now);
  ``proxy-lr-3e-4`` (a slower proxy), ``expl-0.05`` (half the exploration noise);
  ``ann``: ANN TD3 for scale;
* after the recipe's seed 4 still drifted: ``recipe+lr-linear`` (learning rates falling
  linearly to 0), ``recipe+start-5k`` (5k random start steps, a replay with more
  high-energy states), ``recipe+velocity/8`` (a finer velocity code: / 8, not / 4).

Runs live in RUNS/<variant>/seed<N> and resume; finished runs are reused. The recipe's own
trials of the results sweep (``runs/sweeps/pendulum/algo=pt-td3,neuron=lif/seed<N>``, the
same config as ``obs-scale+gamma-0.98``) can be linked in as further seeds of that variant.

    python benchmarks/pendulum_diagnosis.py --reference /tmp/ref --variants ours,reference \
        --seeds 0,1 --train
    python benchmarks/pendulum_diagnosis.py          # table and curves of what finished
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIGURE = ROOT / "docs" / "figures" / "pendulum_diagnosis.png"
STEPS = 15_000
BASE = {"steps": STEPS, "start_steps": 1_000, "eval_every": 1_000, "eval_episodes": 10}
OLD = {"obs_scale": [], "gamma": 0.99}  # the pendulum recipe before the fix
SCALE = [1.0, 1.0, 0.25]
VARIANTS = {
    "ours": OLD,
    "reference": None,  # the authors' code
    "obs-scale": {**OLD, "obs_scale": SCALE},
    "obs-scale+proxy-lr-3e-3": {**OLD, "obs_scale": SCALE, "proxy_lr": 3e-3},
    "obs-scale+gamma-0.98": {**OLD, "obs_scale": SCALE, "gamma": 0.98},  # the recipe now
    "proxy-lr-3e-4": {**OLD, "proxy_lr": 3e-4},
    "expl-0.05": {**OLD, "expl_noise": 0.05},
    "ann": {**OLD, "algo": "td3", "neuron": "ann"},
    # after the fix's 5-seed run left seed 4 spinning: what stops the late drift?
    "recipe+lr-linear": {**OLD, "obs_scale": SCALE, "gamma": 0.98, "lr_schedule": "linear"},
    "recipe+start-5k": {**OLD, "obs_scale": SCALE, "gamma": 0.98, "start_steps": 5_000},
    "recipe+velocity/8": {**OLD, "obs_scale": [1.0, 1.0, 0.125], "gamma": 0.98},
}


def curve(run: Path) -> list[tuple[int, float]]:
    path = run / "metrics.csv"
    if not path.is_file():
        return []
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("eval_return_mean") not in (None, "")]
    return [(int(r["step"]), float(r["eval_return_mean"])) for r in rows]


def finished(run: Path) -> bool:
    c = curve(run)
    return bool(c) and c[-1][0] >= STEPS


def train(variant: str, seed: int, run: Path, reference: Path | None) -> None:
    if VARIANTS[variant] is None:
        if reference is None:
            sys.exit("error: the reference variant needs --reference (a checkout at 8d1635f)")
        command = [sys.executable, str(ROOT / "benchmarks" / "reference_run.py"),
                   "--reference", str(reference), "--env", "Pendulum-v1", "--seed", str(seed),
                   "--steps", str(STEPS), "--start-steps", str(BASE["start_steps"]),
                   "--eval-every", str(BASE["eval_every"]), "--checkpoint-every", "2000",
                   "--out", str(run)]  # fmt: skip
        subprocess.run(command, check=True)
        return
    from neurodeploy.train.config import resolve
    from neurodeploy.train.loop import train as train_run

    cfg, _ = resolve("pendulum", {**BASE, **VARIANTS[variant], "seed": seed})
    train_run(cfg, run, resume=(run / "config.toml").exists(), progress=False)


def summary(c: list[tuple[int, float]]) -> tuple[float, float, float]:
    """final (mean of the last 3 evaluations), max, and the drop from max to final."""
    returns = [r for _, r in c]
    final = float(np.mean(returns[-3:]))
    return final, max(returns), max(returns) - final


def plot(curves: dict[str, dict[int, list]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [v for v in VARIANTS if curves.get(v)]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), sharey=True)
    for ax, name in zip(np.atleast_1d(axes), names, strict=True):
        for seed, c in sorted(curves[name].items()):
            ax.plot([s / 1e3 for s, _ in c], [r for _, r in c], label=f"seed {seed}")
        ax.set_title(name)
        ax.set_xlabel("env steps (k)")
        ax.axhline(-250, color="grey", lw=0.5, ls="--")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("eval return (10 episodes)")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/pendulum-diagnosis"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--train", action="store_true", help="train the missing runs")
    parser.add_argument("--reference", type=Path, help="reference checkout (8d1635f)")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        sys.exit(f"error: unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.train:
        for seed in seeds:  # seed-major: every variant gets seed 0 before any gets seed 1
            for variant in variants:
                run = args.runs / variant / f"seed{seed}"
                if not finished(run):
                    train(variant, seed, run, args.reference)
    curves: dict[str, dict[int, list]] = {}
    lines = ["| variant | seeds | final (mean of last 3 evals) | max eval | max - final "
             "| per seed final |", "|---|---|---|---|---|---|"]  # fmt: skip
    for variant in VARIANTS:
        runs = sorted((args.runs / variant).glob("seed*"))
        done = {int(r.name[4:]): curve(r) for r in runs if finished(r)}
        if not done:
            continue
        curves[variant] = done
        s = np.array([summary(c) for c in done.values()])
        per_seed = ", ".join(f"s{k} {summary(c)[0]:.0f}" for k, c in sorted(done.items()))
        lines.append(
            f"| {variant} | {len(done)} | {s[:, 0].mean():.1f} ± {s[:, 0].std():.1f} | "
            f"{s[:, 1].mean():.1f} ± {s[:, 1].std():.1f} | {s[:, 2].mean():.1f} | {per_seed} |"
        )
    if not curves:
        sys.exit("nothing finished yet")
    plot(curves)
    body = (
        f"Pendulum-v1, {STEPS:,} steps, 1,000 random start steps (5,000 in recipe+start-5k), "
        "evaluation every 1,000 steps "
        "(10 deterministic episodes, the same initial states for every run). Mean ± std over "
        "the finished seeds. Curves: `docs/figures/pendulum_diagnosis.png`.\n\n" + "\n".join(lines)
    )
    print(body)
    write_section("pendulum_diagnosis", "Pendulum PT-LIF late decline: diagnosis (issue 15)", body)


if __name__ == "__main__":
    main()
