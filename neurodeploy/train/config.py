"""Training configuration: a flat dataclass read from a recipe TOML, overridden by CLI options."""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import tomli_w

from neurodeploy.errors import ConfigError
from neurodeploy.paths import recipe_path

ALGOS = ("pt-td3", "td3", "bc")  # bc: behaviour cloning of a guide (stateful actors)
MODES = ("reset", "stateful")
OBSERVATIONS = ("default", "privileged")
NEURONS = ("lif", "clif", "dn", "loihi", "ann")

# Proxy network per actor neuron (Proxy Target paper, Table 5): hidden sizes, lr, K.
PROXY_DEFAULTS = {
    "lif": ([512, 512], 1e-3, 3),
    "clif": ([800, 600], 3e-3, 3),
    "dn": ([512, 512], 3e-3, 3),
    "loihi": ([512, 512], 1e-3, 3),  # the Loihi grid LIF: as the paper LIF
    "ann": ([512, 512], 1e-3, 3),
}


@dataclass
class TrainConfig:
    env: str = "Pendulum-v1"
    algo: str = "pt-td3"
    neuron: str = "lif"
    steps: int = 1_000_000  # environment steps in total, random-start steps included
    seed: int = 0
    start_steps: int = 25_000  # uniform random actions before learning starts
    batch_size: int = 256
    buffer_size: int = 1_000_000
    gamma: float = 0.99
    tau: float = 0.005
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    expl_noise: float = 0.1  # fraction of the action half-range
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    smooth_temporal: float = 0.0  # CAPS lambda_T, flat TD3 only (in a guided run: the guide)
    smooth_spatial: float = 0.0  # CAPS lambda_S
    smooth_sigma: float = 0.01  # CAPS sigma_S (observation units)
    policy_delay: int = 2
    proxy_hidden: list[int] = field(default_factory=list)  # empty: per-neuron default
    proxy_lr: float = 0.0  # 0: per-neuron default
    proxy_steps: int = 0  # K; 0: per-neuron default
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    critic_hidden: int = 256  # width of both hidden layers of each twin critic
    timesteps: int = 5
    # x the observation before the actor sees it (one factor per dimension; empty: none).
    # Travels in policy.pt and the bundle's codec, so every backend sees the same input.
    obs_scale: list[float] = field(default_factory=list)
    population: int = 10
    surrogate: str = "rect"
    slope: float = 1.0
    slope_schedule: str = "fixed"  # fixed | interval | adaptive (see neurodeploy/snn/schedules.py)
    slope_params: dict = field(default_factory=dict)  # e.g. {return_low = -1500, return_high = 0}
    # stateful actors (adaptive-surrogate paper, REFERENCE §2; docs/stateful.md)
    mode: str = "reset"  # reset: state cleared every action | stateful: carried across actions
    encoder: str = "population"  # population | direct
    decoder: str = "population"  # population | linear
    reset: str = "hard"  # neuron reset: hard | subtract
    decay: float = 0.75  # membrane decay per SNN step (lif, clif)
    synaptic_delay: bool = False  # model Lava's one-step delay per layer (stateful export)
    sequence_length: int = 0  # > 0: train on episode segments of this many steps (BPTT)
    sequence_stride: int = 50
    burn_in: int = 50  # segment steps that only warm the state (no loss); the guide's last share
    update_every: int = 1  # environment steps per gradient update
    # guided jump-start: a privileged ANN guide acts first in every episode
    observation: str = "default"  # privileged: state from info["privileged"] + action history
    guide: str = ""  # run directory of a trained guide (observation = "privileged")
    guide_steps: int = 0  # > 0 and no guide: first train a guide for this many steps
    guide_history: int = 2  # past actions the guide sees
    guide_obs_scale: list[float] = field(default_factory=list)  # x the first privileged entries
    guide_share_start: int = 450  # steps the guide acts per episode in the first round
    guide_share_step: int = 50  # the share shrinks by this much every round ...
    guide_round_steps: int = 5_000  # ... of this many environment steps, down to burn_in
    q_alpha: float = 0.0  # lambda_Q = q_alpha / mean|Q| (0: plain -Q)
    bc_weight: float = 0.0  # lambda_BC at the start
    bc_decay: float = 0.99  # lambda_BC factor per round (guide_round_steps)
    curriculum: bool = True  # call env.set_curriculum(step / steps) when the env has one
    eval_every: int = 5_000
    eval_episodes: int = 10
    checkpoint_every: int = 10_000

    def __post_init__(self):
        if self.algo not in ALGOS:
            raise ConfigError(f"--algo must be one of {', '.join(ALGOS)}, not {self.algo!r}")
        if self.neuron not in NEURONS:
            raise ConfigError(f"--neuron must be one of {', '.join(NEURONS)}, not {self.neuron!r}")
        hidden, lr, k = PROXY_DEFAULTS[self.neuron]
        self.proxy_hidden = list(self.proxy_hidden) or hidden
        self.proxy_lr = self.proxy_lr or lr
        self.proxy_steps = self.proxy_steps or k
        for name in (
            "steps",
            "batch_size",
            "buffer_size",
            "eval_every",
            "checkpoint_every",
            "timesteps",
            "policy_delay",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.start_steps < 0 or self.eval_episodes < 0:
            raise ConfigError("start_steps and eval_episodes must be >= 0")
        self._check_stateful()

    def _check_stateful(self) -> None:
        checks = [
            (self.mode in MODES, f"mode must be one of {', '.join(MODES)}, not {self.mode!r}"),
            (
                self.observation in OBSERVATIONS,
                f"observation must be one of {', '.join(OBSERVATIONS)}, not {self.observation!r}",
            ),
            (
                self.mode == "reset" or self.sequence_length > 0 or self.neuron == "ann",
                "a stateful actor trains on sequences: set sequence_length (e.g. 100)",
            ),
            (
                self.sequence_length == 0 or self.burn_in < self.sequence_length,
                "burn_in must be shorter than sequence_length",
            ),
            (
                self.algo != "bc" or bool(self.guide or self.guide_steps),
                "algo 'bc' clones a guide: set guide (a run directory) or guide_steps",
            ),
            (
                not (self.guide or self.guide_steps) or self.sequence_length > 0,
                "guided training is for stateful actors: set mode='stateful' and sequence_length",
            ),
            (
                all(math.isfinite(x) and x > 0 for x in self.guide_obs_scale),
                "guide_obs_scale entries must be positive and finite",
            ),
            (
                all(math.isfinite(x) and x > 0 for x in self.obs_scale),
                "obs_scale entries must be positive and finite",
            ),
            (self.update_every >= 1 and self.sequence_stride >= 1, "update_every and "
             "sequence_stride must be >= 1"),
            (
                not (self.smooth_temporal or self.smooth_spatial)
                or self.sequence_length == 0
                or self.guided,
                "smooth_temporal/smooth_spatial act on flat TD3 (an ANN, a per-action-reset "
                "actor or a guided run's guide), not on sequence training: set them to 0",
            ),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def guided(self) -> bool:
        return bool(self.guide or self.guide_steps)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown option(s) {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from None


def load_recipe(name_or_path: str | None) -> tuple[dict, str]:
    """Values of a recipe (by name from ``train/`` or a TOML path) and its name."""
    if name_or_path is None:
        return {}, "custom"
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = recipe_path("train", name_or_path)
    try:
        return tomllib.loads(path.read_text()), path.stem
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def resolve(recipe: str | None, overrides: dict) -> tuple[TrainConfig, str]:
    """Recipe values, then every override that is not None."""
    values, name = load_recipe(recipe)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(values, f"recipe {name!r}"), name


def parse_set(items: list[str]) -> dict:
    """``--set key=value`` pairs; values are TOML (``hidden=[64, 64]``, ``eval_episodes=3``)."""
    values = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        try:
            values[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            values[key.strip()] = raw  # a bare string
    return values


def save_config(config: TrainConfig, path: Path) -> None:
    from neurodeploy.train.checkpoint import atomic_write_bytes

    atomic_write_bytes(path, tomli_w.dumps(config.to_dict()).encode())


def read_config(path: Path) -> TrainConfig:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the run's config ({exc})") from None
    return TrainConfig.from_dict(data, str(path))


def differing_keys(a: TrainConfig, b: TrainConfig, ignore=("steps",)) -> list[str]:
    da, db = a.to_dict(), b.to_dict()
    return [k for k in da if k not in ignore and da[k] != db[k]]
