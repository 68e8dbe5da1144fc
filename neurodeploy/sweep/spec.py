"""What a sweep is: a recipe, overrides, seeds and a grid; its trials and the manifest.

A sweep runs the cross product ``grid points x seeds``. With ``--grid neuron=lif,ann
--seeds 0-1`` that is four trials, each an ordinary run directory::

    OUT/sweep.json                 the manifest: recipe, grid, seeds, overrides, trials
    OUT/neuron=lif/seed0/          config.toml, metrics.csv, policy.pt, checkpoint/, trial.json
    OUT/neuron=lif/seed1/
    OUT/neuron=ann/seed0/
    OUT/neuron=ann/seed1/

Several grid keys join with commas (``OUT/env=Hopper-v4,neuron=lif/seed0``); without a
grid the trials are ``OUT/seed<N>``. ``trial.json`` is the sweep's bookkeeping (status,
attempts, resumed-from step, SOPs per action); everything else is what
``neurodeploy train --out DIR`` writes, so ``export``, ``run`` and ``bench-energy`` work on
every trial.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from neurodeploy.errors import ConfigError
from neurodeploy.train.checkpoint import atomic_write_bytes
from neurodeploy.train.config import TrainConfig, resolve

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


def _split_values(raw: str) -> list[str]:
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
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def config_keys() -> set[str]:
    return {f.name for f in fields(TrainConfig)}


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["neuron=lif,ann", "actor_lr=3e-4,1e-3"]`` -> {"neuron": ["lif", "ann"], ...}."""
    grid: dict[str, list[Any]] = {}
    known = config_keys()
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise ConfigError(f"--grid {item!r}: expected KEY=V1,V2,... (e.g. neuron=lif,ann)")
        if key == "seed":
            raise ConfigError("--grid seed=...: seeds are swept with --seeds (e.g. --seeds 0-4)")
        if key not in known:
            raise ConfigError(
                f"--grid {item!r}: unknown option {key!r}; it must be a training option "
                f"(see docs/training.md), e.g. neuron, algo, env, actor_lr, hidden"
            )
        if key in grid:
            raise ConfigError(f"--grid {key}=... is given twice; list all values in one --grid")
        values = [toml_value(v) for v in _split_values(raw)]
        if any(v == "" for v in values):
            raise ConfigError(f"--grid {item!r}: an empty value (stray comma?)")
        if len({json.dumps(v) for v in values}) != len(values):
            raise ConfigError(f"--grid {item!r}: a value is listed twice")
        grid[key] = values
    return grid


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
        both = sorted(set(self.overrides) & set(self.grid))
        if both:
            raise ConfigError(f"{', '.join(both)} is given by both --set and --grid; keep one")

    def points(self) -> list[dict[str, Any]]:
        """The grid's cross product, first key outermost (in the order the keys were given)."""
        points: list[dict[str, Any]] = [{}]
        for key, values in self.grid.items():
            points = [{**p, key: v} for p in points for v in values]
        return points

    def trials(self) -> list[Trial]:
        trials = [Trial(p, s) for p in self.points() for s in self.seeds]
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

    def manifest(self, recipe_name: str) -> dict:
        return {
            "format": MANIFEST_FORMAT,
            "recipe": self.recipe,
            "recipe_name": recipe_name,
            "grid": self.grid,
            "seeds": self.seeds,
            "overrides": self.overrides,
            "trials": [t.to_dict() for t in self.trials()],
        }


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


def write_manifest(sweep_dir: Path, spec: SweepSpec, recipe_name: str) -> None:
    """Write ``sweep.json``; a rerun must describe the same sweep (``steps`` may change)."""
    sweep_dir = Path(sweep_dir)
    new = spec.manifest(recipe_name)
    if (sweep_dir / MANIFEST).exists():
        old = read_manifest(sweep_dir)
        for key in ("recipe_name", "grid", "seeds", "overrides"):
            a, b = old.get(key), new[key]
            if key == "overrides":
                a = {k: v for k, v in (a or {}).items() if k not in MUTABLE_OVERRIDES}
                b = {k: v for k, v in b.items() if k not in MUTABLE_OVERRIDES}
            if a != b:
                raise ConfigError(
                    f"{sweep_dir / MANIFEST} describes another sweep ({key}: {a!r} there, "
                    f"{b!r} now); rerun with the same options to resume it, or choose another --out"
                )
    atomic_write_bytes(sweep_dir / MANIFEST, (json.dumps(new, indent=2) + "\n").encode())


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
