"""Two forms of the SOP-budget term in the actor loss, side by side (issue 21).

``plain``: the Lagrangian's ``lambda * SOP / B`` (neurodeploy before 4d5ffc5);
``excess``: ``lambda * max(SOP / B - 1, 0)``, the shipped form (``neurodeploy/train/budget.py``).
Both are Pendulum-v1 PT-LIF runs of the ``pendulum`` recipe with the same budget and seed;
the table lists, per evaluation, the deterministic return, the batch's SOPs per action and the
multiplier, from each run's ``metrics.csv``. The runs' ``config.toml`` and ``metrics.csv``
are committed under ``results/sop-budget-forms/<form>/``.

    python benchmarks/sop_budget_forms.py --plain results/sop-budget-forms/plain \\
        --excess results/sop-budget-forms/excess
"""

from __future__ import annotations

import argparse
import csv
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

FIELDS = ("eval_return_mean", "sops_per_action", "sop_lambda")


def read_run(run: Path) -> tuple[dict, dict[int, dict]]:
    """A run's config and its metrics rows by step."""
    config = tomllib.loads((run / "config.toml").read_text())
    with (run / "metrics.csv").open() as f:
        rows = {int(r["step"]): r for r in csv.DictReader(f)}
    return config, rows


def cell(row: dict | None, key: str) -> str:
    value = (row or {}).get(key) or ""
    if not value:
        return "-"
    number = float(value)
    return f"{number:.3g}" if key == "sop_lambda" else f"{number:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plain", type=Path, required=True, help="run dir of the plain form")
    parser.add_argument("--excess", type=Path, required=True, help="run dir of the shipped form")
    args = parser.parse_args()
    runs = {"plain": read_run(args.plain), "excess": read_run(args.excess)}
    configs = {name: cfg for name, (cfg, _) in runs.items()}
    for key in ("env", "algo", "seed", "sop_budget", "sop_lr", "hidden", "start_steps"):
        if configs["plain"].get(key) != configs["excess"].get(key):
            sys.exit(f"error: the runs differ in {key}: {[c.get(key) for c in configs.values()]}")
    cfg = configs["excess"]
    steps = sorted(set(runs["plain"][1]) | set(runs["excess"][1]))
    lines = [
        f"{cfg['env']}, {cfg['algo']} {cfg['neuron']} {cfg['hidden']}, seed {cfg['seed']}, "
        f"`sop_budget = {cfg['sop_budget']:g}`, `sop_lr = {cfg['sop_lr']:g}`, start_steps "
        f"{cfg['start_steps']:,}. Per evaluation: the deterministic return, the SOPs per action "
        "of the actor-update batches since the last row, and the multiplier lambda. "
        "plain = `lambda * SOP / B` (the Lagrangian's term, before 4d5ffc5); excess = "
        "`lambda * max(SOP / B - 1, 0)` (shipped). Runs: "
        f"`{args.plain.as_posix()}`, `{args.excess.as_posix()}`."
        + "".join(
            f" The {name} run stopped at step {max(rows):,} of {configs[name]['steps']:,}."
            for name, (_, rows) in runs.items()
            if max(rows) < configs[name]["steps"]
        ),
        "",
        "| step | return plain | return excess | SOPs/action plain | SOPs/action excess "
        "| lambda plain | lambda excess |",
        "|---|---|---|---|---|---|---|",
    ]
    for step in steps:
        plain, excess = runs["plain"][1].get(step), runs["excess"][1].get(step)
        cells = [cell(r, key) for key in FIELDS for r in (plain, excess)]
        lines.append(f"| {step:,} | " + " | ".join(cells) + " |")
    write_section(
        "sop_budget_forms", "SOP budget: the plain Lagrangian silences the actor (issue 21)",
        "\n".join(lines),
    )  # fmt: skip
    print("\n".join(lines))


if __name__ == "__main__":
    main()
