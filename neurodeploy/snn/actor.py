"""Actors: the spiking actor (per-action reset or stateful) and the ANN baseline.

An actor is fully described by an :class:`ActorConfig`; with its ``state_dict``
it is rebuilt by :func:`build_actor` / :func:`actor_from_payload` without any
training code. That payload is what ``policy.pt`` holds and what export reads.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import NamedTuple

import torch
from torch import nn

from neurodeploy.errors import CheckpointError, ConfigError
from neurodeploy.snn.codec import (
    ENCODER_THRESHOLD,
    PLACE_THRESHOLD,
    LinearDecoder,
    PopulationDecoder,
    PopulationEncoder,
)
from neurodeploy.snn.layers import SpikingLayer
from neurodeploy.snn.neurons import NeuronConfig
from neurodeploy.snn.sops import synaptic_ops

MODES = ("reset", "stateful")


@dataclass
class ActorConfig:
    obs_dim: int
    act_dim: int
    action_low: list[float]
    action_high: list[float]
    kind: str = "snn"  # snn | ann
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    timesteps: int = 5  # SNN timesteps per action
    mode: str = "reset"  # reset: state cleared every action; stateful: carried across actions
    encoder: str = "population"  # population | place (population, no integration) | direct
    decoder: str = "population"  # population | linear (readout of the last hidden layer)
    pop_in: int = 10
    pop_out: int = 10
    encoder_std: float = math.sqrt(0.05)
    encoder_mean_range: list[float] = field(default_factory=lambda: [-1.0, 1.0])
    # stateful mode: each layer sees the previous layer's spikes one SNN step late, as
    # on Lava/Loihi where every Dense adds one step (docs/stateful.md, "timing model")
    synaptic_delay: bool = False
    # per-dimension factor on the observation before the actor sees it (empty: none); the
    # population encoder's tanh then resolves dimensions with a range far beyond +-1
    obs_scale: list[float] = field(default_factory=list)

    def __post_init__(self):
        if isinstance(self.neuron, dict):
            self.neuron = NeuronConfig.from_dict(self.neuron)
        checks = [
            (self.kind in ("snn", "ann"), f"actor kind must be 'snn' or 'ann', not {self.kind!r}"),
            (self.mode in MODES, f"actor mode must be one of {MODES}, not {self.mode!r}"),
            (
                self.encoder in ("population", "place", "direct"),
                f"unknown encoder {self.encoder!r}",
            ),
            (self.decoder in ("population", "linear"), f"unknown decoder {self.decoder!r}"),
            (self.timesteps >= 1, "timesteps must be >= 1"),
            (
                not self.synaptic_delay or self.mode == "stateful",
                "synaptic_delay needs mode 'stateful' (per-action reset compensates the delay)",
            ),
            (
                len(self.action_low) == len(self.action_high) == self.act_dim,
                "action_low/high must have act_dim entries",
            ),
            (
                not self.obs_scale or len(self.obs_scale) == self.obs_dim,
                f"obs_scale has {len(self.obs_scale)} entries; the observation has {self.obs_dim}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ActorConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown actor options: {', '.join(sorted(unknown))}")
        return cls(**data)


class _ActionScale(nn.Module):
    def __init__(self, low, high):
        super().__init__()
        low, high = (
            torch.as_tensor(low, dtype=torch.float32),
            torch.as_tensor(high, dtype=torch.float32),
        )
        self.register_buffer("center", (high + low) / 2)
        self.register_buffer("half_range", (high - low) / 2)

    def forward(self, squashed: torch.Tensor) -> torch.Tensor:
        return self.center + self.half_range * squashed


def _register_obs_scale(module: nn.Module, config: ActorConfig) -> None:
    """``module.obs_scale``: the config's factor as a buffer (None: no scaling); not saved
    in the state dict, since the config that travels with every policy holds it."""
    scale = torch.tensor(config.obs_scale, dtype=torch.float32) if config.obs_scale else None
    module.register_buffer("obs_scale", scale, persistent=False)


def _scaled(module: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    return obs if module.obs_scale is None else obs * module.obs_scale


class AnnActor(nn.Module):
    """The TD3 baseline: Linear-ReLU-Linear-ReLU-Linear, tanh, action scale."""

    def __init__(self, config: ActorConfig):
        super().__init__()
        self.config = config
        sizes = [config.obs_dim, *config.hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], config.act_dim))
        self.net = nn.Sequential(*layers)
        self.scale = _ActionScale(config.action_low, config.action_high)
        _register_obs_scale(self, config)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.scale(torch.tanh(self.net(_scaled(self, obs))))

    @property
    def decoded_weight_name(self) -> str:
        """The last linear layer's weights (one row per action, before the tanh)."""
        return f"net.{len(self.net) - 1}.weight"

    def reset(self) -> None:
        pass


class SpikingActor(nn.Module):
    """Population-coded spiking actor (PopSAN-style) in per-action-reset or stateful mode.

    After every call, ``spike_counts`` maps each spiking population (``encoder``,
    ``hidden0``, ..., ``output``) to its spike count per timestep, summed over the
    batch (with the direct encoder, ``encoder`` counts the non-zero inputs: the graded
    spikes a chip receives), and ``counted_batch`` holds the batch size. They are summed on demand
    from ``spike_trains`` (the spike trains the forward pass kept, which the exporter
    also reads); nothing is run twice.
    """

    def __init__(self, config: ActorConfig):
        super().__init__()
        self.config = config
        if config.encoder in ("population", "place"):
            self.encoder = PopulationEncoder(
                config.obs_dim, config.pop_in, config.encoder_mean_range, config.encoder_std,
                place=config.encoder == "place",
            )  # fmt: skip
            n_in = self.encoder.size
        else:
            self.encoder = None
            n_in = config.obs_dim
        sizes = [n_in, *config.hidden]
        if config.decoder == "population":
            sizes.append(config.act_dim * config.pop_out)
        self.layers = nn.ModuleList(
            SpikingLayer(a, b, config.neuron) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        if config.decoder == "population":
            self.decoder = PopulationDecoder(config.act_dim, config.pop_out)
        else:
            self.decoder = LinearDecoder(sizes[-1], config.act_dim)
        self.scale = _ActionScale(config.action_low, config.action_high)
        _register_obs_scale(self, config)
        self.state = None
        self.spike_trains: dict[
            str, torch.Tensor
        ] = {}  # [time, batch, n] per population, last call

    @property
    def spike_counts(self) -> dict[str, torch.Tensor]:
        return {name: (s != 0).sum(dim=(1, 2)) for name, s in self.spike_trains.items()}

    @property
    def counted_batch(self) -> int:
        return next(iter(self.spike_trains.values())).shape[1] if self.spike_trains else 0

    @property
    def layer_names(self) -> list[str]:
        names = [f"hidden{i}" for i in range(len(self.config.hidden))]
        return names + (["output"] if self.config.decoder == "population" else [])

    @property
    def decoded_weight_name(self) -> str:
        """The parameter holding the weights into the neurons the decoder reads (the output
        population, or the last hidden layer under a linear decoder)."""
        return f"layers.{len(self.layers) - 1}.linear.weight"

    def set_slope(self, value: float) -> None:
        for layer in self.layers:
            layer.neuron.spike_fn.set_slope(value)

    def reset(self) -> None:
        """Clear the carried state (stateful mode); call at the start of every episode."""
        self.state = None

    @property
    def graded_input(self) -> bool:
        """The direct encoder feeds the observation itself (on Loihi 2: graded spikes)."""
        return self.encoder is None

    def core_input(self, obs_seq: torch.Tensor, enc_state=None):
        """obs [L, B, obs_dim] -> what the first layer receives, [L*T, B, n_in], and the
        encoder's state: spikes from the encoder, or the observation itself (direct)."""
        T = self.config.timesteps
        obs_seq = _scaled(self, obs_seq)
        if self.encoder is None:
            return obs_seq.repeat_interleave(T, dim=0), enc_state
        return self.encoder(obs_seq, T, enc_state)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs [B, obs_dim] -> action [B, act_dim]."""
        return self._act(obs)[0]

    def _act(self, obs: torch.Tensor):
        """One action per observation, and the layer inputs; a stateful actor carries its
        state to the next call."""
        stateful = self.config.mode == "stateful"
        actions, state, inputs = self._run(obs.unsqueeze(0), self.state if stateful else None)
        if stateful:
            self.state = _detach(state)
        return actions[0], inputs

    def forward_sequence(self, obs_seq: torch.Tensor, state=None):
        """obs [L, B, obs_dim] -> actions [L, B, act_dim], final state.

        Stateful mode carries the state through the L actions (for BPTT); reset
        mode treats the L actions independently, each from a zero state. With
        ``synaptic_delay`` layer i at SNN step t receives layer i-1's spikes of step
        t-1 (the encoder's for i = 0); the state then also holds each layer's last
        input frame.
        """
        actions, state, _ = self._run(obs_seq, state)
        return actions, state

    def forward_with_sops(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """obs [B, obs_dim] -> (action [B, act_dim], SOPs per action).

        :meth:`forward`, and the synaptic operations its core performed per action (the
        batch mean, float64): every layer's input spikes times their neurons' fan-out
        (``neurodeploy/snn/sops.py``), as ``neurodeploy bench-energy`` counts them. The
        count carries the surrogate gradient of the spikes, so a loss can lower it.
        """
        actions, inputs = self._act(obs)
        sops = sum(synaptic_ops(inputs, self.synaptic_weights()))
        return actions, sops / obs.shape[0]

    def synaptic_weights(self) -> list[torch.Tensor]:
        """Each layer's weight matrix [out, in] as the layer multiplies with it (the integer
        one for ``loihi`` neurons), detached: what decides every neuron's fan-out."""
        with torch.no_grad():
            return [
                layer.quantized()["weight"] if layer.fixed_point else layer.linear.weight.detach()
                for layer in self.layers
            ]

    def _run(self, obs_seq: torch.Tensor, state):
        """:meth:`forward_sequence`, and what each layer's synapses received (the layer
        inputs, delayed where ``synaptic_delay`` says so), with their gradients."""
        L, B = obs_seq.shape[:2]
        if self.config.mode == "reset":
            obs_seq, state = obs_seq.reshape(1, L * B, -1), None
        n = len(self.layers)
        enc_state, layer_states, frames = state or ActorState(None, [None] * n, None)
        x, enc_state = self.core_input(obs_seq, enc_state)
        spikes = {"encoder": x.detach()}
        new_states, new_frames, inputs = [], [], []
        for i, (name, layer, st) in enumerate(
            zip(self.layer_names, self.layers, layer_states, strict=True)
        ):
            if self.config.synaptic_delay:
                first = frames[i] if frames is not None else torch.zeros_like(x[0])
                new_frames.append(x[-1])
                x = torch.cat([first.unsqueeze(0), x[:-1]])
            inputs.append(x)
            x, st = layer(x, st)
            new_states.append(st)
            spikes[name] = x.detach()
        self.spike_trains = spikes
        actions = self.decode(x)
        if self.config.mode == "reset":
            actions = actions.reshape(L, B, -1)
        return actions, ActorState(enc_state, new_states, new_frames or None), inputs

    def decode(self, out_spikes: torch.Tensor) -> torch.Tensor:
        """Output spike trains [L*T, B, n] -> actions [L, B, act_dim]: the firing rate over
        each action's T steps, the decoder, the action scale (the formula is in
        :meth:`codec_spec`)."""
        rate = torch.as_tensor(out_spikes).float().unflatten(0, (-1, self.config.timesteps))
        return self.scale(self.decoder(rate.mean(dim=1)))

    def codec_spec(self) -> dict:
        """The host codec as plain data, with its formulas: what a program that never
        imports neurodeploy needs to turn observations into the core's input and its output
        spikes into actions (written to a bundle's manifest.json)."""
        cfg = self.config
        carried = "carried across actions" if cfg.mode == "stateful" else "zero at every action"
        spec = {
            "timesteps": cfg.timesteps,
            "reset": "every action" if cfg.mode == "reset" else "never",
            "encoder": cfg.encoder,
            "decoder": cfg.decoder,
            "obs_scale": list(cfg.obs_scale) or None,  # x the observation first (None: none)
        }
        if self.encoder is None:
            spec["encoder_params"] = {
                "formula": "x = obs * obs_scale, fed to the first layer at each of the T steps",
                "graded_spikes": True,
            }
        else:
            act = (
                "A[d*pop + p] = exp(-(tanh(obs[d] * obs_scale[d]) - mean[d][p])**2 "
                "/ (2 * std[d][p]**2))"
            )
            common = {
                "squash": "tanh",
                "pop": self.encoder.pop,
                "mean": self.encoder.mean.detach().tolist(),
                "std": self.encoder.std.detach().tolist(),
            }
            if self.encoder.place:
                spec["encoder_params"] = {
                    **common,
                    "formula": f"{act}; at each of the T steps, spike = A > threshold",
                    "threshold": PLACE_THRESHOLD,
                    "neuron": "threshold (place code)",
                    "state": "none",
                }
            else:
                spec["encoder_params"] = {
                    **common,
                    "formula": f"{act}; each of the T steps: v += A; spike = v > threshold; "
                    "v -= threshold where spiked",
                    "threshold": ENCODER_THRESHOLD,
                    "neuron": "deterministic integrate-and-fire",
                    "reset": "subtract the threshold (not to zero)",
                    "state": f"v is {carried}",
                }
        rate = "rate[i] = output spikes of neuron i over the action's T steps / T"
        if cfg.decoder == "population":
            formula = (
                f"{rate}; action[a] = center[a] + half_range[a] * tanh(sum_p weight[a][p] * "
                "rate[a*pop + p] + bias[a])"
            )
        else:
            formula = (
                f"{rate}; action = center + half_range * tanh(weight @ rate + bias) "
                "(weight [act, n])"
            )
        params = {
            k.split(".")[-1]: v.detach().tolist() for k, v in self.decoder.state_dict().items()
        }
        spec["decoder_params"] = {
            **params,
            "formula": formula,
            "center": self.scale.center.tolist(),
            "half_range": self.scale.half_range.tolist(),
        }
        return spec


class ActorState(NamedTuple):
    """A stateful actor's state between calls: the host encoder's potential, each layer's
    neuron state, and (with ``synaptic_delay``) each layer's last input frame."""

    encoder: torch.Tensor | None
    layers: list
    frames: list | None


def _detach(state):
    if isinstance(state, torch.Tensor):
        return state.detach()
    if hasattr(state, "_fields"):  # a named tuple: ActorState, LIFState, ...
        return type(state)(*(_detach(s) for s in state))
    if isinstance(state, (tuple, list)):
        return type(state)(_detach(s) for s in state)
    return state


def build_actor(config: ActorConfig) -> SpikingActor | AnnActor:
    return AnnActor(config) if config.kind == "ann" else SpikingActor(config)


def policy_payload(actor: SpikingActor | AnnActor) -> dict:
    """What ``policy.pt`` holds: plain config data and tensors (``weights_only`` loadable)."""
    return {
        "format": "neurodeploy-policy/1",
        "config": actor.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in actor.state_dict().items()},
    }


def actor_from_payload(payload: dict, source: str = "policy") -> SpikingActor | AnnActor:
    """Rebuild an actor from :func:`policy_payload` output; errors name ``source``."""
    if not isinstance(payload, dict) or payload.get("format") != "neurodeploy-policy/1":
        raise CheckpointError(f"{source} is not a neurodeploy policy (missing format tag)")
    actor = build_actor(ActorConfig.from_dict(payload["config"]))
    try:
        actor.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise CheckpointError(
            f"{source}: weights do not match its actor config ({first})"
        ) from None
    return actor
