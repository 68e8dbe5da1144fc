"""Return against energy per inference, for sweeps over ``sop_budget`` or ``hidden`` (issue 21).

``neurodeploy report`` adds this part when the sweep's grid has more than one value of
``sop_budget`` or of ``hidden``: a table in report.md, ``pareto`` in report.json, and
pareto.png (one panel per environment and hardware profile).

The energy is that of the deployed policy, never a training-time estimate. Per finished
spiking trial (:func:`trial_energy`):

    TRIAL/bundle-loihi2/   `neurodeploy export TRIAL --target loihi2`: the fixed-point policy.net
        energy.json        `neurodeploy bench-energy` on that bundle: the fixed-point network in
                           closed loop on the emulator (spike-identical to Lava fixed_pt),
                           ``episodes`` episodes, episode i seeded ``seed + i``

Both stay in the trial, so the next report only reads them. A bundle exported from another
policy.pt than the trial's (compared by SHA-256: trained further since) is exported again; an
energy.json counted with other episodes, another seed or fewer profiles is counted again.

From the stored counts, per hardware profile (``neurodeploy/hardware/energy.py``):

    nJ per inference, spiking trial = energy(profile, ops, ann_macs, lava_steps)["snn_nj"]
                                      (what bench-energy reports for that profile)
    nJ per inference, ANN trial     = MACs x (mac_pj + ann_weight_read_pj), with MACs the sum
                                      of in x out over its linear layers
    ANN reference, per environment  = bench-energy's ANN counterpart, obs -> 256 -> 256 -> act
    SNN / ANN                       = a trial's energy / the ANN reference's

Per grid point: mean and population std over its measured seeds of the final return (the
report's: training's deterministic evaluation, in torch), the deployed return (bench-energy's,
on the emulator), the SOPs per action (bench-energy's) and the nJ per profile. The ANN
reference takes its return from the sweep's ANN group of the same size, when there is one.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.errors import BundleError, ConfigError, NeurodeployError
from neurodeploy.sweep.spec import format_value, grid_points, point_label, stats

PARETO_KEYS = ("sop_budget", "hidden")  # a grid with several values of one of these
BUNDLE = "bundle-loihi2"  # inside each trial, as `neurodeploy export RUN --target loihi2`
MARK = "exported-by-report"  # in a bundle the report exported: the only kind it replaces
STORED = "energy.json"  # inside each trial: bench-energy's report, with policy.pt's SHA-256
ENERGY_EPISODES = 3  # bench-energy's default
ENERGY_SEED = 0  # bench-energy's: every trial meets the same initial states
PROFILES = ("loihi", "loihi2", "paper", "cmos45nm")  # bench-energy's default profiles
SIMULATED = ("torch", "loihi2-sim")  # bench-energy's closed-loop returns the table compares


def wants_pareto(grid: dict[str, list]) -> bool:
    """Whether the grid sweeps more than one value of ``sop_budget`` or ``hidden``."""
    points = grid_points(grid)
    return any(len({format_value(p[k]) for p in points if k in p}) > 1 for k in PARETO_KEYS)


# --- measuring: export and bench-energy, per trial ----------------------------------------


def read_energy(folder: Path) -> dict:
    """``folder``'s energy.json ({} when there is none or it cannot be read)."""
    try:
        stored = json.loads((Path(folder) / STORED).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return stored if isinstance(stored, dict) else {}


def is_current(stored: dict, profiles: list[str], episodes: int, seed: int) -> bool:
    """Whether a stored bench-energy report was counted as asked (emulator, episodes, seed),
    with the empty steps after the windows, and lists every profile asked for."""
    needed = ("ops", "ann_macs", "lava_steps_per_action", "return_mean", "env")
    return (
        stored.get("counted_on") == "emulator"
        and "sops_outside_windows" in (stored.get("ops") or {})  # older counts run again
        and stored.get("episodes") == episodes
        and stored.get("latency_episodes") == episodes
        and set(SIMULATED) <= set(stored.get("simulation_latency") or {})
        and stored.get("seed") == seed
        and all(k in stored for k in needed)
        and set(profiles) <= set(stored.get("profiles") or {})
    )


def trial_energy(
    run_dir: Path, profiles: list[str], episodes: int = ENERGY_EPISODES, seed: int = ENERGY_SEED
) -> dict:
    """bench-energy's report (energy.json) on the trial's deployed fixed-point policy.

    Exports ``run_dir/policy.pt`` to ``run_dir/bundle-loihi2`` unless that bundle was exported
    from the same policy.pt, and runs bench-energy on it unless its energy.json is current.
    A bundle there from another policy is replaced only when the report exported it (its
    ``exported-by-report`` file; the trial was extended since); one a user exported (from
    best.pt, say) is kept and the trial refused.
    Its closed-loop runs on torch and loihi2-sim use the same episodes as the count, so the
    deployed policy's return on Lava is compared with torch's on the same initial states.

    The report is also kept as ``run_dir/energy.json`` with policy.pt's SHA-256: while the
    policy and the counting options are unchanged, a later report reads it and needs no bundle
    (so committed results rebuild without exporting; a changed policy.pt is counted again).
    """
    from neurodeploy.export.bundle import export_bundle, sha256, verify_bundle
    from neurodeploy.hardware.bench import bench_energy
    from neurodeploy.train.checkpoint import atomic_write_bytes

    run_dir = Path(run_dir)
    policy_sha = sha256(run_dir / "policy.pt")
    kept = read_energy(run_dir)
    if kept.get("policy_sha256") == policy_sha and is_current(kept, profiles, episodes, seed):
        return kept
    bundle = run_dir / BUNDLE
    if bundle.exists():
        if not (bundle / "manifest.json").is_file():
            raise BundleError(
                f"{bundle} is not a deploy bundle (no manifest.json); move it away and run "
                "the report again"
            )
        files = verify_bundle(bundle)["files"]
        if "policy.net" not in files or files.get("policy.pt") != policy_sha:
            if not (bundle / MARK).is_file():
                raise BundleError(
                    f"{bundle} was exported from another policy than {run_dir / 'policy.pt'} "
                    "(best.pt?), not by the report; move it away (export best.pt with --out "
                    "elsewhere) and run the report again"
                )
            shutil.rmtree(bundle)  # the report's own export of an earlier policy.pt: redo it
    if not bundle.exists():  # exported and marked as the report's, then put in place at once
        staged = run_dir / f".{BUNDLE}.report"
        shutil.rmtree(staged, ignore_errors=True)
        export_bundle(run_dir, "loihi2", staged)
        (staged / MARK).write_text(
            "`neurodeploy report` exported this bundle from policy.pt; a later report replaces "
            "it when policy.pt changes\n"
        )
        staged.rename(bundle)
    stored = read_energy(bundle)
    if not is_current(stored, profiles, episodes, seed):
        stored = bench_energy(bundle, profiles, episodes, seed, latency_episodes=episodes)
    stored = {**stored, "policy_sha256": policy_sha}
    atomic_write_bytes(run_dir / STORED, (json.dumps(stored, indent=1) + "\n").encode())
    return stored


def measure_trials(
    sweep_dir: Path,
    runs: list,
    profiles: list[str],
    episodes: int = ENERGY_EPISODES,
    seed: int = ENERGY_SEED,
    progress: bool = False,
) -> dict[str, dict]:
    """Per finished trial (by name), what the Pareto picture needs from its policy.

    Spiking: bench-energy's counts on the deployed policy (:func:`trial_energy`). ANN: its
    MACs per inference. A trial that cannot be measured (an export refused, say) gets
    ``{"error": "..."}`` and the others go on.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from neurodeploy.export.bundle import load_policy
    from neurodeploy.hardware.energy import linear_macs, profiles_used
    from neurodeploy.snn import SpikingActor

    if episodes < 1:
        raise ConfigError(f"--energy-episodes must be at least 1, got {episodes}")
    if not profiles:
        raise ConfigError("--hardware: name at least one profile of hardware/, e.g. loihi2")
    profiles_used(list(profiles))  # an unknown profile fails before any export
    done = [r for r in runs if r.finished]
    measured: dict[str, dict] = {}
    bar = Progress(
        TextColumn("[bold]energy"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} trials"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not progress,
    )
    with bar:
        task = bar.add_task("", total=len(done))
        for run in done:
            bar.update(task, description=run.name)
            run_dir = Path(sweep_dir) / (run.dir or run.name)
            try:
                actor, env_id = load_policy(run_dir)
                if isinstance(actor, SpikingActor):
                    e = trial_energy(run_dir, list(profiles), episodes, seed)
                    measured[run.name] = {
                        "kind": "snn",
                        "env": e["env"],
                        "bundle": f"{run.dir or run.name}/{BUNDLE}",
                        "ops": e["ops"],
                        "ann_macs": int(e["ann_macs"]),
                        "lava_steps_per_action": int(e["lava_steps_per_action"]),
                        "deployed_return": float(e["return_mean"]),
                        **{
                            f"{b}_return": float(e["simulation_latency"][b]["return_mean"])
                            for b in SIMULATED
                        },
                    }
                else:
                    measured[run.name] = {"kind": "ann", "env": env_id, "macs": linear_macs(actor)}
            except NeurodeployError as exc:
                measured[run.name] = {"error": str(exc)}
            bar.advance(task)
    return measured


# --- the table: from stored numbers only -----------------------------------------------------


def pareto_summary(
    report: dict,
    runs: list,
    measured: dict[str, dict],
    profiles: list[str],
    episodes: int = ENERGY_EPISODES,
    seed: int = ENERGY_SEED,
) -> dict:
    """report.json's ``pareto``: per trial, per grid point and per ANN reference, the return
    and the nJ per inference of every profile (see the module docstring)."""
    from neurodeploy.hardware import energy as E

    loaded = E.profiles_used(list(profiles))
    trials, references = [], {}
    for run in runs:
        m = measured.get(run.name)
        if not run.finished or m is None or "error" in m:
            continue
        row: dict[str, Any] = {
            "name": run.name,
            "point": run.point,
            "seed": run.seed,
            "kind": m["kind"],
            "env": m["env"],
            "final_return": run.final_return,
            "deployed_return": m.get("deployed_return"),
            "torch_return": m.get("torch_return"),
            "loihi2-sim_return": m.get("loihi2-sim_return"),
            "sim_gap": _gap(m.get("loihi2-sim_return"), m.get("torch_return")),
            "sops_per_action": m["ops"]["sops"] if m["kind"] == "snn" else None,
            "sops_outside_windows": m["ops"].get("sops_outside_windows")
            if m["kind"] == "snn"
            else None,
            "macs_per_action": m.get("macs"),
            "bundle": m.get("bundle"),
            "nj": {},
            "snn_over_ann": {},
        }
        if m["kind"] == "snn":
            references.setdefault(m["env"], m["ann_macs"])
            for profile in loaded:
                e = E.energy(profile, m["ops"], m["ann_macs"], m["lava_steps_per_action"])
                row["nj"][profile.name] = e["snn_nj"]
                row["snn_over_ann"][profile.name] = e["snn_over_ann"]
        else:
            for profile in loaded:
                row["nj"][profile.name] = _nj(E.ann_pj(profile, m["macs"]))
        trials.append(row)
    for row in trials:  # an ANN trial against the reference of its environment
        if row["kind"] == "ann" and row["env"] in references:
            for profile in loaded:
                ref = E.ann_pj(profile, references[row["env"]])
                mine = E.ann_pj(profile, row["macs_per_action"])
                row["snn_over_ann"][profile.name] = None if ref is None else mine / ref

    groups = []
    for g in report["groups"]:
        mine = [t for t in trials if point_label(t["point"]) == point_label(g["point"])]
        if not mine:
            continue
        group = {
            "label": g["label"],
            "point": g["point"],
            "kind": mine[0]["kind"],
            "env": mine[0]["env"],
            "seeds": [t["seed"] for t in mine],
            "final_return": stats([t["final_return"] for t in mine]),
            "deployed_return": stats([t["deployed_return"] for t in mine]),
            "torch_return": stats([t["torch_return"] for t in mine]),
            "loihi2-sim_return": stats([t["loihi2-sim_return"] for t in mine]),
            "sops_per_action": stats([t["sops_per_action"] for t in mine]),
            "sops_outside_windows": stats([t["sops_outside_windows"] for t in mine]),
            "macs_per_action": stats([t["macs_per_action"] for t in mine]),
            "nj": {p.name: stats([t["nj"][p.name] for t in mine]) for p in loaded},
            "snn_over_ann": {
                p.name: stats([t["snn_over_ann"].get(p.name) for t in mine]) for p in loaded
            },
        }
        # the deployed mean return against torch's, on the same episodes; and the worst
        # seed's own gap (seeds off in opposite directions cancel in the means)
        sim, torch = group["loihi2-sim_return"], group["torch_return"]
        group["sim_gap"] = _gap(sim and sim["mean"], torch and torch["mean"])
        gaps = [t["sim_gap"] for t in mine]
        group["sim_gap_worst"] = None if None in gaps else max(gaps)
        groups.append(group)
    ann_reference = []
    for env, macs in references.items():
        same = [
            g for g in groups
            if g["kind"] == "ann" and g["env"] == env and g["macs_per_action"]["mean"] == macs
        ]  # fmt: skip
        ann_reference.append(
            {
                "env": env,
                "hidden": list(E.ANN_HIDDEN),
                "macs": macs,
                "nj": {p.name: _nj(E.ann_pj(p, macs)) for p in loaded},
                "final_return": same[0]["final_return"] if same else None,
                "return_from": same[0]["label"] if same else None,
            }
        )
    return {
        "profiles": [p.name for p in loaded],
        "assumptions": {p.name: p.assumptions for p in loaded},
        "counted_on": "emulator",
        "energy_episodes": episodes,
        "energy_seed": seed,
        "trials": trials,
        "groups": groups,
        "ann_reference": ann_reference,
        "not_measured": {n: m["error"] for n, m in measured.items() if "error" in m},
    }


def _gap(sim: float | None, torch: float | None) -> float | None:
    """|loihi2-sim - torch| / |torch|: how far the deployed return is from torch's."""
    if sim is None or torch is None or torch == 0 or not math.isfinite(sim - torch):
        return None  # no gap to judge: a NaN would pass any threshold in max()
    return abs(sim - torch) / abs(torch)


def _size(ref: dict) -> str:
    """An ANN reference's hidden sizes, e.g. ``256-256``."""
    return "-".join(map(str, ref["hidden"]))


def _nj(pj: float | None) -> float | None:
    return None if pj is None else pj / 1e3


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"


def _pm(s: dict | None) -> str:
    """mean ± std, the mean to 4 significant digits and the std to the same decimals."""
    if not s:
        return "-"
    mean = s["mean"]
    if s["n"] == 1 or abs(mean) >= 1e4 or mean == 0:
        return _num(mean) if s["n"] == 1 else f"{_num(mean)} ± {_num(s['std'])}"
    decimals = max(0, 3 - int(np.floor(np.log10(abs(mean)))))
    return f"{mean:.{decimals}f} ± {s['std']:.{decimals}f}"


def _sops(g: dict) -> str:
    outside = g.get("sops_outside_windows")
    return _pm(g["sops_per_action"]) + (f" (+{_pm(outside)} after)" if outside else "")


def _ratio(s: dict | None) -> str:
    if not s:
        return ""
    return f" ({s['mean']:.3g}×)"


def pareto_markdown(pareto: dict) -> list[str]:
    """report.md's section: one row per grid point, then one per ANN reference."""
    profiles = pareto["profiles"]
    episodes, seed = pareto["energy_episodes"], pareto["energy_seed"]
    lines = [
        "## Return against energy per inference",
        "",
        f"Energy of the deployed policy: each spiking trial exported to `TRIAL/{BUNDLE}` and "
        f"counted by `neurodeploy bench-energy` on the emulator (fixed point, {episodes} "
        f"episodes from seed {seed}); nJ per inference per hardware profile (docs/hardware.md), "
        "in brackets SNN / ANN against the ANN reference of the same environment "
        "(bench-energy's counterpart, obs -> 256 -> 256 -> act; an ANN trial: MACs x (MAC + "
        "weight read)). Final return: training's evaluation (torch), as above; deployed "
        f"return: bench-energy's, on the emulator, over its own {episodes} episodes (other "
        "initial states than training's evaluation, so the two columns are not comparable "
        "with each other: the deployed policy is compared with torch in the next column); "
        "loihi2-sim / torch: bench-energy's closed-loop "
        "returns of the bundle on Lava (fixed point) and on torch (float), same episodes, in "
        "brackets |loihi2-sim - torch| / |torch| of the means, then the worst seed's own. "
        "SOPs/action: bench-energy's, over those episodes, in the action windows (the table "
        "above counts one episode of `trial.json`, so the two differ a little), then in "
        "brackets those of the empty steps after the windows (the reset schedule's; the "
        "energy charges both; docs/hardware.md). Mean ± std over seeds.",
        "",
        "| group | seeds | final return | deployed return | loihi2-sim / torch | SOPs/action | "
        + " | ".join(f"{p} nJ" for p in profiles)
        + " |",
        "|---" * (6 + len(profiles)) + "|",
    ]
    for g in pareto["groups"]:
        cells = [_pm(g["nj"][p]) + _ratio(g["snn_over_ann"][p]) for p in profiles]
        sim = "-"
        if g.get("sim_gap") is not None:
            worst, several = g.get("sim_gap_worst"), len(g["seeds"]) > 1
            worst = f", worst seed {100 * worst:.1f} %" if several and worst is not None else ""
            sim = (
                f"{_pm(g['loihi2-sim_return'])} / {_pm(g['torch_return'])} "
                f"({100 * g['sim_gap']:.1f} %{worst})"
            )
        lines.append(
            f"| {g['label']} | {len(g['seeds'])} | {_pm(g['final_return'])} | "
            f"{_pm(g['deployed_return'])} | {sim} | {_sops(g)} | " + " | ".join(cells) + " |"
        )
    for ref in pareto["ann_reference"]:
        cells = ["-" if ref["nj"][p] is None else f"{_num(ref['nj'][p])} (1×)" for p in profiles]
        returned = _pm(ref["final_return"]) if ref["final_return"] else "- (no ANN in the sweep)"
        lines.append(
            f"| ANN reference, {ref['env']} ({_size(ref)}, {ref['macs']:,} MACs) | - | "
            f"{returned} | - | - | - | " + " | ".join(cells) + " |"
        )
    lines += ["", "![return against energy per inference](pareto.png)"]
    if pareto["not_measured"]:
        lines += [
            "",
            "Not measured (left out of the picture): "
            + "; ".join(f"{n} ({why})" for n, why in pareto["not_measured"].items()),
        ]
    return lines


def log_axis(ax) -> None:
    """A log x axis at least 6.25x wide, labelled at 1, 2 and 5 times the powers of ten (at
    the powers of ten alone beyond two decades, where 1-2-5 labels run together). A narrow
    span (one trial near the ANN line) otherwise gets matplotlib's minor labels written over
    each other; any span of 5x or more holds two 1-2-5 ticks (6.25x leaves a margin), and with
    one matplotlib's LogLocator falls back to linear ticks such as 300, 400."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    if hi / lo < 6.25:
        mid = math.sqrt(lo * hi)
        ax.set_xlim(mid / 2.5, mid * 2.5)
        lo, hi = ax.get_xlim()
    subs = (1.0,) if hi / lo > 200 else (1.0, 2.0, 5.0)
    ax.xaxis.set_major_locator(LogLocator(subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _num(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_pareto(pareto: dict, path: Path) -> None:
    """Write :func:`pareto_figure` to ``path`` (PNG, atomically)."""
    import matplotlib.pyplot as plt

    fig = pareto_figure(pareto)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


def pareto_figure(pareto: dict):
    """Final return against nJ per inference (log), one panel per environment and profile:
    each seed a small point, each grid point its mean with ± 1 std bars on both axes, the
    ANN reference a dotted vertical line (and a horizontal one at its return, when known)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profiles = pareto["profiles"]
    envs = list(dict.fromkeys(g["env"] for g in pareto["groups"])) or [""]
    fig, axes = plt.subplots(
        len(envs), len(profiles), figsize=(4.6 * len(profiles), 3.9 * len(envs)), squeeze=False
    )
    for r, env in enumerate(envs):
        groups = [g for g in pareto["groups"] if g["env"] == env]
        for c, profile in enumerate(profiles):
            ax = axes[r][c]
            for i, g in enumerate(groups):
                colour = f"C{i % 10}"
                mine = [
                    t
                    for t in pareto["trials"]
                    if point_label(t["point"]) == point_label(g["point"])
                ]
                x = [t["nj"][profile] for t in mine]
                if g["nj"][profile] is None or None in x:
                    continue
                ax.scatter(x, [t["final_return"] for t in mine], s=14, alpha=0.5, color=colour)
                nj, ret = g["nj"][profile], g["final_return"]
                ax.errorbar(
                    nj["mean"], ret["mean"], xerr=nj["std"], yerr=ret["std"],
                    fmt="s" if g["kind"] == "ann" else "o", color=colour, mec="black",
                    ms=7, capsize=3, label=f"{g['label']} (n={len(g['seeds'])})",
                )  # fmt: skip
                if g["kind"] == "ann":  # an ANN of the sweep: a line at its return
                    ax.axhline(ret["mean"], color=colour, ls="--", lw=0.9)
            for ref in pareto["ann_reference"]:
                if ref["env"] != env or ref["nj"][profile] is None:
                    continue
                ax.axvline(
                    ref["nj"][profile], color="black", ls=":", lw=1.2,
                    label=f"ANN {_size(ref)} (reference)",
                )  # fmt: skip
                if ref["final_return"]:
                    ax.axhline(ref["final_return"]["mean"], color="black", ls=":", lw=1.2)
            log_axis(ax)
            ax.set_title(f"{env} · {profile}", fontsize=10)
            ax.set_xlabel("nJ per inference (bench-energy, deployed)")
            ax.set_ylabel("final return")
            ax.grid(alpha=0.3, which="both")
        # one legend per environment, right of its row, not over the points (a front fills
        # its corner): every entry drawn on any of the row's panels, once
        entries: dict[str, Any] = {}
        for ax in axes[r]:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                entries.setdefault(label, handle)
        axes[r][-1].legend(
            entries.values(), entries.keys(), fontsize=7, loc="center left",
            bbox_to_anchor=(1.02, 0.5),
        )  # fmt: skip
    fig.tight_layout()
    return fig
