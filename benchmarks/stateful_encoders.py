"""Which observation encoding lets a stateful SNN learn Pendulum with TD3 from scratch?

Runs RUNS/<encoder>-s<seed> of the ``pendulum-stateful`` recipe with ``update_every = 1`` and
6k steps, one per encoder: ``population`` (Gaussian receptive fields + integrate-and-fire,
the exportable default), ``place`` (the same fields, spike while activation > 0.5) and
``direct`` (the observation as input current, as in the paper; graded spikes on Loihi 2).
Finished runs are reused (their config.toml is printed with the table); --train trains
missing ones.

    python benchmarks/stateful_encoders.py --runs runs/encoders --train
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402
from returns import eval_curve  # noqa: E402

from neurodeploy.train.config import read_config, resolve  # noqa: E402
from neurodeploy.train.loop import train  # noqa: E402

ENCODERS = ("population", "place", "direct")
STEPS = 6_000


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=Path, default=Path("runs/encoders"))
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lines = [
        "| encoder | eval return at 2k / 4k / 6k steps | best | updates per env step |",
        "|---|---|---|---|",
    ]
    for encoder in ENCODERS:
        out = args.runs / f"{encoder}-s{args.seed}"
        if args.train and not (out / "metrics.csv").exists():
            overrides = {"encoder": encoder, "update_every": 1, "steps": STEPS, "seed": args.seed}
            train(resolve("pendulum-stateful", overrides)[0], out, progress=False)
        if not (out / "metrics.csv").exists():
            lines.append(f"| {encoder} | not run | | |")
            continue
        cfg = read_config(out / "config.toml")
        curve = dict(eval_curve(out / "metrics.csv"))
        at = " / ".join(f"{curve[s]:.0f}" if s in curve else "-" for s in (2000, 4000, 6000))
        lines.append(f"| {encoder} | {at} | {max(curve.values()):.0f} | 1/{cfg.update_every} |")
    body = (
        f"Stateful PT-LIF 64-64 (T = 1, decay 0.9, Lava delays modelled) on Pendulum-v1, "
        f"seed {args.seed}, TD3 from scratch, sequences of 100 with 50 burn-in, batch 16 "
        "segments. Evaluation: 5 deterministic episodes.\n\n" + "\n".join(lines)
    )
    print(body)
    write_section("stateful-encoders", "Stateful pendulum: observation encoders (issue 7)", body)


if __name__ == "__main__":
    main()
