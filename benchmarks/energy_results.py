"""Energy-aware training results (issue 21): return against nJ per inference of deployed policies.

The sweeps run with ``bash benchmarks/long_runs.sh pendulum-pareto`` (SOP budgets at 256-256
and two smaller unbudgeted sizes, seeds 0-2, 15k steps) and ``... hopper-budget`` (two
budgets, seed 0, 100k steps). ``publish`` copies each finished trial's compact artefacts to
``results/<name>/``, with the trials it borrows from the training results (``BORROWS``: the
ANN, and Hopper's unbudgeted PT-LIF), runs ``neurodeploy report`` there (every spiking trial
exported to loihi2 and counted by bench-energy on the emulator; its report kept as
``TRIAL/energy.json`` with policy.pt's SHA-256, so ``neurodeploy report results/<name>``
rebuilds the table and pareto.png without exporting), and records the table in
docs/results.md.

    python benchmarks/energy_results.py publish pendulum-pareto
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402
from training_results import BORROWED, ROOT, publish_sweep  # noqa: E402

from neurodeploy.errors import NeurodeployError  # noqa: E402
from neurodeploy.sweep.report import markdown, mixed_settings, write_report  # noqa: E402
from neurodeploy.sweep.spec import point_label, read_manifest  # noqa: E402
from neurodeploy.train.config import resolve  # noqa: E402

SWEEPS = {
    "pendulum-pareto": "neurodeploy sweep pendulum --seeds 0-2 --grid 'sop_budget:hidden="
    "10000:[256,256],5000:[256,256],0:[256,256],20000:[256,256],2500:[256,256],0:[128,128],"
    "0:[64,64]' --steps 15000",
    "hopper-budget": "neurodeploy sweep hopper --seeds 0 --grid sop_budget=75000,50000 "
    "--steps 100000",
}
SEEDS = 3  # issue 21: "final, mean of 3 seeds"
ANN_DIR = "algo=td3,neuron=ann"  # the training results' ANN group ...
PT_LIF_DIR = "algo=pt-td3,neuron=lif"  # ... and their PT-LIF group
# What each sweep borrows from the training results (issue 15) of its recipe and steps, the
# seeds it sweeps: (training results, [(their group, the point here, the folder here)]). The
# ANN gives the picture its reference line's return (these sweeps train no ANN); hopper-budget
# has no unbudgeted grid point and borrows the unbudgeted PT-LIF as sop_budget=0.
BORROWS = {
    "pendulum-pareto": ("pendulum", [(ANN_DIR, {"algo": "td3", "neuron": "ann"}, "ann")]),
    "hopper-budget": (
        "hopper",
        [
            (PT_LIF_DIR, {"sop_budget": 0}, "unbudgeted"),
            (ANN_DIR, {"algo": "td3", "neuron": "ann"}, "ann"),
        ],
    ),
}


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


def borrowed(name: str, results: Path, seeds: list[int]) -> list[tuple[dict, Path]]:
    """The trials ``name`` borrows (:data:`BORROWS`) of ``seeds``, as (manifest item, run dir)
    pairs for ``publish_sweep``; :func:`check_borrowed` holds them to the sweep's settings."""
    training, groups = BORROWS[name]
    pairs = []
    for group, point, folder in groups:
        for seed in seeds:
            run = results / training / group / f"seed{seed}"
            if not (run / "config.toml").is_file():
                continue  # not trained (yet): the point has fewer seeds
            item = {"name": f"{folder}/seed{seed}", "dir": f"{folder}/seed{seed}",
                    "point": point, "seed": seed, BORROWED: os.path.relpath(run, ROOT)}  # fmt: skip
            pairs.append((item, run))
    return pairs


def check_borrowed(sweep_dir: Path, pairs: list[tuple[dict, Path]]) -> None:
    """Each borrowed trial must be the trial this sweep would have trained at its point: its
    config.toml equal to the sweep's recipe resolved with its overrides, the point and the
    seed (an option an older config does not name counts at its default). The sweep's own
    trials are held to the same first: a recipe changed since cannot vouch for anything. A
    borrowed point may not be one the sweep trains (its seeds would count twice)."""
    manifest = read_manifest(sweep_dir)
    own = [t for t in manifest["trials"] if BORROWED not in t]
    labels = {point_label(t["point"]) for t in own}
    for item, run in pairs:
        if point_label(item["point"]) in labels:
            sys.exit(f"error: {run} would be borrowed as {point_label(item['point'])}, a point "
                     f"{sweep_dir} trains itself")  # fmt: skip
    trained = [
        (t, sweep_dir / t["dir"]) for t in own if (sweep_dir / t["dir"] / "config.toml").is_file()
    ]
    for item, run in [*trained, *pairs]:
        wanted = {**manifest["overrides"], **item["point"], "seed": item["seed"]}
        expected = resolve(manifest["recipe"], wanted)[0].to_dict()
        differs = mixed_settings([expected, tomllib.loads((run / "config.toml").read_text())])
        if not differs:
            continue
        if BORROWED not in item:
            sys.exit(f"error: {run} differs in {', '.join(differs)} from recipe "
                     f"{manifest['recipe']!r} as it is now: the recipe changed since the sweep "
                     "trained, so the borrowed trials cannot be checked against it")  # fmt: skip
        sys.exit(f"error: {run} was trained with other {', '.join(differs)} than {sweep_dir} "
                 f"would train at {point_label(item['point'])}: it cannot be borrowed")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("publish",))
    parser.add_argument("name", choices=sorted(SWEEPS))
    parser.add_argument("--runs", type=Path, default=ROOT / "runs")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    runs, results = args.runs.resolve(), args.results.resolve()
    os.chdir(ROOT)  # the report names its folder relative to the repository
    sweep_dir = runs / "sweeps" / args.name
    extra = borrowed(args.name, results, read_manifest(sweep_dir)["seeds"])
    check_borrowed(sweep_dir, extra)
    dest = publish_sweep(sweep_dir, results / args.name, extra)
    report = write_report(Path(os.path.relpath(dest)), progress=sys.stderr.isatty())
    text = markdown(report)
    for image in ("curves.png", "pareto.png"):
        text = text.replace(f"]({image})", f"](../results/{args.name}/{image})")
    body = (
        f"Sweep: `{SWEEPS[args.name]}` (`bash benchmarks/long_runs.sh {args.name}`). Rebuild "
        f"with `neurodeploy report results/{args.name}`.\n\n" + text.split("\n", 2)[2]
    )
    training, groups = BORROWS[args.name]
    folders = ", ".join(f"`{folder}/` ({group})" for group, _, folder in groups)
    seeds = ", ".join(sorted({str(item["seed"]) for item, _ in extra}))
    if extra:
        body += (
            f"\n\nBorrowed, not trained by this sweep: {folders} are issue 15's trials of "
            f"`results/{training}` (seeds {seeds}), each checked to be the trial this sweep "
            "would train at its point (recipe, steps and settings), and counted here like "
            "the rest; the ANN's return is the reference line's."
        )
    if args.name == "pendulum-pareto":  # issue 21's checks are Pendulum's
        body += acceptance(report)
    print(body)
    write_section(f"energy_{args.name}", f"Energy-aware training: {args.name} (issue 21)", body)


if __name__ == "__main__":
    try:
        main()
    except NeurodeployError as exc:  # e.g. no sweep in runs/ (a fresh machine): one line
        sys.exit(f"error: {exc}")
