"""What a sweep is: a recipe, overrides, seeds and a grid; its trials and the manifest.

A sweep runs the cross product ``grid points x seeds``, seed by seed. With ``--grid
neuron=lif,ann --seeds 0-1`` that is four trials, each an ordinary run directory, in this
order::

    OUT/sweep.json                 the manifest: recipe, grid, seeds, overrides, trials
    OUT/neuron=lif/seed0/          config.toml, metrics.csv, policy.pt, checkpoint/, trial.json
    OUT/neuron=ann/seed0/
    OUT/neuron=lif/seed1/
    OUT/neuron=ann/seed1/

Several grid keys join with commas (``OUT/env=Hopper-v4,neuron=lif/seed0``); linked keys
(``--grid algo:neuron=pt-td3:lif,td3:ann``) vary together; without a grid the trials are
``OUT/seed<N>``. ``trial.json`` is the sweep's bookkeeping (status,
attempts, resumed-from step, SOPs per action); everything else is what
``neurodeploy train --out DIR`` writes, so ``export``, ``run`` and ``bench-energy`` work on
every trial.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.errors import ConfigError
from neurodeploy.train.checkpoint import atomic_write_bytes, checkpoint_step
from neurodeploy.train.config import TrainConfig, parse_option, parse_value, resolve

MANIFEST = "sweep.json"
MANIFEST_FORMAT = "neurodeploy-sweep/1"
# Overrides that may change between runs of one sweep: raising steps extends every trial.
MUTABLE_OVERRIDES = ("steps",)


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,2,7"`` and ``"0-2,7"`` also work."""
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if m is None:
            raise ConfigError(f"--seeds {text!r}: expected a range like 0-4 or a list like 0,2,7")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ConfigError(f"--seeds {text!r}: the range {lo}-{hi} is empty; write {hi}-{lo}")
        seeds += [s for s in range(lo, hi + 1) if s not in seeds]
    return seeds


def split_values(raw: str) -> list[str]:
    """Split on commas that are not inside [...] or quotes: ``[64,64],[256,256]`` -> 2 items."""
    items, depth, quote, current = [], 0, "", ""
    for ch in raw:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(current)
            current = ""
            continue
        current += ch
    items.append(current)
    return [item.strip() for item in items]


def toml_value(raw: str) -> Any:
    """A TOML value (``3e-4``, ``[64, 64]``, ``true``), else the bare string (``lif``)."""
    return parse_value(raw)


def config_keys() -> set[str]:
    return {f.name for f in fields(TrainConfig)}


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["neuron=lif,ann", "actor_lr=3e-4,1e-3"]`` -> {"neuron": ["lif", "ann"], ...}.

    Linked keys vary together instead of crossing: ``algo:neuron=pt-td3:lif,td3:ann``
    gives two points (pt-td3 with lif, td3 with ann), stored as
    ``{"algo:neuron": [["pt-td3", "lif"], ["td3", "ann"]]}``.
    """
    grid: dict[str, list[Any]] = {}
    known = config_keys()
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise ConfigError(f"--grid {item!r}: expected KEY=V1,V2,... (e.g. neuron=lif,ann)")
        keys = [k.strip() for k in key.split(":")]
        for k in keys:
            if k == "seed":
                raise ConfigError("--grid seed=...: seeds are swept with --seeds (e.g. 0-4)")
            if k not in known:
                raise ConfigError(
                    f"--grid {item!r}: unknown option {k!r}; it must be a training option "
                    f"(see docs/training.md), e.g. neuron, algo, env, actor_lr, hidden"
                )
            if k in grid_keys(grid) or keys.count(k) > 1:
                raise ConfigError(f"--grid {k}=... is given twice; list all values in one --grid")
        values: list[Any] = []
        for raw_value in split_values(raw):
            parts = [raw_value] if len(keys) == 1 else raw_value.split(":")
            if len(parts) != len(keys) or any(p.strip() == "" for p in parts):
                raise ConfigError(
                    f"--grid {item!r}: {raw_value!r} needs {len(keys)} value(s) joined by ':'"
                    if len(keys) > 1
                    else f"--grid {item!r}: an empty value (stray comma?)"
                )
            source = f"--grid {item!r}"
            parsed = [parse_option(k, p.strip(), source) for k, p in zip(keys, parts, strict=True)]
            values.append(parsed[0] if len(keys) == 1 else parsed)
        if len({json.dumps(v) for v in values}) != len(values):
            raise ConfigError(f"--grid {item!r}: a value is listed twice")
        grid[":".join(keys)] = values
    return grid


def grid_keys(grid: dict[str, list[Any]]) -> list[str]:
    """The training options a grid sets, linked keys split: ``algo:neuron`` -> algo, neuron."""
    return [k for key in grid for k in key.split(":")]


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The grid's cross product, first key outermost (in the order the keys were given)."""
    points: list[dict[str, Any]] = [{}]
    for key, values in grid.items():
        keys = key.split(":")
        assign = [dict(zip(keys, v, strict=True)) if len(keys) > 1 else {key: v} for v in values]
        points = [{**p, **a} for p in points for a in assign]
    return points


def format_value(value: Any) -> str:
    """A grid value as it appears in a directory name: ``[64, 64]`` -> ``64x64``."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, list):
        text = "x".join(format_value(v) for v in value)
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text)


def point_label(point: dict[str, Any]) -> str:
    """``{"env": "Hopper-v4", "neuron": "lif"}`` -> ``env=Hopper-v4,neuron=lif``."""
    return ",".join(f"{k}={format_value(v)}" for k, v in point.items())


@dataclass
class Trial:
    """One (grid point, seed): a run directory ``dir`` relative to the sweep directory."""

    point: dict[str, Any]
    seed: int

    @property
    def name(self) -> str:
        label = point_label(self.point)
        return f"{label}/seed{self.seed}" if label else f"seed{self.seed}"

    def overrides(self, base: dict[str, Any]) -> dict[str, Any]:
        return {**base, **self.point, "seed": self.seed}

    def to_dict(self) -> dict:
        return {"name": self.name, "dir": self.name, "point": self.point, "seed": self.seed}


@dataclass
class SweepSpec:
    """A recipe, the ``--set``/``--steps`` overrides, the seeds and the grid."""

    recipe: str | None
    seeds: list[int]
    grid: dict[str, list[Any]] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("--seeds: at least one seed is needed (e.g. --seeds 0-4)")
        if "seed" in self.overrides:
            raise ConfigError("--set seed=...: a sweep sets the seed; use --seeds (e.g. 0-4)")
        unknown = sorted(set(self.overrides) - config_keys())
        if unknown:
            raise ConfigError(f"--set: unknown option(s) {', '.join(unknown)}")
        both = sorted(set(self.overrides) & set(grid_keys(self.grid)))
        if both:
            raise ConfigError(f"{', '.join(both)} is given by both --set and --grid; keep one")

    def points(self) -> list[dict[str, Any]]:
        return grid_points(self.grid)

    def trials(self) -> list[Trial]:
        """Seed by seed: every grid point's first seed runs before any point's second, so a
        sweep stopped early has all of its points (at fewer seeds), not all seeds of a few."""
        trials = [Trial(p, s) for s in self.seeds for p in self.points()]
        names = [t.name for t in trials]
        if len(set(names)) != len(names):
            raise ConfigError(
                "--grid: two grid values give the same directory name "
                f"({sorted({n for n in names if names.count(n) > 1})[0]}); make them distinct"
            )
        return trials

    def resolve(self) -> tuple[str, list[tuple[Trial, TrainConfig]]]:
        """The recipe's name and every trial's full config; invalid values fail here, early."""
        name, configs = "custom", []
        for trial in self.trials():
            try:
                cfg, name = resolve(self.recipe, trial.overrides(self.overrides))
            except ConfigError as exc:
                raise ConfigError(f"sweep trial {trial.name}: {exc}") from None
            configs.append((trial, cfg))
        return name, configs

    def manifest(self, recipe_name: str, configs: list[tuple[Trial, TrainConfig]]) -> dict:
        """``configs`` records every trial's resolved settings (``steps`` aside), so a rerun
        after the recipe changed cannot train its unstarted trials with other settings."""
        return {
            "format": MANIFEST_FORMAT,
            "recipe": self.recipe,
            "recipe_name": recipe_name,
            "grid": self.grid,
            "seeds": self.seeds,
            "overrides": self.overrides,
            "trials": [t.to_dict() for t in self.trials()],
            "configs": {t.name: settings(cfg) for t, cfg in configs},
        }


def settings(cfg: TrainConfig) -> dict:
    """A trial's config as the manifest records it: everything but the mutable overrides."""
    return {k: v for k, v in cfg.to_dict().items() if k not in MUTABLE_OVERRIDES}


def read_manifest(sweep_dir: Path) -> dict:
    path = Path(sweep_dir) / MANIFEST
    if not path.is_file():
        raise ConfigError(
            f"{sweep_dir} is not a sweep directory (no {MANIFEST}); "
            "create one with `neurodeploy sweep RECIPE --out DIR`"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the sweep manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ConfigError(f"{path} is not a {MANIFEST_FORMAT} manifest")
    return manifest


def write_manifest(sweep_dir: Path, spec: SweepSpec) -> tuple[str, list[tuple[Trial, TrainConfig]]]:
    """Resolve the sweep and write ``sweep.json``; returns the recipe's name and every
    trial's config. A rerun must describe the same sweep (``steps`` may change) and resolve
    every trial to the settings recorded when it was first written."""
    sweep_dir = Path(sweep_dir)
    recipe_name, configs = spec.resolve()
    new = spec.manifest(recipe_name, configs)
    if (sweep_dir / MANIFEST).exists():
        old = read_manifest(sweep_dir)
        differs = manifest_difference(old, new)
        if differs:
            key, a, b = differs
            raise ConfigError(
                f"{sweep_dir / MANIFEST} describes another sweep ({key}: {a!r} there, "
                f"{b!r} now); rerun with the same options to resume it, or choose another --out"
            )
        check_settings(sweep_dir, old.get("configs"), new["configs"])
        check_budget(sweep_dir, configs)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(sweep_dir / MANIFEST, (json.dumps(new, indent=2) + "\n").encode())
    return recipe_name, configs


def manifest_difference(a: dict, b: dict) -> tuple[str, Any, Any] | None:
    """The first key in which two manifests describe different sweeps, with its two values,
    or None when they are the same sweep (``steps`` may differ: a budget may be raised)."""
    for key in ("recipe_name", "grid", "seeds", "overrides"):
        x, y = a.get(key), b.get(key)
        if key == "overrides":
            x = {k: v for k, v in (x or {}).items() if k not in MUTABLE_OVERRIDES}
            y = {k: v for k, v in (y or {}).items() if k not in MUTABLE_OVERRIDES}
        if key == "grid" and x == y and list(x) != list(y):  # the order names the dirs
            x, y = list(x), list(y)
        if x != y:
            return key, x, y
    return None


def check_budget(sweep_dir: Path, configs: list[tuple[Trial, TrainConfig]]) -> None:
    """Refuse a rerun with fewer steps than a trial already trained (its checkpoint, or its
    finished record), before sweep.json is rewritten: every trial would refuse it anyway,
    after the manifest had forgotten the budget its finished trials were trained for."""
    for trial, cfg in configs:
        run_dir = sweep_dir / trial.name
        record = read_trial(run_dir)
        finished = record.get("steps") if record.get("status") == "done" else 0
        done = max(checkpoint_step(run_dir), int(finished or 0))
        if cfg.steps < done:
            raise ConfigError(
                f"{sweep_dir}: trial {trial.name} has trained {done:,} steps; --steps must be "
                f">= {done}, not {cfg.steps} (a sweep's budget may only be raised)"
            )


def check_settings(sweep_dir: Path, old: dict | None, new: dict) -> None:
    """Refuse a rerun whose recipe now resolves a trial to other settings than the first run
    did. Options added to neurodeploy since (absent from ``old``) are not compared. A
    manifest written before neurodeploy recorded the settings (no ``configs``) is accepted:
    the trials already started still refuse a changed config when they resume."""
    for name, before in (old or {}).items():
        now = new.get(name, {})
        changed = [k for k in before if k in now and before[k] != now[k]]
        if changed:
            what = ", ".join(f"{k} ({before[k]!r} there, {now[k]!r} now)" for k in changed[:3])
            raise ConfigError(
                f"{sweep_dir / MANIFEST}: trial {name} was set up with other settings: {what}; "
                "the recipe changed since the sweep started; resume it with the version that "
                "started it, or choose another --out"
            )


# --- trial.json: the sweep's bookkeeping inside each run directory --------------------------

TRIAL_FILE = "trial.json"


def read_trial(run_dir: Path) -> dict:
    """The trial record (``{}`` when there is none yet or it is unreadable)."""
    try:
        record = json.loads((Path(run_dir) / TRIAL_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def update_trial(run_dir: Path, **values: Any) -> dict:
    """Merge ``values`` into the trial record and write it atomically."""
    record = {**read_trial(run_dir), **values}
    atomic_write_bytes(Path(run_dir) / TRIAL_FILE, (json.dumps(record, indent=2) + "\n").encode())
    return record


def trial_finished(run_dir: Path, steps: int) -> bool:
    """Trained to ``steps`` and summarised (a rerun with more steps resumes the trial)."""
    record = read_trial(run_dir)
    return record.get("status") == "done" and record.get("steps") == steps


def stats(values: list[float | None]) -> dict | None:
    """mean, population std, n and the values; None when no value is known."""
    known = [float(v) for v in values if v is not None]
    if not known:
        return None
    return {
        "mean": float(np.mean(known)),
        "std": float(np.std(known)),
        "n": len(known),
        "values": known,
    }
