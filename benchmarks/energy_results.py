"""Energy-aware training results (issue 21): return against nJ per inference of deployed policies.

The sweeps run with ``bash benchmarks/long_runs.sh pendulum-pareto`` (SOP budgets at 256-256
and two smaller unbudgeted sizes, seeds 0-2, 15k steps) and ``... hopper-budget`` (two
budgets, seed 0, 100k steps). ``publish`` copies each finished trial's compact artefacts to
``results/<name>/``, runs ``neurodeploy report`` there (every spiking trial exported to
loihi2 and counted by bench-energy on the emulator; its report kept as ``TRIAL/energy.json``
with policy.pt's SHA-256, so ``neurodeploy report results/<name>`` rebuilds the table and
pareto.png without exporting), and records the table in docs/results.md.

    python benchmarks/energy_results.py publish pendulum-pareto
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402
from training_results import BORROWED, ROOT, publish_sweep  # noqa: E402

from neurodeploy.errors import NeurodeployError  # noqa: E402
from neurodeploy.sweep.report import markdown, mixed_settings, write_report  # noqa: E402
from neurodeploy.sweep.spec import read_manifest  # noqa: E402

SWEEPS = {
    "pendulum-pareto": "neurodeploy sweep pendulum --seeds 0-2 --grid 'sop_budget:hidden="
    "10000:[256,256],5000:[256,256],0:[256,256],20000:[256,256],2500:[256,256],0:[128,128],"
    "0:[64,64]' --steps 15000",
    "hopper-budget": "neurodeploy sweep hopper --seeds 0 --grid sop_budget=75000,50000 "
    "--steps 100000",
}
SEEDS = 3  # issue 21: "final, mean of 3 seeds"
# the training results (issue 15) of each sweep's recipe and steps: their ANN's return is the
# reference line's, and hopper-budget (no unbudgeted grid point) borrows their unbudgeted
# PT-LIF trials of its seeds as its point sop_budget=0
TRAINING = {"pendulum-pareto": "pendulum", "hopper-budget": "hopper"}
ANN_DIR = "algo=td3,neuron=ann"  # the training results' ANN group
PT_LIF_DIR = "algo=pt-td3,neuron=lif"  # ... and their PT-LIF group
BORROWS = {"hopper-budget"}
UNBUDGETED = "unbudgeted"  # the borrowed trials' folder in results/<name>
VARIED = {"algo", "neuron", "sop_budget", "hidden", "seed"}  # what the sweeps may vary


def acceptance(report: dict) -> str:
    """Issue 21's three checks per budgeted grid point, over at least 3 seeds: the return
    >= -250 (mean of the seeds) both in training's final evaluations and as bench-energy
    measured the deployed policy, loihi2 energy <= 0.5x the ANN's, and loihi2-sim's return
    within 5 % of torch's on every seed. A point with fewer seeds fails."""
    pareto = report.get("pareto")
    if not pareto or "loihi2" not in pareto["profiles"]:
        return ""
    lines = [
        f"\n\nIssue 21's checks per budgeted grid point (at least {SEEDS} seeds; return >= -250 "
        "as the mean of the seeds, both training's final return and the deployed return "
        "bench-energy measured on the exported bundle; loihi2 nJ <= 0.5x the ANN's; "
        "|loihi2-sim - torch| <= 5 % of torch for every seed, the worst seed's gap shown):",
        "",
        "| group | seeds | final return | deployed return | loihi2 SNN / ANN | "
        "loihi2-sim vs torch | all |",
        "|---|---|---|---|---|---|---|",
    ]
    measured = {g["label"]: g for g in pareto["groups"] if g["kind"] == "snn"}
    for label in (g["label"] for g in report["groups"] if g["point"].get("sop_budget")):
        g = measured.get(label)
        if g is None:  # a budget with no finished seed yet: a row that says so, not a gap
            lines.append(f"| {label} | 0 no | not measured | not measured | n/a | n/a | no |")
            continue
        ret, deployed = g["final_return"]["mean"], g["deployed_return"]["mean"]
        ratio, gap = g["snn_over_ann"]["loihi2"], g["sim_gap_worst"]
        ok = [
            len(g["seeds"]) >= SEEDS,
            ret >= -250,
            deployed >= -250,
            ratio is not None and ratio["mean"] <= 0.5,
            gap is not None and gap <= 0.05,
        ]
        ratio_text = "n/a" if ratio is None else f"{ratio['mean']:.3f}x"
        gap_text = "n/a" if gap is None else f"{100 * gap:.1f} %"
        mark = ["yes" if x else "no" for x in ok]
        lines.append(
            f"| {g['label']} | {len(g['seeds'])} {mark[0]} | {ret:.1f} {mark[1]} | "
            f"{deployed:.1f} {mark[2]} | {ratio_text} {mark[3]} | {gap_text} {mark[4]} | "
            f"{'yes' if all(ok) else 'no'} |"
        )
    return "\n".join(lines)


def differing(configs: list[Path]) -> list[str]:
    """The training options in which these trials' config.toml differ, besides the keys the
    sweeps vary (an option an older config does not name counts at its default)."""
    loaded = [tomllib.loads(p.read_text()) for p in configs]
    return mixed_settings([{k: v for k, v in c.items() if k not in VARIED} for c in loaded])


def ann_return(folder: Path, sweep: Path) -> str:
    """The ANN's return at the same settings, from the training results' sweep (these sweeps
    train no ANN): a sentence, or one saying why there is none (no ANN group, or its trials
    were trained with other settings than every trial here, the grid's keys aside)."""
    where = os.path.relpath(folder, ROOT)
    ann = sorted(folder.glob(f"{ANN_DIR}/seed*/config.toml"))
    others = differing([*ann, *sweep.glob("*/seed*/config.toml")])
    report = json.loads((folder / "report.json").read_text())
    found = [g for g in report["groups"] if g["label"] == ANN_DIR and g["final_return"]]
    if not ann or not found:
        return f"\n\nNo ANN return to draw beside this sweep: `{where}` has no finished ANN trial."
    if others:
        return (
            f"\n\nNo ANN return quoted beside this sweep: the ANN trials of `{where}` were "
            f"trained with other {', '.join(others)} than the trials here."
        )
    r = found[0]["final_return"]
    return (
        f"\n\nThe ANN's return, for the reference line the sweep cannot draw: TD3 with the "
        f"256-256 ANN actor, same recipe and steps (`{where}`, {r['n']} seeds): final "
        f"{r['mean']:.1f} ± {r['std']:.1f}."
    )


def borrowed(name: str, results: Path, runs: Path) -> list[tuple[dict, Path]]:
    """The training results' unbudgeted PT-LIF trials of the sweep's seeds, as (manifest item,
    run dir) pairs for ``publish_sweep``: the point sop_budget=0 of a sweep that trains none.
    :func:`check_borrowed` holds them to the sweep's settings."""
    if name not in BORROWS:
        return []
    source = results / TRAINING[name] / PT_LIF_DIR
    sweep = read_manifest(runs / "sweeps" / name)
    pairs = []
    for seed in sweep["seeds"]:
        run = source / f"seed{seed}"
        if not (run / "config.toml").is_file():
            continue  # not trained (yet): the point has fewer seeds
        item = {
            "name": f"{UNBUDGETED}/seed{seed}",
            "dir": f"{UNBUDGETED}/seed{seed}",
            "point": {"sop_budget": 0},
            "seed": seed,
            BORROWED: os.path.relpath(run, ROOT),
        }
        pairs.append((item, run))
    return pairs


def check_borrowed(name: str, pairs: list[tuple[dict, Path]], runs: Path) -> None:
    """A borrowed trial must share every setting with the sweep's own (the grid's keys aside)."""
    own = sorted((runs / "sweeps" / name).glob("*/seed*/config.toml"))
    others = differing([*own, *(run / "config.toml" for _, run in pairs)])
    if own and pairs and others:
        sys.exit(f"error: {pairs[0][1]} was trained with other {', '.join(others)} than the "
                 f"trials of {name}: it cannot stand for its sop_budget=0")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("publish",))
    parser.add_argument("name", choices=sorted(SWEEPS))
    parser.add_argument("--runs", type=Path, default=ROOT / "runs")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    runs, results = args.runs.resolve(), args.results.resolve()
    os.chdir(ROOT)  # the report names its folder relative to the repository
    extra = borrowed(args.name, results, runs)
    check_borrowed(args.name, extra, runs)
    dest = publish_sweep(runs / "sweeps" / args.name, results / args.name, extra)
    report = write_report(Path(os.path.relpath(dest)), progress=sys.stderr.isatty())
    text = markdown(report)
    for image in ("curves.png", "pareto.png"):
        text = text.replace(f"]({image})", f"](../results/{args.name}/{image})")
    body = (
        f"Sweep: `{SWEEPS[args.name]}` (`bash benchmarks/long_runs.sh {args.name}`). Rebuild "
        f"with `neurodeploy report results/{args.name}`.\n\n" + text.split("\n", 2)[2]
    )
    if extra:
        training = os.path.relpath(results / TRAINING[args.name], ROOT)
        body += (
            f"\n\nThe point sop_budget=0 (`{UNBUDGETED}/`) is borrowed, not trained by this "
            f"sweep: the unbudgeted PT-LIF of `{training}` "
            "(issue 15's results), same recipe, steps and settings, seeds "
            f"{', '.join(str(item['seed']) for item, _ in extra)}; exported and counted here "
            "like the rest."
        )
    body += ann_return(results / TRAINING[args.name], dest)
    if args.name == "pendulum-pareto":  # issue 21's checks are Pendulum's
        body += acceptance(report)
    print(body)
    write_section(f"energy_{args.name}", f"Energy-aware training: {args.name} (issue 21)", body)


if __name__ == "__main__":
    try:
        main()
    except NeurodeployError as exc:  # e.g. no sweep in runs/ (a fresh machine): one line
        sys.exit(f"error: {exc}")
