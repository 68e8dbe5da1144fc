"""NIR layers -> Lava processes (Dense + LIF), run in ``floating_pt`` or ``fixed_pt``.

Timing (per-action reset): an action's input spike trains are injected at steps
kP+1 .. kP+T (P = T + L steps per action, L layers). Every Dense adds one step, so
layer l integrates that action during steps kP+l+1 .. kP+l+T. Each layer is a
``LIFReset`` that zeroes ``u`` and ``v`` at the start of step kP+l+1
(``reset_interval = P``, ``reset_offset = l + 1``), i.e. at the start of its window;
whatever a layer does outside its window (biases keep integrating) never reaches the
next layer's window. The compiled graph runs any number of actions. netx builds the
same schedule from ``Network(reset_interval=P, reset_offset=1)``.

Stateful: plain ``LIF`` layers, T steps per action, never reset between actions;
the torch actor models the one-step delay per layer (``neurodeploy.export.timing``),
so layer spikes at Lava step t are the actor's spikes at step t.

Graded input (the direct encoder): the first Dense gets ``num_message_bits`` and
multiplies the input values by its weights (``neurodeploy.export.loihi2.chip_input``).
"""

from __future__ import annotations

import numpy as np

from neurodeploy.errors import ExportError
from neurodeploy.export.loihi2 import GRADED_BITS, FixedLayer
from neurodeploy.export.nir_graph import Layer
from neurodeploy.lava_compat import import_lava


def float_lif_params(layer: Layer, index: int) -> dict:
    """Lava float LIF parameters; per-neuron thresholds are folded into the weights."""
    if np.ptp(layer.decay) > 1e-12 or np.ptp(layer.current_decay) > 1e-12:
        raise ExportError(
            f"layer {index}: per-neuron decays cannot run on Lava's LIF; "
            "train with per_neuron=False"
        )
    if layer.current_decay[0] != 0 and np.any(layer.bias != 0):
        raise ExportError(
            f"layer {index}: a bias on a persistent synaptic current has no Lava "
            "equivalent (Lava adds biases to the membrane)"
        )
    gain = 1.0 / layer.threshold  # threshold 1 after folding
    return {
        "weights": layer.weight * gain[:, None],
        "du": 1.0 - float(layer.current_decay[0]),
        "dv": 1.0 - float(layer.decay[0]),
        "vth": 1.0,
        "bias_mant": (layer.bias + layer.v_bias) * gain,
        "bias_exp": 0,
        "num_message_bits": 0,  # binary spikes in; from_float sets graded input
    }


def fixed_lif_params(fixed: FixedLayer) -> dict:
    return {
        "weights": fixed.weight,
        "weight_exp": fixed.weight_exp,
        "du": fixed.du,
        "dv": fixed.dv,
        "vth": fixed.vth,
        "bias_mant": fixed.bias_mant,
        "bias_exp": fixed.bias_exp,
        "num_message_bits": fixed.input_bits,
    }


class LavaNetwork:
    """The compiled Lava graph of a chain of layers, fed from and read by ring buffers."""

    def __init__(self, params: list[dict], timesteps: int, fixed: bool, stateful: bool = False):
        self.params, self.timesteps, self.fixed = params, timesteps, fixed
        self.stateful = stateful
        self.copies = 1  # networks side by side (:meth:`tiled`)
        self.period = timesteps if stateful else timesteps + len(params)  # Lava steps per action
        self.processes: list[tuple] = []  # (Dense, LIF) per layer, once built

    @classmethod
    def from_float(
        cls, layers: list[Layer], timesteps: int, stateful=False, graded=False
    ) -> LavaNetwork:
        params = [float_lif_params(layer, i) for i, layer in enumerate(layers)]
        if graded:
            params[0]["num_message_bits"] = GRADED_BITS
        return cls(params, timesteps, False, stateful)

    @classmethod
    def from_fixed(cls, layers: list[FixedLayer], timesteps: int, stateful=False) -> LavaNetwork:
        return cls([fixed_lif_params(f) for f in layers], timesteps, True, stateful)

    def tiled(self, copies: int) -> LavaNetwork:
        """``copies`` independent copies of this network as one network with N-wide
        populations: block-diagonal weights, tiled biases, the same decays, thresholds and
        schedule. Copy k reads input block k and writes output block k; since every
        neuron's update is its own, each copy computes exactly what the single network does."""
        params = []
        for p in self.params:
            q, (n_out, n_in) = dict(p), p["weights"].shape
            q["weights"] = np.zeros((copies * n_out, copies * n_in), p["weights"].dtype)
            for k in range(copies):
                q["weights"][k * n_out : (k + 1) * n_out, k * n_in : (k + 1) * n_in] = p["weights"]
            q["bias_mant"] = np.tile(p["bias_mant"], copies)
            params.append(q)
        net = LavaNetwork(params, self.timesteps, self.fixed, self.stateful)
        net.copies = self.copies * copies
        return net

    @property
    def dtype(self):
        return np.int32 if self.fixed else float

    @property
    def tag(self) -> str:
        return "fixed_pt" if self.fixed else "floating_pt"

    def build(self, source_port) -> list:
        """Dense -> LIF(Reset) per layer, fed from ``source_port``; returns the LIF processes."""
        # N copies: Lava's Sparse (a CSR matrix holds only the diagonal blocks; the same
        # bit-accurate arithmetic as Dense), so a step costs what N networks' synapses do
        Dense = import_lava("lava.proc.dense.process").Dense
        if self.copies > 1:
            Dense = import_lava("lava.proc.sparse.process").Sparse
        lif_process = import_lava("lava.proc.lif.process")

        P, lifs, prev = self.period, [], source_port
        for index, p in enumerate(self.params, start=1):
            dense_kw = {
                "weights": p["weights"].astype(self.dtype),
                "num_message_bits": p["num_message_bits"],
            }
            if self.fixed:
                dense_kw["weight_exp"] = p["weight_exp"]
            dense = Dense(**dense_kw)
            lif_kw = dict(
                shape=(p["weights"].shape[0],),
                du=p["du"],
                dv=p["dv"],
                vth=p["vth"],
                bias_mant=p["bias_mant"].astype(self.dtype),
                bias_exp=p["bias_exp"],
            )
            if self.stateful:
                lif = lif_process.LIF(**lif_kw)
            else:  # zero u, v at the start of this layer's window
                lif = lif_process.LIFReset(**lif_kw, reset_interval=P, reset_offset=(index + 1) % P)
            prev.connect(dense.s_in)
            dense.a_out.connect(lif.a_in)
            lifs.append(lif)
            self.processes.append((dense, lif))
            prev = lif.s_out
        return lifs

    def run(self, spikes_in: np.ndarray) -> list[np.ndarray]:
        """Input frames [T, B, n_in] (spikes, or graded values) -> every layer's spike trains.

        Stateful: B = 1 and T is the whole trajectory (any number of actions).
        """
        source = import_lava("lava.proc.io.source")
        sink = import_lava("lava.proc.io.sink")
        RunSteps = import_lava("lava.magma.core.run_conditions").RunSteps
        Loihi2SimCfg = import_lava("lava.magma.core.run_configs").Loihi2SimCfg

        T, B, n_in = spikes_in.shape
        if self.stateful:  # one trajectory, run continuously
            if B != 1:
                raise ValueError("a stateful network runs one trajectory [N, 1, n_in]")
            data, total = spikes_in[:, 0].T, T
        else:
            if T != self.timesteps:
                raise ValueError(f"expected {self.timesteps} timesteps, got {T}")
            P, total = self.period, B * self.period
            data = np.zeros((n_in, total))
            for k in range(B):
                data[:, k * P : k * P + T] = spikes_in[:, k].T
        src = source.RingBuffer(data=data.astype(self.dtype))
        sinks = []
        for lif in self.build(src.s_out):
            out = sink.RingBuffer(shape=lif.s_out.shape, buffer=total)
            lif.s_out.connect(out.a_in)
            sinks.append(out)
        try:
            src.run(condition=RunSteps(num_steps=total), run_cfg=Loihi2SimCfg(select_tag=self.tag))
            recorded = [np.asarray(s.data.get()) for s in sinks]
        finally:
            src.stop()
        if self.stateful:  # step t of every layer is column t
            return [(rec.T[:, None, :] != 0).astype(np.int8) for rec in recorded]
        trains = []
        for index, rec in enumerate(recorded, start=1):
            out = np.zeros((T, B, rec.shape[0]), np.int8)
            for k in range(B):
                out[:, k] = rec[:, k * P + index : k * P + index + T].T != 0
            trains.append(out)
        return trains
