"""Training configuration: a flat dataclass read from a recipe TOML, overridden by CLI options."""

from __future__ import annotations

import math
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import tomli_w

from neurodeploy.errors import ConfigError
from neurodeploy.paths import recipe_path
from neurodeploy.snn.schedules import SCHEDULES, make_schedule
from neurodeploy.snn.surrogate import SURROGATES

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


@dataclass(frozen=True)
class Option:
    """What one training option accepts: a docstring, a range, or a set of choices."""

    doc: str
    low: float | None = None  # inclusive bounds (for a list: of every entry)
    high: float | None = None
    choices: tuple = ()
    above: bool = False  # low is exclusive: the value must be > low


BIG = 10**9  # upper bound of step counts and sizes (steps = inf is refused, not run forever)
OPTIONS: dict[str, Option] = {
    "env": Option("gymnasium environment id, e.g. Pendulum-v1 or neurodeploy/QuadHover-v0"),
    "algo": Option("pt-td3 (proxy-target TD3) | td3 | bc (clone a guide)", choices=ALGOS),
    "neuron": Option("actor neuron: lif | clif | dn | loihi | ann", choices=NEURONS),
    "steps": Option("environment steps in total, random-start steps included", 1, BIG),
    "seed": Option("seed of the networks, the environment and the replay sampling", 0, 2**32 - 1),
    "start_steps": Option("uniform random actions before learning starts (< steps)", 0, BIG),
    "batch_size": Option("transitions (or segments) per gradient update", 1, 2**20),
    "buffer_size": Option("replay capacity in transitions (flat TD3)", 1, BIG),
    "gamma": Option("discount factor", 0.0, 1.0),
    "tau": Option("Polyak factor of the target networks", 0.0, 1.0, above=True),
    "actor_lr": Option("actor learning rate (Adam)", 0.0, 1.0, above=True),
    "critic_lr": Option("critic learning rate (Adam)", 0.0, 1.0, above=True),
    "lr_schedule": Option(
        "constant | linear (actor and critic learning rates fall linearly to 0 from "
        "start_steps to the last step)",
        choices=("constant", "linear"),
    ),  # fmt: skip
    "expl_noise": Option("exploration noise std, a fraction of the action half-range", 0.0, 10.0),
    "policy_noise": Option("target policy smoothing noise std (TD3)", 0.0, 10.0),
    "noise_clip": Option("clip of the target policy smoothing noise (TD3)", 0.0, 10.0),
    "smooth_temporal": Option("CAPS lambda_T, flat TD3 only", 0.0, 1e6),
    "smooth_spatial": Option("CAPS lambda_S, flat TD3 only", 0.0, 1e6),
    "smooth_sigma": Option("CAPS sigma_S in observation units", 0.0, 1e6, above=True),
    "sop_budget": Option(
        "synaptic operations per action the actor may spend (0: no budget); a multiplier "
        "tuned during training holds it (flat TD3, spiking actors)",
        0.0,
        1e12,
    ),
    "sop_lr": Option("Adam learning rate of log(multiplier) of sop_budget", 0.0, 1.0, above=True),
    "policy_delay": Option("critic updates per actor update (TD3)", 1, 1000),
    "proxy_hidden": Option("proxy network widths (empty: the neuron's default)", 1, 2**16),
    "proxy_lr": Option("proxy learning rate (0: the neuron's default)", 0.0, 1.0),
    "proxy_steps": Option("proxy updates per actor update, K (0: the neuron's default)", 0, 1000),
    "hidden": Option("actor hidden layer widths, e.g. [256, 256]", 1, 2**16),
    "critic_hidden": Option("width of both hidden layers of each twin critic", 1, 2**16),
    "timesteps": Option("SNN timesteps per action", 1, 1000),
    "obs_scale": Option(
        "factor per observation entry before the actor (empty: none)", 0.0, 1e9, above=True
    ),  # fmt: skip
    "population": Option("neurons per observation / action dimension (population codec)", 1, 1000),
    "surrogate": Option("surrogate gradient: rect | fast_sigmoid | arctan", choices=SURROGATES),
    "slope": Option("surrogate slope k (ignored by rect)", 0.0, 1e6, above=True),
    "slope_schedule": Option(
        "fixed | interval | adaptive: how k changes (not with rect)", choices=tuple(SCHEDULES)
    ),  # fmt: skip
    "slope_params": Option("schedule parameters, e.g. {return_low = -1500, return_high = 0}"),
    "mode": Option(
        "reset: state cleared every action | stateful: carried across actions", choices=MODES
    ),  # fmt: skip
    "encoder": Option("observation encoder", choices=("population", "place", "direct")),
    "decoder": Option("action decoder", choices=("population", "linear")),
    "reset": Option("neuron reset after a spike", choices=("hard", "subtract")),
    "decay": Option("membrane decay per SNN step (lif, clif)", 0.0, 1.0),
    "bias": Option("false: spiking layers without bias (a clif then deploys to lava/loihi2)"),
    "synaptic_delay": Option("model Lava's one-step delay per layer (stateful export)"),
    "sequence_length": Option("> 0: train on episode segments of this many steps (BPTT)", 0, BIG),
    "sequence_stride": Option("steps between segment starts", 1, BIG),
    "burn_in": Option("segment steps that only warm the state (no loss)", 0, BIG),
    "update_every": Option("environment steps per gradient update", 1, BIG),
    "observation": Option("default | privileged (a guide's state)", choices=OBSERVATIONS),
    "guide": Option("run directory of a trained guide (observation = privileged)"),
    "guide_steps": Option("> 0 and no guide: first train a guide for this many steps", 0, BIG),
    "guide_history": Option("past actions the guide sees", 0, 1000),
    "guide_obs_scale": Option(
        "factor per first privileged entry (the guide's input)", 0.0, 1e9, above=True
    ),  # fmt: skip
    "guide_share_start": Option("steps the guide acts per episode in the first round", 0, BIG),
    "guide_share_step": Option("the guide's share shrinks by this much every round", 0, BIG),
    "guide_round_steps": Option("environment steps per guide round", 1, BIG),
    "q_alpha": Option("lambda_Q = q_alpha / mean|Q| (0: plain -Q)", 0.0, 1e6),
    "bc_weight": Option("lambda_BC at the start", 0.0, 1e6),
    "bc_decay": Option("lambda_BC factor per guide round", 0.0, 1.0),
    "curriculum": Option(
        "call env.set_curriculum(step / steps) when the env has one (false: the final reward "
        "from the start)"
    ),
    "eval_every": Option("environment steps between evaluations", 1, BIG),
    "eval_episodes": Option("episodes per evaluation", 1, 10_000),
    "checkpoint_every": Option("steps between checkpoints (at the next episode end)", 1, BIG),
}


def _kind(name: str) -> str:
    """The option's type as written in TrainConfig: int, float, str, bool, list[int], ..."""
    return TrainConfig.__dataclass_fields__[name].type


def _number(value, name: str, integer: bool):
    if isinstance(value, bool) or not isinstance(value, int | float):
        what = "an integer" if integer else "a number"
        raise ConfigError(f"{name} must be {what}, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    if integer:
        if value != int(value):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        return int(value)
    return float(value)


def _in_range(value, name: str, option: Option) -> None:
    low, high = option.low, option.high
    below = low is not None and (value <= low if option.above else value < low)
    if below or (high is not None and value > high):
        low_text = f"> {low:g}" if option.above else f">= {low:g}"
        raise ConfigError(f"{name} must be {low_text} and <= {high:g}, got {value!r}")


def check_option(name: str, value, source: str = ""):
    """The one check of a training option's value (recipes, --set, sweep grids, config.toml).

    Returns the value in its declared type (an integral float such as 1e6 for an int
    option becomes 1000000); anything else is a one-line ConfigError naming the option.
    """
    prefix = f"{source}: " if source else ""
    if name not in OPTIONS:
        raise ConfigError(
            f"{prefix}unknown option(s) {name}; see `neurodeploy train --help-options`"
        )
    option, kind = OPTIONS[name], _kind(name)
    try:
        if kind in ("int", "float"):
            value = _number(value, name, kind == "int")
            _in_range(value, name, option)
        elif kind.startswith("list["):
            integer = kind == "list[int]"
            if not isinstance(value, list):
                raise ConfigError(f"{name} must be a list like [64, 64], got {value!r}")
            try:
                value = [_number(v, f"every entry of {name}", integer) for v in value]
                for v in value:
                    _in_range(v, f"every entry of {name}", option)
            except ConfigError:
                if integer or not (option.above and option.low == 0):
                    raise
                raise ConfigError(
                    f"{name} entries must be positive and finite, got {value!r}"
                ) from None
        elif kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{name} must be true or false, got {value!r}")
        elif kind == "dict":
            if not isinstance(value, dict):
                raise ConfigError(f"{name} must be a table like {{a = 1}}, got {value!r}")
            value = {k: _number(v, f"{name}.{k}", False) for k, v in value.items()}
        elif not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
        if option.choices and value not in option.choices:
            raise ConfigError(f"{name} must be one of {', '.join(option.choices)}, not {value!r}")
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None
    return value


def options_help() -> str:
    """Every training option: name, type, default, range and what it does."""
    lines = []
    for f in fields(TrainConfig):
        option = OPTIONS[f.name]
        default = f.default if f.default is not MISSING else f.default_factory()
        limits = ""
        if option.choices:
            limits = f"; one of {', '.join(option.choices)}"
        elif option.low is not None:
            low = f"> {option.low}" if option.above else f">= {option.low}"
            limits = f"; {low}, <= {option.high:,}"
        lines.append(f"{f.name} ({f.type}, default {default!r}{limits})\n    {option.doc}")
    return "\n".join(lines)


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
    lr_schedule: str = "constant"  # linear: both learning rates fall to 0 at the last step
    expl_noise: float = 0.1  # fraction of the action half-range
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    smooth_temporal: float = 0.0  # CAPS lambda_T, flat TD3 only (in a guided run: the guide)
    smooth_spatial: float = 0.0  # CAPS lambda_S
    smooth_sigma: float = 0.01  # CAPS sigma_S (observation units)
    # synaptic operations per action (0: off), held by a Lagrange multiplier (train/budget.py)
    sop_budget: float = 0.0
    sop_lr: float = 1e-3  # Adam learning rate of the multiplier's log
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
    # stateful actors (Van den Berghe et al., NeurIPS 2025; docs/stateful.md)
    mode: str = "reset"  # reset: state cleared every action | stateful: carried across actions
    encoder: str = "population"  # population | direct
    decoder: str = "population"  # population | linear
    reset: str = "hard"  # neuron reset: hard | subtract
    decay: float = 0.75  # membrane decay per SNN step (lif, clif)
    bias: bool = True  # false: bias-free spiking layers (clif on Lava/Loihi 2 needs it)
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
        for f in fields(self):  # every option is typed, finite and in range (OPTIONS)
            setattr(self, f.name, check_option(f.name, getattr(self, f.name)))
        hidden, lr, k = PROXY_DEFAULTS[self.neuron]
        if self.neuron == "clif" and self.env.startswith("InvertedDoublePendulum"):
            hidden = [512, 512]  # Table 5's one exception
        self.proxy_hidden = list(self.proxy_hidden) or hidden
        self.proxy_lr = self.proxy_lr or lr
        self.proxy_steps = self.proxy_steps or k
        if not self.hidden:
            raise ConfigError("hidden must list at least one layer width, e.g. [256, 256]")
        self._check_stateful()
        self._check_schedule()
        self._check_sop_budget()

    def _check_sop_budget(self) -> None:
        """The SOP budget counts a spiking actor's synapses in the flat TD3 actor update."""
        if not self.sop_budget:
            return
        if self.neuron == "ann":
            raise ConfigError(
                "sop_budget counts a spiking actor's synaptic operations; an ANN actor "
                "(neuron = 'ann') has none: set sop_budget = 0 or a spiking neuron"
            )
        if self.sequence_length > 0:
            raise ConfigError(
                "sop_budget acts on flat TD3 (a per-action-reset actor), not on sequence "
                "training (sequence_length > 0): set sop_budget = 0 or sequence_length = 0"
            )

    def _check_schedule(self) -> None:
        """The slope schedule must be buildable and must change something."""
        if self.slope_schedule != "fixed" and (self.surrogate == "rect" or self.neuron == "ann"):
            raise ConfigError(
                f"slope_schedule {self.slope_schedule!r} has no effect on "
                + ("an ANN actor" if self.neuron == "ann" else "the 'rect' surrogate (its "
                   "gradient ignores the slope)")
                + ": use surrogate = 'fast_sigmoid' or 'arctan', or slope_schedule = 'fixed'"
            )  # fmt: skip
        if self.slope_schedule == "fixed" and "k" in self.slope_params:
            raise ConfigError(
                "the fixed slope schedule's k is the option slope: set slope, not slope_params.k"
            )
        params = {"k": self.slope} if self.slope_schedule == "fixed" else {}
        try:
            make_schedule(self.slope_schedule, **{**params, **self.slope_params})
        except ConfigError as exc:
            raise ConfigError(
                f"slope_params {self.slope_params!r} do not fit slope_schedule "
                f"{self.slope_schedule!r} ({exc}); see `neurodeploy train --help-options`"
            ) from None

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
                not self.guided
                or (self.sequence_length > 0 and self.mode == "stateful" and self.neuron != "ann"),
                "guided training is for stateful spiking actors: set mode='stateful' and "
                "sequence_length",
            ),
            (
                not self.guide_steps or self.guide_steps > self.start_steps,
                f"guide_steps ({self.guide_steps}) <= start_steps ({self.start_steps}): the "
                "guide would only act randomly and never learn; raise guide_steps",
            ),
            (
                self.bc_weight == 0 or self.guided,
                "bc_weight pulls the actor towards a guide's actions: set guide or guide_steps, "
                "or bc_weight = 0",
            ),
            (
                self.q_alpha == 0 or self.sequence_length > 0,
                "q_alpha scales sequence training's Q term; flat TD3 has none: set q_alpha = 0",
            ),
            (
                self.neuron != "ann" or self.sequence_length == 0,
                "an ANN actor is feed-forward; sequence_length is for stateful spiking actors: "
                "set sequence_length = 0",
            ),
            (
                self.neuron not in ("loihi", "dn") or (self.decay, self.reset) == (0.75, "hard"),
                f"neuron {self.neuron!r} has its own fixed dynamics (loihi: decay 0.75, i.e. "
                "dv = 1024, and a hard reset; dn: its own constants): leave decay = 0.75 and "
                "reset = 'hard'",
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
        except (TypeError, ConfigError) as exc:
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
    cfg = TrainConfig.from_dict(values, f"recipe {name!r}")
    if cfg.start_steps >= cfg.steps:
        raise ConfigError(
            f"recipe {name!r}: start_steps ({cfg.start_steps}) >= steps ({cfg.steps}): every "
            "action would be random and no update would run; lower start_steps "
            "(--set start_steps=...) or raise steps"
        )
    return cfg, name


def parse_value(raw: str):
    """A TOML value (``3e-4``, ``[64, 64]``, ``true``, ``nan``), else the bare string (``lif``)."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw.strip()


def parse_option(key: str, raw: str, source: str):
    """``KEY=VALUE`` text (``--set``, a sweep's ``--grid``) -> the checked, typed value."""
    return check_option(key.strip(), parse_value(raw), source)


def parse_set(items: list[str]) -> dict:
    """``--set key=value`` pairs; values are TOML (``hidden=[64, 64]``, ``eval_episodes=3``)."""
    values = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        values[key.strip()] = parse_option(key, raw, f"--set {item!r}")
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
