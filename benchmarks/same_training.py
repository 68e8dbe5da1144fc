"""Does a newer commit train exactly as an older one? The check before a long run moves on.

A long sweep runs from a frozen worktree of the commit it started at (long_runs.sh). It may
continue at a newer commit only if that commit trains every method bit for bit as the old
one, and resumes the old one's checkpoints the same way. This script checks both on a short
run of a MuJoCo recipe (``--recipe``, default hopper) per method (PT-LIF, vanilla LIF, ANN TD3):

1. train ``--steps`` at OLD and at NEW from scratch: the policies must be equal bitwise;
2. resume OLD's run at NEW and at OLD for ``--more`` steps: equal bitwise again.

    python benchmarks/same_training.py cf73df0 ba8ec40

Prints one line per method, writes them to docs/results.md and exits 1 if any differs. CPU
training is deterministic here (one torch thread), so "equal" means every tensor of policy.pt
and every logged value of metrics.csv is identical.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METHODS = {"pt-lif": ("pt-td3", "lif"), "lif": ("td3", "lif"), "ann": ("td3", "ann")}


def worktree(commit: str, where: Path) -> Path:
    path = where / commit
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(path),
                    commit], check=True, capture_output=True)  # fmt: skip
    return path


def train(
    code: Path, recipe: str, out: Path, algo: str, neuron: str, steps: int, resume: bool
) -> None:
    short = ["start_steps=1000", "eval_every=800", "eval_episodes=2"]
    cmd = [sys.executable, "-m", "neurodeploy.cli", "train", recipe, "--algo", algo,
           "--neuron", neuron, "--steps", str(steps), "--out", str(out)]  # fmt: skip
    cmd += [arg for option in short for arg in ("--set", option)]
    if resume:
        cmd.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(code)}
    done = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise SystemExit(f"error: train {recipe} at {code.name} failed: {last}")


def same_run(a: Path, b: Path) -> bool:
    """policy.pt bitwise, and metrics.csv's values (returns, losses, rates) in the columns
    both commits write; the wall-clock column steps_per_s aside."""
    sa = torch.load(a / "policy.pt", weights_only=False)["state_dict"]
    sb = torch.load(b / "policy.pt", weights_only=False)["state_dict"]
    ra, rb = (list(csv.DictReader((d / "metrics.csv").open())) for d in (a, b))
    shared = (set(ra[0]) & set(rb[0])) - {"steps_per_s"}
    rows = [{k: r[k] for k in shared} for r in ra] == [{k: r[k] for k in shared} for r in rb]
    return rows and sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--recipe", default="hopper", help="a MuJoCo recipe: hopper, idp, ...")
    ap.add_argument("--steps", type=int, default=1600, help="first run (1000 are random)")
    ap.add_argument("--more", type=int, default=800, help="steps added on resume")
    args = ap.parse_args()
    ok, lines = True, []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        old, new = worktree(args.old, tmp), worktree(args.new, tmp)
        try:
            for name, (algo, neuron) in METHODS.items():
                runs = {c: tmp / f"{name}-{c.name}" for c in (old, new)}
                for code, out in runs.items():
                    train(code, args.recipe, out, algo, neuron, args.steps, resume=False)
                fresh = same_run(runs[old], runs[new])
                crossed = tmp / f"{name}-resumed-at-new"
                shutil.copytree(runs[old], crossed)
                more = args.steps + args.more
                train(old, args.recipe, runs[old], algo, neuron, more, resume=True)
                train(new, args.recipe, crossed, algo, neuron, more, resume=True)
                resumed = same_run(runs[old], crossed)
                ok &= fresh and resumed
                lines.append(f"| {name} | {'equal' if fresh else 'DIFFERENT'} "
                             f"| {'equal' if resumed else 'DIFFERENT'} |")  # fmt: skip
                print(lines[-1])
        finally:
            for code in (old, new):
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(code)], capture_output=True)  # fmt: skip
    body = (
        f"Recipe {args.recipe}, {args.steps:,} steps from scratch (1,000 random), then "
        f"{args.more:,} more resumed from {args.old}'s checkpoint. Compared: every tensor of "
        "policy.pt and metrics.csv's values (evaluation returns, losses, firing rates). A "
        f"frozen long run may move from {args.old} to {args.new} only where both columns say "
        f"equal.\n\n| method | {args.old} vs {args.new} from scratch | {args.old} checkpoint "
        f"resumed at {args.new} vs at {args.old} |\n|---|---|---|\n" + "\n".join(lines)
    )
    title = f"Same training at {args.old} and {args.new}: {args.recipe}"
    write_section(f"same_training_{args.recipe}_{args.new}", title, body)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
