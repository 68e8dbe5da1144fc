"""Final and max evaluation return of PT-LIF, vanilla LIF and ANN TD3 at three budgets.

Budgets: Pendulum-v1 15k steps, InvertedDoublePendulum-v4 50k, Hopper-v4 100k; seeds 0, 1, 2.
Each run lives in RUNS/<budget>-<method>-s<seed>; finished runs are reused, missing ones are
trained when --train is given (long: run it in the background and report what finished).
The reference implementation's row (Hopper-v4, seed 0) is read from --reference-log, a CSV of
``step,eval_return`` produced by running the reference at the same budget.

    python benchmarks/returns.py --runs runs/returns --train --budgets pendulum
    python benchmarks/returns.py --runs runs/returns          # tabulate what finished
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

from neurodeploy.train.config import resolve  # noqa: E402
from neurodeploy.train.loop import train  # noqa: E402

BUDGETS = {
    "pendulum": ("pendulum", 15_000, {}),
    "idp": ("idp", 50_000, {"start_steps": 10_000, "eval_every": 5_000}),
    "hopper": ("hopper", 100_000, {"start_steps": 25_000, "eval_every": 5_000}),
}
METHODS = {
    "pt-lif": {"algo": "pt-td3", "neuron": "lif"},
    "lif": {"algo": "td3", "neuron": "lif"},
    "ann": {"algo": "td3", "neuron": "ann"},
}
SEEDS = (0, 1, 2)


def run_dir(runs: Path, budget: str, method: str, seed: int) -> Path:
    return runs / f"{budget}-{method}-s{seed}"


def eval_curve(path: Path) -> list[tuple[int, float]]:
    with path.open() as f:
        return [(int(r["step"]), float(r["eval_return_mean"])) for r in csv.DictReader(f)]


def finished(runs: Path, budget: str, method: str, seed: int) -> list[tuple[int, float]] | None:
    metrics = run_dir(runs, budget, method, seed) / "metrics.csv"
    if not metrics.exists():
        return None
    curve = eval_curve(metrics)
    return curve if curve and curve[-1][0] >= BUDGETS[budget][1] else None


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=Path, default=Path("runs/returns"))
    parser.add_argument("--train", action="store_true", help="train the missing runs")
    parser.add_argument("--budgets", default=",".join(BUDGETS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--reference-log", type=Path, help="reference Hopper-v4 seed-0 CSV")
    args = parser.parse_args()
    budgets, methods = args.budgets.split(","), args.methods.split(",")
    if args.train:
        for budget in budgets:
            recipe, steps, extra = BUDGETS[budget]
            for method in methods:
                for seed in SEEDS:
                    if finished(args.runs, budget, method, seed):
                        continue
                    out = run_dir(args.runs, budget, method, seed)
                    cfg, _ = resolve(
                        recipe, {**extra, **METHODS[method], "steps": steps, "seed": seed}
                    )
                    train(cfg, out, resume=(out / "config.toml").exists(), progress=False)
    lines = [
        "| budget | method | seeds finished | final eval return | max eval return |",
        "|---|---|---|---|---|",
    ]
    for budget in BUDGETS:
        for method in METHODS:
            curves = [c for s in SEEDS if (c := finished(args.runs, budget, method, s))]
            if not curves:
                lines.append(
                    f"| {budget} ({BUDGETS[budget][1]:,}) | {method} | 0 | not run | not run |"
                )
                continue
            final = [c[-1][1] for c in curves]
            best = [max(r for _, r in c) for c in curves]
            lines.append(
                f"| {budget} ({BUDGETS[budget][1]:,}) | {method} | {len(curves)} | "
                f"{np.mean(final):.1f} ± {np.std(final):.1f} | "
                f"{np.mean(best):.1f} ± {np.std(best):.1f} |"
            )
    if args.reference_log and args.reference_log.exists():
        with args.reference_log.open() as f:
            curve = [(int(r["step"]), float(r["eval_return"])) for r in csv.DictReader(f)]
        lines.append(
            f"| hopper (100,000) | reference PT-LIF (8d1635f) | 1 | {curve[-1][1]:.1f} | "
            f"{max(r for _, r in curve):.1f} |"
        )
    else:
        lines.append("| hopper (100,000) | reference PT-LIF (8d1635f) | 0 | not run | not run |")
    body = (
        "Mean ± std over the finished seeds (0, 1, 2) of the final and the maximum evaluation "
        "return (10 deterministic episodes per evaluation). Rows marked `not run` did not fit "
        "in the machine time available so far.\n\n" + "\n".join(lines)
    )
    print(body)
    write_section("returns", "Returns (issue 4)", body)


if __name__ == "__main__":
    main()
