"""The hub: a spiking actor's core as a NIR graph, and a NIR graph as a list of layers.

Convention (stated in the graph's metadata, see docs/export.md):

- ``metadata.dt``: how long one SNN timestep is in the graph's time unit; forward Euler.
  NIR itself has no dt, and each reader assumes its own: snnTorch's ``import_from_nir``
  assumes dt = 1e-4 s and cannot be told otherwise, norse's ``from_nir`` takes
  ``dt`` (default 1e-3 s). The exporter writes one of three *flavours*
  (``FLAVOURS``), which differ only in that time unit (and, for norse, in where the
  LIF input gain sits); all three mean the same network and compile identically.
- Per step: the synaptic current (CubaLIF) is updated first, then the membrane
  with the new current, then the neuron spikes when ``v > v_threshold`` and is set
  to ``v_reset``.
- With forward Euler, NIR's ``tau dv/dt = (v_leak - v) + r I`` is
  ``v <- (1 - dt/tau) v + (dt/tau) v_leak + (r dt/tau) I``. With ``tau = k dt`` the
  exporter writes ``r = k`` (and ``w_in = k_syn``) so inputs add one to one:

  * paper LIF  ``v = decay v + W x + b``   -> Affine(W, b), LIF(tau = dt/(1 - decay))
  * CLIF       ``c = cd c + W x + b``      -> Affine(W, b), CubaLIF(tau_syn = dt/(1 - cd))
  * loihi      ``u = (1-(du+1)/4096) u + W x ; v = (1-dv/4096) v + u + bias``
               -> Affine(W_eff, 0), CubaLIF(tau_syn = 4096 dt/(du+1), tau_mem = 4096 dt/dv,
               v_leak = bias * tau_mem/dt); W_eff is the quantised weight in float units.

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

DT = 1.0  # the generic flavour: one time unit per SNN step
# flavour -> the dt it states (the time one SNN step lasts, in the graph's time unit)
FLAVOURS = {
    "generic": DT,
    "snntorch": 1e-4,  # snnTorch's import_from_nir assumes dt = 1e-4 s
    "norse": 1e-3,  # norse's from_nir defaults to dt = 1e-3 s and ignores a LIF node's r
}
DT_CONVENTIONS = "snnTorch's export_to_nir writes seconds at dt = 1e-4 s, norse's to_nir at 1e-3 s"
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
    """Time constant in SNN steps of a per-step decay (inf: never decays)."""
    with np.errstate(divide="ignore"):
        return np.where(decay >= 1.0, NO_DECAY, 1.0 / (1.0 - decay))


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
        elif model == "lif":  # the decays clamped to [0, 1], as the torch neurons use them
            layers.append(
                Layer(
                    w,
                    b,
                    "lif",
                    _per_neuron(neuron.decay.clamp(0, 1), n),
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
                    _per_neuron(neuron.decay.clamp(0, 1), n),
                    _per_neuron(neuron.current_decay.clamp(0, 1), n),
                    _per_neuron(neuron.threshold, n),
                )
            )
    return layers


def layers_to_nir(layers: list[Layer], metadata: dict, flavour: str = "generic") -> nir.NIRGraph:
    """The layers as a NIR chain in ``flavour``'s time unit (``FLAVOURS``).

    A time constant of k steps is written as ``tau = k dt`` with ``r = k`` (``w_in = k``
    for the synaptic current), so each Affine output adds one to one. The norse flavour
    moves a LIF node's ``r`` into the Affine before it (weights and bias times ``r``,
    then ``r = 1``), because norse's ``from_nir`` ignores ``r`` on LIF nodes.
    """
    if flavour not in FLAVOURS:
        raise ExportError(f"unknown NIR flavour {flavour!r}; choose one of {', '.join(FLAVOURS)}")
    dt = FLAVOURS[flavour]
    n_in = layers[0].weight.shape[1]
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])})}
    edges, prev = [], "input"
    for i, layer in enumerate(layers):
        n = layer.size
        steps = _tau(layer.decay)  # membrane time constant in SNN steps
        syn_steps = _tau(layer.current_decay) if layer.neuron == "cuba" else steps[:0]
        if flavour != "generic" and (np.isinf(steps).any() or np.isinf(syn_steps).any()):
            raise ExportError(
                f"layer {i}: a state that never decays (decay 1) is written as tau = inf, "
                f"which {flavour}'s NIR importer reads as a frozen state; export with "
                "--nir-flavour generic (neurodeploy and Lava read it as trained)"
            )
        if np.any(np.isinf(steps) & (layer.v_bias != 0)):
            raise ExportError(f"layer {i}: a membrane bias needs a decaying membrane in NIR")
        r = np.where(np.isinf(steps), 1.0, steps)
        weight, bias = layer.weight, layer.bias
        if flavour == "norse" and layer.neuron == "lif":
            weight, bias, r = weight * r[:, None], bias * r, np.ones(n)
        nodes[f"affine{i}"] = nir.Affine(
            weight=weight.astype(np.float32), bias=bias.astype(np.float32)
        )
        common = dict(
            tau_mem=steps * dt,
            r=r,
            v_leak=layer.v_bias * np.where(np.isinf(steps), 0.0, steps),  # no bias there
            v_threshold=layer.threshold,
            v_reset=np.zeros(n),
        )
        meta = {"loihi_vth": layer.vth} if layer.vth is not None else {}
        if layer.neuron == "lif":
            common["tau"] = common.pop("tau_mem")
            nodes[f"neuron{i}"] = nir.LIF(**common, metadata=meta)
        else:
            w_in = np.where(np.isinf(syn_steps), 1.0, syn_steps)
            nodes[f"neuron{i}"] = nir.CubaLIF(
                tau_syn=syn_steps * dt, w_in=w_in, **common, metadata=meta
            )
        edges += [(prev, f"affine{i}"), (f"affine{i}", f"neuron{i}")]
        prev = f"neuron{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([layers[-1].size])})
    edges.append((prev, "output"))
    meta = {"dt": dt, "flavour": flavour, "discretisation": DISCRETISATION, **metadata}
    if flavour != "generic":
        meta["time_unit"] = "s"
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def graph_dt(graph: nir.NIRGraph, source: str = "NIR graph", dt: float | None = None) -> float:
    """The dt the graph's time constants are written for: ``metadata.dt``, or ``dt`` (the
    ``--dt`` option) when the graph states none. Refuses a graph without either."""
    stated = (graph.metadata or {}).get("dt")
    if stated is None and dt is None:
        raise ExportError(
            f"{source} states no dt in its metadata; pass --dt with the time step its time "
            f"constants were written for ({DT_CONVENTIONS})"
        )
    if stated is not None and dt is not None and not np.isclose(float(stated), dt, rtol=1e-9):
        raise ExportError(f"{source} states dt = {stated} in its metadata; --dt {dt} disagrees")
    value = float(stated if stated is not None else dt)
    if not value > 0:
        raise ExportError(f"{source}: dt must be positive, not {value}")
    return value


def _chain(graph: nir.NIRGraph, source: str) -> list[tuple[str, nir.NIRNode, str, nir.NIRNode]]:
    """(synapse name, synapse, neuron name, neuron) per layer of a chain
    Input -> (Affine|Linear -> LIF|CubaLIF)* -> Output."""
    nxt = {}
    for a, b in graph.edges:
        if a in nxt:
            raise ExportError(f"{source}: node {a!r} has several successors; only chains compile")
        nxt[a] = b
    inputs = [k for k, v in graph.nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise ExportError(f"{source}: expected one Input node, found {len(inputs)}")
    chain, name = [], nxt.get(inputs[0])
    while name is not None and not isinstance(graph.nodes[name], nir.Output):
        syn = graph.nodes[name]
        if not isinstance(syn, (nir.Affine, nir.Linear)):
            raise ExportError(
                f"{source}: node {name!r} is {type(syn).__name__}; expected Affine or Linear"
            )
        neuron_name = nxt.get(name)
        neuron = graph.nodes.get(neuron_name)
        if not isinstance(neuron, (nir.LIF, nir.CubaLIF)):
            got = type(neuron).__name__ if neuron is not None else "nothing"
            raise ExportError(f"{source}: {name!r} is followed by {got}; expected LIF or CubaLIF")
        if np.any(np.asarray(neuron.v_reset if neuron.v_reset is not None else 0.0) != 0):
            raise ExportError(
                f"{source}: {neuron_name!r} resets to a non-zero v_reset; Lava resets to 0"
            )
        chain.append((name, syn, neuron_name, neuron))
        name = nxt.get(neuron_name)
    if not chain:
        raise ExportError(f"{source}: no Affine -> neuron layer found")
    return chain


def _step_fraction(tau, n: int, dt: float, what: str) -> np.ndarray:
    """dt / tau per neuron (0 where tau is infinite); refuses tau < dt, which would make
    forward Euler overshoot (a decay per step below zero)."""
    tau = np.broadcast_to(np.asarray(tau, np.float64), (n,))
    with np.errstate(divide="ignore"):
        frac = np.where(np.isinf(tau), 0.0, dt / tau)
    if np.any(frac > 1.0):
        raise ExportError(
            f"{what} = {float(np.min(tau)):g} is shorter than dt = {dt:g}: its decay per step "
            f"would be {1 - float(np.max(frac)):g}. The time constants are probably in another "
            f"unit: pass --dt with the step they were written for ({DT_CONVENTIONS})"
        )
    return frac


def nir_to_layers(
    graph: nir.NIRGraph, source: str = "NIR graph", dt: float | None = None
) -> list[Layer]:
    """Read a chain Input -> (Affine|Linear -> LIF|CubaLIF)* -> Output back into layers.

    ``dt`` comes from the graph metadata (or ``dt`` when the graph states none; see
    :func:`graph_dt`), and the neuron parameters are discretised with forward Euler at it.
    """
    dt = graph_dt(graph, source, dt)
    layers = []
    for _, syn, neuron_name, neuron in _chain(graph, source):
        w = np.asarray(syn.weight, np.float64)
        b = np.asarray(getattr(syn, "bias", np.zeros(w.shape[0])), np.float64)
        n = w.shape[0]

        def arr(x, n=n):
            return np.broadcast_to(np.asarray(x, np.float64), (n,)).copy()

        where = f"{source}: {neuron_name!r}"
        if isinstance(neuron, nir.CubaLIF):
            mem = _step_fraction(neuron.tau_mem, n, dt, f"{where} tau_mem")
            syn_frac = _step_fraction(neuron.tau_syn, n, dt, f"{where} tau_syn")
            gain = arr(neuron.w_in) * np.where(syn_frac == 0, 1.0, syn_frac)
            gain *= arr(neuron.r) * np.where(mem == 0, 1.0, mem)
            kind, cur = "cuba", 1.0 - syn_frac
        else:
            mem = _step_fraction(neuron.tau, n, dt, f"{where} tau")
            gain = arr(neuron.r) * np.where(mem == 0, 1.0, mem)
            kind, cur = "lif", np.zeros(n)
        v_bias = arr(neuron.v_leak) * mem
        threshold = arr(neuron.v_threshold)
        if not np.all(threshold > 0):  # Lava and Loihi run v > 1 after folding it in
            raise ExportError(f"{where}: v_threshold must be > 0, not {threshold.min():g}")
        # fold the input gain into the weights: the compiled layer adds inputs one to one
        vth = (neuron.metadata or {}).get("loihi_vth")
        layers.append(
            Layer(
                w * gain[:, None],
                b * gain,
                kind,
                1.0 - mem,
                cur,
                threshold,
                v_bias,
                None if vth is None else int(vth),
            )
        )
    return layers


def simulate_nir(
    graph: nir.NIRGraph,
    spikes_in: np.ndarray,
    dt: float | None = None,
    stateful: bool = False,
) -> list[np.ndarray]:
    """The graph's own equations, forward Euler at its dt, from zero state, in float64.

    The reference for a foreign graph (``--from-nir``): it reads the NIR parameters as
    written (tau, r, w_in, v_leak at dt), not the compiled layers, so the compiler's
    folding of r, w_in and v_leak into the layers is checked. The time unit is not: both
    sides read dt through ``graph_dt`` and ``_step_fraction`` (the interop tests check it
    against snnTorch and norse themselves). ``stateful``: each layer one step late, as on
    Lava. Returns each layer's spike trains [T, B, n].
    """
    dt = graph_dt(graph, "NIR graph", dt)
    trains, x = [], spikes_in.astype(np.float64)
    for _, syn, _, neuron in _chain(graph, "NIR graph"):
        if stateful:
            x = delayed(x)
        w = np.asarray(syn.weight, np.float64)
        b = np.asarray(getattr(syn, "bias", np.zeros(w.shape[0])), np.float64)
        n = w.shape[0]

        def arr(value, n=n):
            return np.broadcast_to(np.asarray(value, np.float64), (n,))

        cuba = isinstance(neuron, nir.CubaLIF)
        mem = _step_fraction(neuron.tau_mem if cuba else neuron.tau, n, dt, "tau")
        syn_frac = _step_fraction(neuron.tau_syn, n, dt, "tau_syn") if cuba else None
        i = np.zeros((x.shape[1], n))
        v = np.zeros_like(i)
        out = np.zeros((x.shape[0], *v.shape), np.int8)
        for t in range(x.shape[0]):
            current = x[t] @ w.T + b
            if cuba:  # tau_syn di/dt = -i + w_in I, then the membrane sees the new i
                jump = arr(neuron.w_in) * current  # tau = inf: i integrates w_in I
                i = i + np.where(syn_frac == 0, jump, syn_frac * (jump - i))
                current = i
            drive = arr(neuron.r) * current
            v = v + np.where(mem == 0, drive, mem * (arr(neuron.v_leak) - v + drive))
            s = v > arr(neuron.v_threshold)
            v = np.where(s, 0.0, v)
            out[t] = s
        trains.append(out)
        x = out.astype(np.float64)
    return trains


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


def write_nir(graph: nir.NIRGraph, path: Path) -> None:
    nir.write(str(path), graph)


def read_nir(path: Path) -> nir.NIRGraph:
    try:
        return nir.read(str(path))
    except Exception as exc:
        raise BundleError(
            f"{path} is not a readable NIR file ({str(exc).splitlines()[0][:200]})"
        ) from None
