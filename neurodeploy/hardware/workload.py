"""NeuroBench's workload metrics for a bundle's core, on the closed-loop inputs bench-energy ran.

NeuroBench (Yik et al., "The neurobench framework for benchmarking neuromorphic computing
algorithms and systems", Nature Communications 16, 1545, 2025; github.com/NeuroBench/neurobench)
counts synaptic operations with forward hooks on ``nn.Linear`` / ``nn.Conv*`` modules: per
call, the binarised input times the binarised weight (bias excluded), an AC when the input is
0/+-1 spikes and a MAC otherwise. Its activation sparsity reads the outputs of activation
modules; parameter count and footprint read the model's tensors; connection sparsity counts
zero weights.

:class:`CoreModel` is the shipped core as NeuroBench expects a model: for each layer an
``nn.Linear`` holding policy.net's integer weights (the hooks' target) and a
:class:`FixedNeuron` (the activation module) that runs the bit-exact emulator's neurons on that
Linear's output. Its spikes are the emulator's, so the inputs every Linear sees are the
synaptic events bench-energy counts. :func:`neurobench_metrics` runs NeuroBench's own
``Benchmark`` on it; NeuroBench is optional (``requirements-test.txt``): without it the report
says how to install it.
"""

from __future__ import annotations

import threading

import numpy as np
import torch
from torch import nn

from neurodeploy.export.emulator import lif_dynamics
from neurodeploy.export.loihi2 import FixedLayer
from neurodeploy.snn.sops import synaptic_ops

STATIC = ("ParameterCount", "Footprint", "ConnectionSparsity")
WORKLOAD = ("SynapticOperations", "ActivationSparsity")
INSTALL = "pip install --no-deps -r requirements-test.txt (neurobench 2.3.0 and tqdm)"


class FixedNeuron(nn.Module):
    """Loihi 2 LIF neurons of one layer (the emulator's arithmetic): integer synaptic input
    [T, B, n] -> spikes [T, B, n] (0/1, float). ``bias`` is the layer's bias register."""

    def __init__(self, fixed: FixedLayer):
        super().__init__()
        self.fixed = fixed
        bias = torch.as_tensor(fixed.effective_bias(), dtype=torch.float32)
        self.bias = nn.Parameter(bias, requires_grad=False)
        self.state = None  # (u, v), carried between calls by a stateful core

    def forward(self, synaptic: torch.Tensor, carry: bool = False) -> torch.Tensor:
        product = np.rint(synaptic.detach().double().numpy()).astype(np.int64)
        spikes, state = lif_dynamics(self.fixed, product, self.state if carry else None)
        self.state = state if carry else None
        return torch.from_numpy(spikes.astype(np.float32))


class CoreModel(nn.Module):
    """policy.net as Linear + FixedNeuron pairs: input frames [B, T, n_in] as the chip receives
    them -> output spikes [B, T, n_out].

    Per-action reset: every sample starts from zero state. Stateful: the samples are one
    closed-loop run in order (batch 1), the state carries over, every layer sees its input one
    step late (Lava's Dense delay, as the emulator), and ``episode_starts`` (sample indices)
    zero the state where an episode began.
    """

    def __init__(self, layers: list[FixedLayer], stateful: bool = False, episode_starts=()):
        super().__init__()
        # float32 holds every product exactly while |input| * column sum |w| < 2**24; graded
        # input (a first layer with input_bits) can pass that, so that layer uses float64
        dtypes = [torch.float64 if f.input_bits else torch.float32 for f in layers]
        self.synapses = nn.ModuleList(
            nn.Linear(f.weight.shape[1], f.size, bias=False, dtype=dt)
            for f, dt in zip(layers, dtypes, strict=True)
        )
        with torch.no_grad():
            for linear, fixed in zip(self.synapses, layers, strict=True):
                linear.weight.copy_(torch.as_tensor(fixed.weight, dtype=linear.weight.dtype))
        self.neurons = nn.ModuleList(FixedNeuron(f) for f in layers)
        self.stateful = stateful
        self.episode_starts = set(episode_starts)
        self.samples = 0
        self.frames: list[torch.Tensor | None] = [None] * len(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(0, 1)  # [T, B, n]
        if self.stateful:
            if x.shape[1] != 1:
                raise ValueError("a stateful core runs its samples one at a time (batch 1)")
            if self.samples in self.episode_starts:
                self.frames = [None] * len(self.neurons)
                for neuron in self.neurons:
                    neuron.state = None
        self.samples += x.shape[1]
        for i, (linear, neuron) in enumerate(zip(self.synapses, self.neurons, strict=True)):
            x = x.to(linear.weight.dtype)
            if self.stateful:
                head = torch.zeros_like(x[:1]) if self.frames[i] is None else self.frames[i]
                x, self.frames[i] = torch.cat([head, x[:-1]]), x[-1:]
            x = neuron(linear(x), carry=self.stateful)
        return x.transpose(0, 1)


def run_benchmark(bench) -> dict:
    """``bench.run(quiet=True)`` that leaves multiprocessing alone. NeuroBench's progress bar
    (tqdm) creates a multiprocessing lock, which fixes this process's start method; Lava's
    import then fails (it calls ``set_start_method('fork')``: "context has already been set").
    One process needs only a thread lock, which tqdm takes instead (``tqdm.set_lock``)."""
    from tqdm import tqdm

    if not hasattr(tqdm, "_lock"):
        tqdm.set_lock(threading.RLock())
    return bench.run(quiet=True)


def synaptic_events(inputs: list[np.ndarray], weights: list[np.ndarray]) -> list[float]:
    """Per layer: sum over steps of the presynaptic neurons that fired (non-zero) times each
    one's non-zero outgoing weights. ``inputs`` [steps, in] per layer, ``weights`` [out, in]."""
    return [float(s) for s in synaptic_ops(inputs, weights)]  # the formula training uses too


def neurobench_metrics(
    layers: list[FixedLayer],
    frames: np.ndarray,
    stateful: bool = False,
    episode_starts=(),
    batch_size: int = 64,
) -> dict:
    """NeuroBench's static and workload metrics of the core on ``frames`` [N, T, n_in] (one
    sample per control step). ``{"available": False, "reason": ...}`` without NeuroBench."""
    try:
        import neurobench
        from neurobench.benchmarks import Benchmark
        from neurobench.metrics.static import ConnectionSparsity, Footprint, ParameterCount
        from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
        from neurobench.models import TorchModel
    except ImportError as exc:
        return {"available": False, "reason": f"NeuroBench not importable ({exc}); {INSTALL}"}
    core = CoreModel(layers, stateful, episode_starts)
    model = TorchModel(core)
    model.add_activation_module(FixedNeuron)  # NeuroBench reads spikes from these modules
    data = torch.as_tensor(np.asarray(frames), dtype=torch.float64)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data, torch.zeros(len(data))),
        batch_size=1 if stateful else batch_size,
        shuffle=False,
    )
    bench = Benchmark(
        model,
        loader,
        [],
        [],
        [[ParameterCount, Footprint, ConnectionSparsity], [SynapticOperations, ActivationSparsity]],
    )
    try:
        results = run_benchmark(bench)
    finally:
        model.cleanup_hooks()
    ops = results["SynapticOperations"]
    if not isinstance(ops, dict):  # NeuroBench prints a metric's exception and records 0.0
        raise RuntimeError("NeuroBench's SynapticOperations failed on the core model")
    return {
        "available": True,
        "version": neurobench.__version__,
        "samples": len(data),
        "model": "policy.net as nn.Linear (integer weights) + Loihi 2 LIF (emulator) per layer",
        "effective_acs": float(ops["Effective_ACs"]),
        "effective_macs": float(ops["Effective_MACs"]),
        "dense_ops": float(ops["Dense"]),
        "activation_sparsity": float(results["ActivationSparsity"]),
        "parameter_count": int(results["ParameterCount"]),
        "footprint_bytes": int(results["Footprint"]),
        "connection_sparsity": float(results["ConnectionSparsity"]),
    }
