"""`neurodeploy report`: a sweep directory -> report.json, report.md, curves.png.

A sweep over several ``sop_budget`` or ``hidden`` values also gets return against energy per
inference of the deployed policies (pareto.png and a table; ``neurodeploy/sweep/pareto.py``).

What it reads, per trial listed in ``sweep.json``: ``config.toml`` (``steps``),
``metrics.csv`` (the deterministic evaluation returns) and, when the sweep wrote it,
``trial.json`` (firing rate, SOPs or MACs per action). A trial counts once its
``metrics.csv`` reaches the sweep's ``steps`` (``--steps`` as ``sweep.json`` records it, else
the config's) and its config was trained for exactly that budget: a trial finished before the
sweep was extended is listed as unfinished until it has been resumed to the new budget.

Per trial, over its evaluation rows ``R_k`` (``eval_return_mean`` at step ``k``):

    final return       = mean of the last three evaluations R_{K-2..K} (one evaluation
                         alone swings with a single bad episode)
    max average return = max_k R_k                   (the paper's Table 1 metric)

Per group (one grid point), over its finished seeds: mean and population std
(``numpy.std``, ddof = 0). The average performance gain of a method against a
baseline (Xu et al., Proxy Target, NeurIPS 2025), over the matched groups e that differ
only in the baseline key (e.g. one per environment):

    APG = (1/|E|) * sum_e (method_e / baseline_e) - 1

with ``method_e`` and ``baseline_e`` the group means of the max average return.
It needs positive returns (a ratio of negative returns inverts better and worse).
"""

from __future__ import annotations

import csv
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.errors import ConfigError, SweepError
from neurodeploy.sweep.pareto import (
    ENERGY_EPISODES,
    PROFILES,
    measure_trials,
    pareto_markdown,
    pareto_summary,
    plot_pareto,
    wants_pareto,
)
from neurodeploy.sweep.spec import (
    format_value,
    grid_keys,
    grid_points,
    point_label,
    read_manifest,
    read_trial,
    split_values,
    stats,
    toml_value,
)
from neurodeploy.train.checkpoint import atomic_write_bytes, write_together
from neurodeploy.train.config import TrainConfig

REPORT_FORMAT = "neurodeploy-sweep-report/2"
FINAL_EVALUATIONS = 3  # the final return averages this many last evaluations


def apg(method: Mapping[str, float], baseline: Mapping[str, float]) -> float:
    """Average performance gain: ``mean_e(method[e] / baseline[e]) - 1`` over the same keys e.

    >>> round(apg({"Hopper": 3385, "Ant": 5383}, {"Hopper": 3410, "Ant": 4770}), 4)
    0.0606
    """
    if not method or set(method) != set(baseline):
        raise ValueError(
            f"APG needs the same groups on both sides: {sorted(method)} vs {sorted(baseline)}"
        )
    if any(v <= 0 for v in [*method.values(), *baseline.values()]):
        raise ValueError("APG needs positive returns (a ratio of negative returns is reversed)")
    return float(np.mean([method[e] / baseline[e] for e in method])) - 1.0


@dataclass
class TrialRun:
    """One trial's evaluation curve and its sweep record."""

    name: str
    point: dict[str, Any]
    seed: int
    steps: list[int]
    returns: list[float]  # eval_return_mean per evaluation
    finished: bool
    record: dict
    dir: str = ""  # the run directory, relative to the sweep directory
    config: dict = field(default_factory=dict)  # its config.toml ({} when unreadable)

    @property
    def cost(self) -> dict:
        """The trial record's cost per action (firing rate, SOPs, MACs), only when it was
        measured on this budget's final policy: a trial extended to more steps keeps the
        previous budget's figures in trial.json until its new measurement lands."""
        done = self.record.get("status") == "done"
        return self.record if done and self.record.get("steps") == self.config.get("steps") else {}

    @property
    def final_return(self) -> float:
        return float(np.mean(self.returns[-FINAL_EVALUATIONS:]))

    @property
    def max_avg_return(self) -> float:
        return max(self.returns)


def read_curve(metrics_csv: Path) -> tuple[list[int], list[float]]:
    """(steps, eval_return_mean) of the evaluation rows with a finite return."""
    steps, returns = [], []
    if not metrics_csv.is_file():
        return steps, returns
    with metrics_csv.open() as f:
        for row in csv.DictReader(f):
            try:
                step, value = int(row["step"]), float(row["eval_return_mean"])
            except (KeyError, TypeError, ValueError):
                continue
            if math.isfinite(value):
                steps.append(step)
                returns.append(value)
    return steps, returns


def load_trials(sweep_dir: Path) -> tuple[dict, list[TrialRun]]:
    manifest = read_manifest(sweep_dir)
    budget = (manifest.get("overrides") or {}).get("steps")  # the sweep's --steps, if given
    runs = []
    for item in manifest["trials"]:
        run_dir = Path(sweep_dir) / item["dir"]
        steps, returns = read_curve(run_dir / "metrics.csv")
        try:
            config = tomllib.loads((run_dir / "config.toml").read_text())
            target = int(config["steps"])
        except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError):
            config, target = {}, None
        if budget is not None and target != int(budget):
            target = None  # trained for another budget (a sweep extended since): unfinished
        finished = bool(steps) and target is not None and steps[-1] >= target
        runs.append(
            TrialRun(
                item["name"], item["point"], item["seed"], steps, returns, finished,
                read_trial(run_dir), item["dir"], config,
            )
        )  # fmt: skip
    return manifest, runs


def parse_baseline(text: str, grid: dict[str, list]) -> dict[str, Any]:
    """``"neuron=ann"`` or ``"algo=td3,neuron=ann"`` -> the grid values it names."""
    points = grid_points(grid)
    base: dict[str, Any] = {}
    for pair in split_values(text):
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"--baseline {text!r}: expected KEY=VALUE of the grid, e.g. neuron=ann"
            )
        if key not in grid_keys(grid):
            keys = ", ".join(grid_keys(grid)) or "none (the sweep has no --grid)"
            raise ConfigError(
                f"--baseline {text!r}: {key!r} is not a grid key of this sweep ({keys})"
            )
        known = {format_value(p[key]): p[key] for p in points}
        value = format_value(toml_value(raw.strip()))
        if value not in known:
            raise ConfigError(
                f"--baseline {text!r}: {key} has no value {raw.strip()!r} ({', '.join(known)})"
            )
        base[key] = known[value]
    if not any(_matches(p, base) for p in points):
        raise ConfigError(f"--baseline {text!r}: no grid point has all of these values")
    return base


def _matches(point: dict[str, Any], values: dict[str, Any]) -> bool:
    return all(k in point and format_value(point[k]) == format_value(v) for k, v in values.items())


def build_report(
    sweep_dir: Path, baselines: str | list[str] | None = None
) -> tuple[dict, list[TrialRun]]:
    """The report as a dict (report.json) and the trial runs behind it (for the plot).

    ``baselines``: one or more grid ``KEY=VALUE`` selections; each gives an APG table.
    """
    sweep_dir = Path(sweep_dir)
    manifest, runs = load_trials(sweep_dir)
    grid = manifest.get("grid", {})
    if isinstance(baselines, str):
        baselines = [baselines]
    bases = [parse_baseline(b, grid) for b in baselines or []]
    if not any(r.finished for r in runs):
        raise SweepError(
            f"{sweep_dir}: no trial has finished yet ({len(runs)} listed in sweep.json); "
            "run or resume the sweep with `neurodeploy sweep` first"
        )
    groups, order = {}, []
    for run in runs:
        label = point_label(run.point)
        if label not in groups:
            groups[label] = {"label": label or "(all)", "point": run.point, "runs": []}
            order.append(label)
        groups[label]["runs"].append(run)
    rows = []
    for label in order:
        g = groups[label]
        done = [r for r in g["runs"] if r.finished]
        rows.append(
            {
                "label": g["label"],
                "point": g["point"],
                "trials": len(g["runs"]),
                "finished": len(done),
                "seeds": [r.seed for r in done],
                "final_return": stats([r.final_return for r in done]),
                "max_avg_return": stats([r.max_avg_return for r in done]),
                "firing_rate": stats([r.cost.get("firing_rate") for r in done]),
                "sops_per_action": stats([r.cost.get("sops_per_action") for r in done]),
                "macs_per_action": stats([r.cost.get("macs_per_action") for r in done]),
                "mixed_settings": mixed_settings([r.config for r in done]),
            }
        )
    report = {
        "format": REPORT_FORMAT,
        "sweep": str(sweep_dir),
        "recipe": manifest.get("recipe_name"),
        "seeds": manifest.get("seeds"),
        "grid": grid,
        "overrides": manifest.get("overrides", {}),
        "groups": rows,
        "unfinished": [r.name for r in runs if not r.finished],
        "baselines": list(baselines or []),  # as given, so the report can be rebuilt
        "apg": [apg_table(rows, base) for base in bases],
    }
    return report, runs


def mixed_settings(configs: list[dict]) -> list[str]:
    """The options in which one group's seeds were trained differently (the seed aside),
    e.g. seeds started after the recipe changed; ``steps`` too (a sweep run without
    ``--steps`` counts each trial at its own budget). A training option some configs
    do not name (added to neurodeploy since) counts at its default there; other keys only
    some configs name are not compared."""
    defaults = option_defaults()
    keys = set().union(*configs) if configs else set()
    mixed = []
    for k in sorted(keys - {"seed"}):
        if not all(k in c for c in configs) and k not in defaults:
            continue
        values = [c.get(k, defaults.get(k)) for c in configs]
        if any(v != values[0] for v in values):
            mixed.append(k)
    return mixed


def option_defaults() -> dict[str, Any]:
    """Every training option's default value (as config.toml writes it)."""
    return {
        f.name: f.default_factory() if f.default is MISSING else f.default
        for f in fields(TrainConfig)
        if f.default is not MISSING or f.default_factory is not MISSING
    }


def apg_table(rows: list[dict], base: dict[str, Any]) -> dict:
    """APG of every other value of the baseline keys against ``base``, matched on the rest."""

    def context(point: dict) -> str:
        return point_label({k: v for k, v in point.items() if k not in base}) or "(all)"

    baseline = {
        context(r["point"]): r for r in rows if _matches(r["point"], base) and r["max_avg_return"]
    }
    methods: dict[str, dict] = {}
    shared: dict[str, dict] = {}
    for r in rows:
        outside = not set(base) <= set(r["point"])  # e.g. the reference implementation
        if _matches(r["point"], base) or not r["max_avg_return"] or outside:
            continue
        name = point_label({k: r["point"][k] for k in base})
        ctx = context(r["point"])
        if ctx in baseline:
            pair = over_shared_seeds([r, baseline[ctx]], "max_avg_return")
            if pair is not None:
                (mine, theirs), seeds = pair
                methods.setdefault(name, {})[ctx] = mine
                shared.setdefault(name, {})[ctx] = (theirs, seeds)
    out = []
    for name, by_ctx in methods.items():
        matched = {c: shared[name][c][0] for c in by_ctx}
        try:
            value, note = apg(by_ctx, matched), None
        except ValueError as exc:
            value, note = None, str(exc)
        out.append(
            {
                "method": name,
                "apg": value,
                "apg_percent": None if value is None else 100 * value,
                # a ratio of negative returns inverts better and worse: none is given
                "ratios": {
                    c: by_ctx[c] / matched[c] if by_ctx[c] > 0 and matched[c] > 0 else None
                    for c in by_ctx
                },
                "seeds": {c: shared[name][c][1] for c in by_ctx},
                "note": note,
            }
        )
    return {"baseline": point_label(base), "metric": "max_avg_return", "methods": out}


def over_shared_seeds(rows: list[dict], metric: str) -> tuple[list[float], list[int]] | None:
    """Each group's mean of ``metric`` over the seeds every one of them finished, and those
    seeds (None when they share none): groups compared on the same seeds, not one group's
    extra seed against another's fewer."""
    per_seed = [dict(zip(r["seeds"], r[metric]["values"], strict=True)) for r in rows]
    seeds = sorted(set.intersection(*(set(p) for p in per_seed)))
    if not seeds:
        return None
    return [float(np.mean([p[k] for k in seeds])) for p in per_seed], seeds


def _grid_value(key: str, value: Any) -> str:
    if ":" in key:  # linked keys: one value per key
        return ":".join(format_value(v) for v in value)
    return format_value(value)


def _envs(report: dict) -> list[str]:
    """The environments the grid sweeps, in order (empty when ``env`` is not a grid key)."""
    envs = [str(g["point"]["env"]) for g in report["groups"] if "env" in g["point"]]
    return list(dict.fromkeys(envs))


# --- Markdown and the plot -------------------------------------------------------------------


def _pm(s: dict | None, spec: str = "{:.1f}", scale: float = 1.0, unit: str = "") -> str:
    if not s:
        return "-"
    mean, std = s["mean"] * scale, s["std"] * scale
    text = spec.format(mean) if s["n"] == 1 else f"{spec.format(mean)} ± {spec.format(std)}"
    return text + unit


def markdown(report: dict) -> str:
    grid = "; ".join(
        f"{k} = {', '.join(_grid_value(k, v) for v in vs)}" for k, vs in report["grid"].items()
    )
    lines = [
        f"# Sweep report: {report['recipe']}",
        "",
        f"Sweep `{report['sweep']}`; seeds {', '.join(map(str, report['seeds']))}"
        + (f"; grid {grid}" if grid else "")
        + ". Returns are the deterministic evaluation returns of `metrics.csv`, mean ± std "
        "over the finished seeds (population std).",
        "",
        "| group | seeds | final return | max average return | firing rate | SOPs/action "
        "| MACs/action |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["groups"]:
        lines.append(
            f"| {r['label']} | {r['finished']}/{r['trials']} | {_pm(r['final_return'])} | "
            f"{_pm(r['max_avg_return'])} | {_pm(r['firing_rate'], '{:.1f}', 100, ' %')} | "
            f"{_pm(r['sops_per_action'], '{:.0f}')} | {_pm(r['macs_per_action'], '{:.0f}')} |"
        )
    for r in report["groups"]:
        if r.get("mixed_settings"):
            keys = ", ".join(r["mixed_settings"])
            lines += ["", f"**Mixed settings**: the seeds of {r['label']} were trained with "
                      f"different {keys} (their config.toml)."]  # fmt: skip
    if _envs(report):
        lines += ["", *_env_table(report)]
    for a in report["apg"]:
        lines += [
            "",
            f"## APG against {a['baseline']}",
            "",
            "APG = mean over matched groups e of (method_e / baseline_e) - 1, on the "
            "means of the max average return (Proxy Target paper) over the seeds both "
            "groups finished.",
            "",
            "| method | APG | method / baseline per group | seeds |",
            "|---|---|---|---|",
        ]
        for m in a["methods"]:
            value = f"n/a: {m['note']}" if m["apg"] is None else f"{m['apg_percent']:+.2f} %"
            known = {c: v for c, v in m["ratios"].items() if v is not None}
            ratios = ", ".join(f"{c}: {v:.3f}" for c, v in known.items()) or "-"
            seeds = sorted({k for c in m.get("seeds", {}).values() for k in c})
            lines.append(
                f"| {m['method']} | {value} | {ratios} | {', '.join(map(str, seeds)) or '-'} |"
            )
        if not a["methods"]:
            lines.append("| - | no finished group to compare with this baseline yet | - | - |")
    if report.get("pareto"):
        lines += ["", *pareto_markdown(report["pareto"])]
    lines += [
        "",
        f"Definitions: final return = mean of the last {FINAL_EVALUATIONS} evaluation returns; "
        "max average return "
        "= the best evaluation return of a run (paper Table 1). Firing rate = spikes per "
        "neuron per timestep over the hidden and output populations, and SOPs/action = "
        "presynaptic spikes x fan-out, both counted in one closed-loop episode of the final "
        "policy (`trial.json`); MACs/action for ANN actors.",
        "",
        "![learning curves](curves.png)",
    ]
    if report["unfinished"]:
        lines += ["", "Not finished (left out): " + ", ".join(report["unfinished"])]
    return "\n".join(lines) + "\n"


def _env_table(report: dict) -> list[str]:
    """Table 1 layout: one row per method (the other grid keys), one column per env."""
    envs = _envs(report)
    methods: dict[str, dict] = {}
    for r in report["groups"]:
        if "env" not in r["point"]:  # e.g. a reference implementation: in the main table
            continue
        rest = point_label({k: v for k, v in r["point"].items() if k != "env"}) or "(all)"
        methods.setdefault(rest, {})[str(r["point"]["env"])] = r["max_avg_return"]
    head = "| method | " + " | ".join(map(str, envs)) + " |"
    lines = ["## Max average return per environment", "", head, "|---" * (len(envs) + 1) + "|"]
    for name, by_env in methods.items():
        lines.append(f"| {name} | " + " | ".join(_pm(by_env.get(e), "{:.0f}") for e in envs) + " |")
    return lines


def plot_curves(report: dict, runs: list[TrialRun], path: Path) -> None:
    """Evaluation return against steps: mean over seeds per group, band = ± 1 std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _envs(report) or [""]
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    axes = axes.ravel()
    for row in report["groups"]:
        done = [r for r in runs if r.finished and point_label(r.point) == point_label(row["point"])]
        if not done:
            continue
        steps = sorted({s for r in done for s in r.steps})
        grid = np.full((len(done), len(steps)), np.nan)
        for i, r in enumerate(done):
            for s, v in zip(r.steps, r.returns, strict=True):
                grid[i, steps.index(s)] = v
        mean, std = np.nanmean(grid, axis=0), np.nanstd(grid, axis=0)
        env = str(row["point"].get("env", ""))
        ax = axes[panels.index(env) if env in panels else 0]
        label = point_label({k: v for k, v in row["point"].items() if k != "env"}) or "all"
        # one evaluation is a point: a line through it would draw nothing
        marker = "o" if len(steps) == 1 else None
        (line,) = ax.plot(steps, mean, marker=marker, label=f"{label} (n={len(done)})")
        ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        if len(steps) == 1:
            ax.errorbar(steps, mean, yerr=std, color=line.get_color(), capsize=4)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax, title in zip(axes, panels, strict=False):
        sweep = Path(str(report.get("sweep", ""))).name
        ax.set_title(f"{title or report['recipe']} · sweep {sweep}", fontsize=10)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("eval return")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a panel with no finished group has none
            ax.legend(fontsize=8, title="method", title_fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def stored_baselines(folder: Path) -> list[str]:
    """The ``--baseline`` selections of the report.json in ``folder`` (none if there is none)."""
    try:
        report = json.loads((Path(folder) / "report.json").read_text())
    except (OSError, json.JSONDecodeError):
        return []
    found = report.get("baselines") if isinstance(report, dict) else None
    return [str(b) for b in found] if isinstance(found, list) else []


def write_report(
    sweep_dir: Path,
    baselines: str | list[str] | None = None,
    out: Path | None = None,
    hardware: list[str] | tuple[str, ...] = PROFILES,
    energy_episodes: int = ENERGY_EPISODES,
    progress: bool = False,
) -> dict:
    """Write report.json, report.md and curves.png (and pareto.png) into ``out`` (default:
    the sweep dir), all or none (:func:`write_together`).

    When the grid sweeps several ``sop_budget`` or ``hidden`` values, every finished trial is
    first exported and measured by bench-energy (``hardware`` profiles, ``energy_episodes``
    episodes; kept in the trial, see ``neurodeploy/sweep/pareto.py``), and the report gains
    the return-against-energy table (``pareto``) and pareto.png.
    """
    report, runs = build_report(sweep_dir, baselines)
    if wants_pareto(report["grid"]):
        measured = measure_trials(
            Path(sweep_dir), runs, list(hardware), energy_episodes, progress=progress
        )
        report["pareto"] = pareto_summary(report, runs, measured, list(hardware), energy_episodes)

    def write(folder: Path) -> None:
        atomic_write_bytes(folder / "report.json", (json.dumps(report, indent=2) + "\n").encode())
        atomic_write_bytes(folder / "report.md", markdown(report).encode())
        plot_curves(report, runs, folder / "curves.png")
        if "pareto" in report:
            plot_pareto(report["pareto"], folder / "pareto.png")

    write_together(Path(out) if out else Path(sweep_dir), write)
    return report
