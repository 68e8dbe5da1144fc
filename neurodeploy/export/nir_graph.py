"""The hub: a spiking actor's core as a NIR graph, and a NIR graph as a list of layers.

Convention (stated in the graph's metadata, see docs/export.md):

- ``dt = 1``: one NIR time unit is one SNN timestep; forward Euler.
- Per step: the synaptic current (CubaLIF) is updated first, then the membrane
  with the new current, then the neuron spikes when ``v > v_threshold`` and is set
  to ``v_reset``.
- With forward Euler and ``dt = 1``, NIR's ``tau dv/dt = (v_leak - v) + r I`` is
  ``v <- (1 - 1/tau) v + v_leak/tau + (r/tau) I``. The exporter writes ``r = tau``
  (and ``w_in = tau_syn``) so inputs add one to one:

  * paper LIF  ``v = decay v + W x + b``   -> Affine(W, b), LIF(tau = 1/(1 - decay))
  * CLIF       ``c = cd c + W x + b``      -> Affine(W, b), CubaLIF(tau_syn = 1/(1 - cd))
  * loihi      ``u = (1-(du+1)/4096) u + W x ; v = (1-dv/4096) v + u + bias``
               -> Affine(W_eff, 0), CubaLIF(tau_syn = 4096/(du+1), tau_mem = 4096/dv,
               v_leak = bias * tau_mem); W_eff is the quantised weight in float units.

Parameters are per-neuron arrays (NIR requires shape (N,), never scalars).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import nir
import numpy as np
import torch

from neurodeploy.errors import BundleError, ExportError
from neurodeploy.export.timing import delayed
from neurodeploy.snn.actor import SpikingActor

DT = 1.0
DISCRETISATION = (
    "forward-euler; synaptic current, then membrane with the new current, "
    "then spike (v > v_threshold) and v = v_reset"
)
NO_DECAY = np.inf  # tau of a state that never decays (decay = 1)


@dataclass
class Layer:
    """One affine map + neuron population, in float units (what NIR holds)."""

    weight: np.ndarray  # [out, in]
    bias: np.ndarray  # [out], added to the input current
    neuron: str  # "lif" (no synaptic state) | "cuba" (synaptic current state)
    decay: np.ndarray  # membrane decay per step, [out]
    current_decay: np.ndarray  # synaptic current decay per step (cuba), [out]
    threshold: np.ndarray  # [out]
    v_bias: np.ndarray = field(default=None)  # constant input to the membrane each step, [out]
    vth: int | None = None  # Loihi threshold mantissa of a layer trained on the chip's grid

    def __post_init__(self):
        if self.v_bias is None:
            self.v_bias = np.zeros_like(self.threshold)

    @property
    def size(self) -> int:
        return self.weight.shape[0]


def _tau(decay: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(decay >= 1.0, NO_DECAY, DT / (1.0 - decay))


def _decay(tau: np.ndarray) -> np.ndarray:
    return np.where(np.isinf(tau), 1.0, 1.0 - DT / tau)


def _per_neuron(value: torch.Tensor, n: int) -> np.ndarray:
    return np.broadcast_to(value.detach().double().numpy(), (n,)).astype(np.float64).copy()


def actor_layers(actor: SpikingActor) -> list[Layer]:
    """The actor's spiking core as float-unit layers (refuses what NIR cannot express)."""
    cfg = actor.config
    layers = []
    for i, layer in enumerate(actor.layers):
        n = layer.out_features
        name = f"layer {i} ({actor.layer_names[i]})"
        neuron = layer.neuron
        model = cfg.neuron.model
        if model == "dn":
            raise ExportError(
                f"{name}: the 'dn' neuron has no NIR node and no Lava or Loihi 2 model; "
                "train with --neuron lif, clif or loihi to deploy"
            )
        if model in ("lif", "clif") and cfg.neuron.reset != "hard":
            raise ExportError(
                f"{name}: subtractive reset has no NIR LIF equivalent (NIR resets to v_reset); "
                "train with reset='hard'"
            )
        w = layer.linear.weight.detach().double().numpy()
        b = layer.linear.bias.detach().double().numpy()
        if model == "loihi":
            q = layer.quantized()
            scale = neuron.chip_scale
            w = q["weight"].detach().double().numpy() * 2.0 ** q["weight_exp"] / scale
            v_bias = q["bias_mant"].detach().double().numpy() * 2.0 ** q["bias_exp"] / (scale * 64)
            du, dv = (d.detach().double().numpy() for d in neuron.integer_decays())
            layers.append(
                Layer(
                    w,
                    np.zeros(n),
                    "cuba",
                    decay=np.broadcast_to(1 - dv / 4096, (n,)).copy(),
                    current_decay=np.broadcast_to(1 - (du + 1) / 4096, (n,)).copy(),
                    threshold=np.full(n, neuron.threshold),
                    v_bias=v_bias,
                    vth=int(neuron.vth),
                )
            )
        elif model == "lif":
            layers.append(
                Layer(
                    w,
                    b,
                    "lif",
                    _per_neuron(neuron.decay, n),
                    np.zeros(n),
                    _per_neuron(neuron.threshold, n),
                )
            )
        else:  # clif
            layers.append(
                Layer(
                    w,
                    b,
                    "cuba",
                    _per_neuron(neuron.decay, n),
                    _per_neuron(neuron.current_decay, n),
                    _per_neuron(neuron.threshold, n),
                )
            )
    return layers


def layers_to_nir(layers: list[Layer], metadata: dict) -> nir.NIRGraph:
    n_in = layers[0].weight.shape[1]
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])})}
    edges, prev = [], "input"
    for i, layer in enumerate(layers):
        n = layer.size
        nodes[f"affine{i}"] = nir.Affine(
            weight=layer.weight.astype(np.float32), bias=layer.bias.astype(np.float32)
        )
        tau = _tau(layer.decay)
        v_leak = np.where(np.isinf(tau), 0.0, layer.v_bias * tau)
        if np.any(np.isinf(tau) & (layer.v_bias != 0)):
            raise ExportError(f"layer {i}: a membrane bias needs a decaying membrane in NIR")
        common = dict(
            tau_mem=tau,
            r=np.where(np.isinf(tau), 1.0, tau),
            v_leak=v_leak,
            v_threshold=layer.threshold,
            v_reset=np.zeros(n),
        )
        meta = {"loihi_vth": layer.vth} if layer.vth is not None else {}
        if layer.neuron == "lif":
            common["tau"] = common.pop("tau_mem")
            nodes[f"neuron{i}"] = nir.LIF(**common, metadata=meta)
        else:
            tau_syn = _tau(layer.current_decay)
            w_in = np.where(np.isinf(tau_syn), 1.0, tau_syn)
            nodes[f"neuron{i}"] = nir.CubaLIF(tau_syn=tau_syn, w_in=w_in, **common, metadata=meta)
        edges += [(prev, f"affine{i}"), (f"affine{i}", f"neuron{i}")]
        prev = f"neuron{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([layers[-1].size])})
    edges.append((prev, "output"))
    meta = {"dt": DT, "discretisation": DISCRETISATION, **metadata}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def nir_to_layers(graph: nir.NIRGraph, source: str = "NIR graph") -> list[Layer]:
    """Read a chain Input -> (Affine|Linear -> LIF|CubaLIF)* -> Output back into layers.

    ``dt`` comes from the graph metadata (default 1 with a note in the manifest) and
    the neuron parameters are discretised with forward Euler at that dt.
    """
    dt = float(graph.metadata.get("dt", DT)) if graph.metadata else DT
    nxt = {}
    for a, b in graph.edges:
        if a in nxt:
            raise ExportError(f"{source}: node {a!r} has several successors; only chains compile")
        nxt[a] = b
    inputs = [k for k, v in graph.nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise ExportError(f"{source}: expected one Input node, found {len(inputs)}")
    layers, name = [], nxt.get(inputs[0])
    while name is not None and not isinstance(graph.nodes[name], nir.Output):
        syn = graph.nodes[name]
        if not isinstance(syn, (nir.Affine, nir.Linear)):
            raise ExportError(
                f"{source}: node {name!r} is {type(syn).__name__}; expected Affine or Linear"
            )
        neuron_name = nxt.get(name)
        neuron = graph.nodes.get(neuron_name)
        w = np.asarray(syn.weight, np.float64)
        b = np.asarray(getattr(syn, "bias", np.zeros(w.shape[0])), np.float64)
        n = w.shape[0]

        def arr(x, n=n):
            return np.broadcast_to(np.asarray(x, np.float64), (n,)).copy()

        if isinstance(neuron, nir.CubaLIF):
            tau_syn, tau_mem = arr(neuron.tau_syn) / dt, arr(neuron.tau_mem) / dt
            gain = arr(neuron.w_in) / np.where(np.isinf(tau_syn), 1.0, tau_syn)
            gain *= arr(neuron.r) / np.where(np.isinf(tau_mem), 1.0, tau_mem)
            kind, cur = "cuba", _decay(tau_syn)
        elif isinstance(neuron, nir.LIF):
            tau_mem = arr(neuron.tau) / dt
            gain = arr(neuron.r) / np.where(np.isinf(tau_mem), 1.0, tau_mem)
            kind, cur = "lif", np.zeros(n)
        else:
            got = type(neuron).__name__ if neuron is not None else "nothing"
            raise ExportError(f"{source}: {name!r} is followed by {got}; expected LIF or CubaLIF")
        if np.any(np.asarray(neuron.v_reset if neuron.v_reset is not None else 0.0) != 0):
            raise ExportError(
                f"{source}: {neuron_name!r} resets to a non-zero v_reset; Lava resets to 0"
            )
        v_bias = np.where(
            np.isinf(tau_mem), 0.0, arr(neuron.v_leak) / np.where(np.isinf(tau_mem), 1, tau_mem)
        )
        # fold the input gain into the weights: the compiled layer adds inputs one to one
        vth = (neuron.metadata or {}).get("loihi_vth")
        layers.append(
            Layer(
                w * gain[:, None],
                b * gain,
                kind,
                _decay(tau_mem),
                cur,
                arr(neuron.v_threshold),
                v_bias,
                None if vth is None else int(vth),
            )
        )
        name = nxt.get(neuron_name)
    if not layers:
        raise ExportError(f"{source}: no Affine -> neuron layer found")
    return layers


def normalize_graph(graph: nir.NIRGraph) -> nir.NIRGraph:
    """Make a graph from another framework writable and type-checkable.

    norse's ``to_nir`` stores neuron parameters as 0-d tensors (``nir.write``/``nir.read``
    then fail) and gives Input/Output a batch dimension from the sample it traced. This
    returns a copy with numpy per-neuron arrays and unbatched Input/Output types.
    Installed packages are never modified.
    """
    sizes = {}
    for a, b in graph.edges:
        node = graph.nodes[a]
        if isinstance(node, (nir.Affine, nir.Linear)):
            sizes[b] = np.asarray(node.weight).shape[0]
    nodes = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Input):
            shape = np.asarray(next(iter(node.input_type.values())))
            nodes[name] = nir.Input(input_type={"input": shape[-1:]})
        elif isinstance(node, nir.Output):
            shape = np.asarray(next(iter(node.output_type.values())))
            nodes[name] = nir.Output(output_type={"output": shape[-1:]})
        elif isinstance(node, (nir.LIF, nir.CubaLIF)):
            n = sizes.get(name)
            if n is None:
                raise ExportError(f"NIR node {name!r}: cannot tell its size (no Affine before it)")
            params = {}
            for f in dataclasses.fields(node):
                value = getattr(node, f.name)
                if f.init and f.name != "metadata" and value is not None:
                    params[f.name] = np.broadcast_to(np.asarray(value, np.float64), (n,)).copy()
            nodes[name] = type(node)(**params, metadata=dict(node.metadata or {}))
        elif isinstance(node, nir.Affine):
            nodes[name] = nir.Affine(
                weight=np.asarray(node.weight, np.float32), bias=np.asarray(node.bias, np.float32)
            )
        else:
            nodes[name] = node
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=dict(graph.metadata or {}))


def from_norse(module: torch.nn.Module, sample: torch.Tensor, dt: float = 1e-3) -> nir.NIRGraph:
    """A norse model as a NIR graph this project compiles exactly.

    Two adjustments, made here and documented in docs/export.md: norse's ``to_nir``
    writes ``tau = dt / tau_mem_inv`` (norse issue 411: off by a factor dt), and it
    records no ``dt``. We divide tau by ``dt`` and state ``dt`` in the metadata, so
    ``tau dv/dt = (v_leak - v) + r I`` with forward Euler at ``dt`` reproduces norse's
    ``v += dt * tau_mem_inv * ((v_leak - v) + I)``.
    """
    import norse.torch as norse

    graph = normalize_graph(norse.to_nir(module, sample))
    for node in graph.nodes.values():
        if isinstance(node, nir.LIF):
            node.tau = node.tau / dt
        elif isinstance(node, nir.CubaLIF):
            node.tau_mem, node.tau_syn = node.tau_mem / dt, node.tau_syn / dt
    graph.metadata.update({"dt": dt, "discretisation": DISCRETISATION, "producer": "norse"})
    return graph


def to_norse(graph: nir.NIRGraph) -> torch.nn.Module:
    """norse's executable model of a LIF graph, with the one adjustment norse needs.

    norse's ``from_nir`` ignores a LIF node's ``r`` (it integrates
    ``v += dt/tau (v_leak - v + I)``), so ``r`` is folded into the preceding Affine
    (rows scaled by ``r``, then ``r = 1``) before handing the graph over.
    """
    import norse.torch as norse

    nodes = dict(graph.nodes)
    for a, b in graph.edges:
        syn, neuron = nodes[a], nodes[b]
        if isinstance(syn, nir.Affine) and isinstance(neuron, nir.LIF):
            r = np.asarray(neuron.r, np.float64)
            nodes[a] = nir.Affine(
                weight=(syn.weight * r[:, None]).astype(np.float32),
                bias=(syn.bias * r).astype(np.float32),
            )
            nodes[b] = nir.LIF(
                tau=neuron.tau,
                r=np.ones_like(r),
                v_leak=neuron.v_leak,
                v_threshold=neuron.v_threshold,
                v_reset=neuron.v_reset,
            )
        elif isinstance(neuron, nir.CubaLIF):
            raise ExportError(f"node {b!r}: the norse check covers LIF graphs only")
    adjusted = nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=dict(graph.metadata))
    return norse.from_nir(adjusted, dt=float(graph.metadata.get("dt", DT)))


def float_reference(
    layers: list[Layer], spikes_in: np.ndarray, stateful: bool = False, graded: bool = False
) -> list[np.ndarray]:
    """Float64 simulation of the layers (Lava float LIF semantics) from zero state.

    Per-action reset: each layer sees the previous layer's spikes of the same step.
    ``stateful``: one continuous run, each layer one step late (``export.timing``).
    ``graded``: the input is real-valued (the direct encoder), not spikes.
    """
    trains, x = [], spikes_in.astype(np.float64)
    for index, layer in enumerate(layers):
        if stateful:
            x = delayed(x)
        u = np.zeros((x.shape[1], layer.size))
        v = np.zeros_like(u)
        out = np.zeros((x.shape[0], *u.shape), np.int8)
        bias = (layer.bias + layer.v_bias) / layer.threshold
        w = layer.weight / layer.threshold[:, None]
        for t in range(x.shape[0]):
            if graded and index == 0:  # real-valued input: Lava's float Dense multiplies
                a = x[t] @ w.T
            else:  # sum the selected columns, as Lava's float Dense does for binary spikes
                a = np.stack([w[:, row.astype(bool)].sum(axis=1) for row in x[t]])
            u = u * layer.current_decay + a
            v = v * layer.decay + u + bias
            s = v > 1.0
            v[s] = 0.0
            out[t] = s
        trains.append(out)
        x = out.astype(np.float64)
    return trains


def write_nir(graph: nir.NIRGraph, path: Path) -> None:
    nir.write(str(path), graph)


def read_nir(path: Path) -> nir.NIRGraph:
    try:
        return nir.read(str(path))
    except Exception as exc:
        raise BundleError(
            f"{path} is not a readable NIR file ({str(exc).splitlines()[0][:200]})"
        ) from None
