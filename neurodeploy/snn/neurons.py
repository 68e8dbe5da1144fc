"""Spiking neuron models: pure step functions under thin ``nn.Module`` wrappers.

Every step function takes the input current of one timestep and the previous
state, and returns ``(spikes, new_state)``. The module holds the parameters
(fixed buffers or learnable ``nn.Parameter``, one value per layer or per neuron),
names them as the NIR node it exports to, and calls the step function.

Equations (Xu et al., Proxy Target, NeurIPS 2025; lava-nc 0.10.0 LIF):

- ``lif``    v = decay * v * (1 - s_prev) + I            s = [v > threshold]   (hard reset)
             v = decay * (v - threshold * s_prev) + I                         (subtractive reset)
- ``clif``   c = current_decay * c + I, then as ``lif`` with c as input
- ``dn``     c = 0.5 c + I ; v = v (1 - s) + 0.021 s ; u = u + 0.132 s ;
             dv = v^2 - v - u + c ; du = -0.172 v + 0.529 u ; v += dv ; u += du ; s = [v > 0.5]
- ``loihi``  Lava LIF ``fixed_pt`` on integers (stored in float64):
             u = trunc(u (4096 - du - 1) / 4096) + (a << 6), wrapped to 24 bits
             v = trunc(v (4096 - dv) / 4096) + u + bias, clipped to 24 bits
             s = [v > vth << 6] ; v = 0 where s
             Rounding uses straight-through estimators. Weights are trained in the
             float LIF's units (threshold ``threshold``): the chip scale is
             vth / threshold, and the surrogate sees (v - vth<<6) / (vth<<6) * threshold,
             so gradients match those of the float LIF.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import torch
from torch import nn

from neurodeploy.errors import ConfigError
from neurodeploy.snn.kernels import fused_lif
from neurodeploy.snn.surrogate import Surrogate

NEURON_MODELS = ("lif", "clif", "dn", "loihi")

# Loihi 2 fixed-point constants (lava-nc 0.10.0 PyLifModelBitAcc).
DECAY_UNITY = 4096
ACT_SHIFT = 6
VTH_SHIFT = 6
UV_MAX = 2**23


@dataclass
class NeuronConfig:
    """Which neuron a layer uses and how its parameters behave.

    ``per_neuron`` gives each neuron its own decay and threshold (stateful
    policies); the default is one value per layer, which is what Lava's LIF can run.
    """

    model: str = "lif"
    decay: float = 0.75  # voltage decay per timestep (lif, clif)
    current_decay: float = 0.5  # clif
    threshold: float = 0.5  # lif, clif, dn
    reset: str = "hard"  # hard | subtract (lif, clif)
    # False: the layer's affine map has no bias (held at zero). A clif bias feeds the
    # persistent synaptic current, which Lava/Loihi 2 cannot represent; bias-free clif deploys.
    bias: bool = True
    learn_decay: bool = False
    learn_threshold: bool = False
    per_neuron: bool = False
    surrogate: str = "rect"
    slope: float = 1.0
    # loihi: integer parameters of the Lava LIF
    du: int = 4095  # current cleared every step: I = W x, as the paper LIF
    dv: int = 1024  # voltage keeps 3072/4096 = 0.75
    vth: int = 256  # fires when v > vth << 6

    def __post_init__(self):
        if self.model not in NEURON_MODELS:
            raise ConfigError(
                f"unknown neuron model {self.model!r}; choose one of {', '.join(NEURON_MODELS)}"
            )
        if self.reset not in ("hard", "subtract"):
            raise ConfigError(f"neuron reset must be 'hard' or 'subtract', not {self.reset!r}")
        if self.model == "loihi" and not (0 <= self.du < 4096 and 0 <= self.dv < 4096):
            raise ConfigError("loihi neuron: du and dv are 12-bit (0..4095)")
        if self.model == "loihi" and not (0 < self.vth < 2**17):
            raise ConfigError("loihi neuron: vth is 17-bit (1..131071)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> NeuronConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown neuron options: {', '.join(sorted(unknown))}")
        return cls(**data)


def _ste(x: torch.Tensor, rounded: torch.Tensor) -> torch.Tensor:
    """Forward ``rounded``, backward identity."""
    return x + (rounded - x).detach()


# --- pure step functions ---------------------------------------------------------------


def lif_step(current, v, s_prev, decay, threshold, spike_fn, reset="hard"):
    if reset == "hard":
        v = decay * v * (1.0 - s_prev) + current
    else:
        v = decay * (v - threshold * s_prev) + current
    s = spike_fn(v - threshold)
    return s, v


def clif_step(current, c, v, s_prev, current_decay, decay, threshold, spike_fn, reset="hard"):
    c = current_decay * c + current
    s, v = lif_step(c, v, s_prev, decay, threshold, spike_fn, reset)
    return s, c, v


DN_CONSTANTS = {
    "current_decay": 0.5,
    "v_reset": 0.021,
    "u_jump": 0.132,
    "theta_v": -0.172,
    "theta_u": 0.529,
    "threshold": 0.5,
}


def dn_step(current, c, v, u, s_prev, spike_fn, k=DN_CONSTANTS):
    c = k["current_decay"] * c + current
    v = v * (1.0 - s_prev) + k["v_reset"] * s_prev
    u = u + k["u_jump"] * s_prev
    dv = v * v - v - u + c
    du = k["theta_v"] * v + k["theta_u"] * u
    v = v + dv
    u = u + du
    s = spike_fn(v - k["threshold"])
    return s, c, v, u


def _trunc(x: torch.Tensor) -> torch.Tensor:
    """Round toward zero, as ``torch.trunc``, in ops ONNX has (it has no Trunc)."""
    return torch.where(x < 0, torch.ceil(x), torch.floor(x))


def loihi_step(a_in, u, v, du, dv, vth, bias, spike_fn, threshold=1.0):
    """One Lava ``fixed_pt`` LIF step; ``a_in`` is the integer Dense output."""
    decayed_u = u * (DECAY_UNITY - du - 1) / DECAY_UNITY
    u = _ste(decayed_u, _trunc(decayed_u)) + a_in * (1 << ACT_SHIFT)
    u = _ste(
        u, torch.where(u > UV_MAX, u - 2 * UV_MAX, torch.where(u <= -UV_MAX, u + 2 * UV_MAX, u))
    )
    decayed_v = v * (DECAY_UNITY - dv) / DECAY_UNITY
    v = _ste(decayed_v, _trunc(decayed_v)) + u + bias
    v = _ste(v, v.clamp(-UV_MAX + 1, UV_MAX - 1))
    vth_eff = vth * (1 << VTH_SHIFT)
    s = spike_fn((v - vth_eff) / vth_eff * threshold)
    v = v * (1.0 - s)
    return s, u, v


# --- states: one named tuple per model (as norse's functional states) ----------------------


class LIFState(NamedTuple):
    """Membrane potential ``v`` and the last step's spikes ``s`` (the reset reads them)."""

    v: torch.Tensor
    s: torch.Tensor


class CLIFState(NamedTuple):
    """Synaptic current ``c``, membrane potential ``v`` and the last step's spikes ``s``."""

    c: torch.Tensor
    v: torch.Tensor
    s: torch.Tensor


class DNState(NamedTuple):
    """Input current ``c``, potential ``v``, recovery ``u`` and the last step's spikes ``s``."""

    c: torch.Tensor
    v: torch.Tensor
    u: torch.Tensor
    s: torch.Tensor


class LoihiState(NamedTuple):
    """Lava LIF's current ``u`` and voltage ``v``, integers held in float64."""

    u: torch.Tensor
    v: torch.Tensor


# --- modules ----------------------------------------------------------------------------


class Neuron(nn.Module):
    """Base: parameter handling shared by all models."""

    def __init__(self, size: int, config: NeuronConfig):
        super().__init__()
        self.size = size
        self.config = config
        self.spike_fn = Surrogate(config.surrogate, config.slope)

    def _param(self, name: str, value: float, learn: bool) -> None:
        shape = (self.size,) if self.config.per_neuron else ()
        tensor = torch.full(shape, float(value))
        if learn:
            self.register_parameter(name, nn.Parameter(tensor))
        else:
            self.register_buffer(name, tensor)

    State: type[NamedTuple]  # the model's state
    state_dtype = torch.float32

    def initial_state(self, batch: int, device=None) -> NamedTuple:
        """The model's state at rest: every field zero, [batch, size]."""
        zeros = torch.zeros(batch, self.size, device=device, dtype=self.state_dtype)
        return self.State(*(zeros.clone() for _ in self.State._fields))

    def sequence(self, currents: torch.Tensor, state=None, **kwargs):
        """currents [T, B, N] -> spikes [T, B, N], final state (state None: start from zero)."""
        if state is None:
            state = self.initial_state(currents.shape[1], device=currents.device)
        spikes = []
        for current in currents:
            s, state = self(current, state, **kwargs)
            spikes.append(s)
        return torch.stack(spikes), state


class LIF(Neuron):
    State = LIFState

    def __init__(self, size, config):
        super().__init__(size, config)
        self._param("decay", config.decay, config.learn_decay)
        self._param("threshold", config.threshold, config.learn_threshold)

    @property
    def fusable(self) -> bool:
        c = self.config
        return c.reset == "hard" and not (c.learn_decay or c.learn_threshold or c.per_neuron)

    def sequence(self, currents, state=None):
        if state is not None or not self.fusable or torch.jit.is_tracing():
            return super().sequence(currents, state)
        spikes, final_v = fused_lif(
            currents,
            float(self.decay.clamp(0, 1)),
            float(self.threshold),
            self.config.surrogate,
            self.spike_fn.slope,
        )
        return spikes, LIFState(final_v, spikes[-1].detach())

    def forward(self, current, state: LIFState):
        s, v = lif_step(
            current, state.v, state.s, self.decay.clamp(0, 1), self.threshold, self.spike_fn,
            self.config.reset,
        )  # fmt: skip
        return s, LIFState(v, s)


class CLIF(Neuron):
    State = CLIFState

    def __init__(self, size, config):
        super().__init__(size, config)
        self._param("current_decay", config.current_decay, config.learn_decay)
        self._param("decay", config.decay, config.learn_decay)
        self._param("threshold", config.threshold, config.learn_threshold)

    def forward(self, current, state: CLIFState):
        s, c, v = clif_step(
            current,
            state.c,
            state.v,
            state.s,
            self.current_decay.clamp(0, 1),
            self.decay.clamp(0, 1),
            self.threshold,
            self.spike_fn,
            self.config.reset,
        )
        return s, CLIFState(c, v, s)


class DN(Neuron):
    State = DNState

    def forward(self, current, state: DNState):
        s, c, v, u = dn_step(current, state.c, state.v, state.u, state.s, self.spike_fn)
        return s, DNState(c, v, u, s)


class LoihiCUBA(Neuron):
    """Lava's LIF on the Loihi 2 fixed-point grid; states are integers in float64."""

    State = LoihiState
    state_dtype = torch.float64

    def __init__(self, size, config):
        super().__init__(size, config)
        self._param("du", config.du, config.learn_decay)
        self._param("dv", config.dv, config.learn_decay)
        self.register_buffer("vth", torch.tensor(float(config.vth)))
        self.threshold = config.threshold

    @property
    def chip_scale(self) -> float:
        """Chip units (before the << 6) per float unit of weight or bias."""
        return float(self.vth) / self.threshold

    def integer_decays(self) -> tuple[torch.Tensor, torch.Tensor]:
        du = _ste(self.du, self.du.round()).clamp(0, DECAY_UNITY - 1)
        dv = _ste(self.dv, self.dv.round()).clamp(0, DECAY_UNITY - 1)
        return du, dv

    def forward(self, a_in, state: LoihiState, bias=0.0):
        du, dv = self.integer_decays()
        s, u, v = loihi_step(
            a_in.double(),
            state.u,
            state.v,
            du.double(),
            dv.double(),
            self.vth.double(),
            bias,
            self.spike_fn,
            self.threshold,
        )
        return s.float(), LoihiState(u, v)


NEURONS = {"lif": LIF, "clif": CLIF, "dn": DN, "loihi": LoihiCUBA}


def make_neuron(size: int, config: NeuronConfig) -> Neuron:
    return NEURONS[config.model](size, config)
