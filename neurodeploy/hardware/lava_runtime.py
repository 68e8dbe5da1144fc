"""A Lava policy core that is compiled and started once, then driven one action at a time.

The graph is ``Injector -> network -> Extractor``: the host injects an action's input
frames and reads back the output layer only (the spikes of every other layer come
from a reference model the backend runs beside it: the bit-exact emulator, or the
torch actor for Lava float). Per action the graph advances P Lava steps (the bundle's
schedule: T + L with the per-action reset, T for a stateful network) as one
non-blocking ``RunSteps(P)``. The host sends all P input frames at once (the injector's
buffer holds them) and then receives the P output frames, so there is no host round
trip per Lava step; ending every action at a step boundary is what lets ``stop()``
return (a runtime blocked on the injector never sees it).

The network is either built from layer parameters (:meth:`LavaCore.from_network`,
Lava float from policy.nir) or loaded from the shipped netx file with lava-dl's
loader (:meth:`LavaCore.from_netx`, ``fixed_pt``).

A stateful network keeps its state across actions; ``reset()`` (between episodes)
zeroes every LIF's ``u`` and ``v`` and every Dense's pending output ``a_buff`` while
the runtime is paused.

A fixed-point network is fed through :class:`IntInjectorModel`: Lava's own Injector
model sends floats, which the bit-accurate Dense cannot shift (graded input).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurodeploy.errors import BundleError
from neurodeploy.export.lava_graph import LavaNetwork
from neurodeploy.export.netx import load_netx
from neurodeploy.lava_compat import import_lava

_injector = import_lava("lava.proc.io.injector")
_LavaPyType = import_lava("lava.magma.core.model.py.type").LavaPyType
_PyOutPort = import_lava("lava.magma.core.model.py.ports").PyOutPort
_sparse_models = import_lava("lava.proc.sparse.models")
_Sparse = import_lava("lava.proc.sparse.process").Sparse


class IntInjectorModel(_injector.PyLoihiInjectorModel):
    """Lava's Injector model with an int32 output: the messages a fixed-point core takes."""

    out_port = _LavaPyType(_PyOutPort.VEC_DENSE, np.int32, precision=24)


class SparseDotModel(_sparse_models.PySparseModelBitAcc):
    """Lava's bit-accurate Sparse model, binary input summed as the CSR product ``W @ s``.

    Lava's model sums the active columns (``W[:, s].sum(axis=1)``), which scipy does by
    copying them; the product is the same integer sum without the copy (about 4x faster on
    the block-diagonal matrix of 16 network copies). The first step, graded input and the
    weight clipping are Lava's own code; loihi2-sim compares every action with the
    emulator, so any difference would be an error.
    """

    def run_spk(self):
        if not self.weights_set or self.num_message_bits.item() > 0:
            super().run_spk()
            return
        self.a_out.send(self.a_buff)
        spikes = self.s_in.recv().astype(bool).astype(np.int32)
        a_accum = np.asarray(self.weights.dot(spikes))
        exp = self.proc_params.get("weight_exp", 0)
        self.a_buff = np.left_shift(a_accum, exp) if exp > 0 else np.right_shift(a_accum, -exp)


class LavaCore:
    """``connect(source_port) -> (output port, [(Dense, LIF), ...])`` builds the network.

    ``timesteps`` T input frames per action, ``period`` P Lava steps per action,
    ``output_delay`` D: the output frame of input step j arrives at step j + D.
    """

    def __init__(
        self,
        connect,
        n_in: int,
        timesteps: int,
        period: int,
        output_delay: int,
        fixed: bool,
        stateful: bool,
    ):
        Extractor = import_lava("lava.proc.io.extractor")
        self._run_steps = import_lava("lava.magma.core.run_conditions").RunSteps
        Loihi2SimCfg = import_lava("lava.magma.core.run_configs").Loihi2SimCfg

        self.T, self.P, self.D = timesteps, period, output_delay
        self.stateful = stateful
        if self.D + self.T > self.P:
            raise ValueError(f"output delay {self.D} + T {self.T} exceeds the period {self.P}")
        self.injector = _injector.Injector(shape=(n_in,), buffer_size=self.P)
        out_port, self.processes = connect(self.injector.out_port)
        self.extractor = Extractor.Extractor(shape=out_port.shape, buffer_size=self.P)
        out_port.connect(self.extractor.in_port)
        self._cfg = Loihi2SimCfg(
            select_tag="fixed_pt" if fixed else "floating_pt",
            exception_proc_model_map={
                _injector.Injector: IntInjectorModel if fixed else _injector.PyLoihiInjectorModel,
                Extractor.Extractor: Extractor.PyLoihiExtractorModel,
                **({_Sparse: SparseDotModel} if fixed else {}),
            },
        )
        self._frames = np.zeros((self.P, n_in))
        self._running = False
        # Compile and start the runtime now, with one action of no input, so that the first
        # action costs what every other does; a stateful network is then zeroed again.
        try:
            self.step(np.zeros((self.T, n_in)))
            self.reset()
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_network(cls, network: LavaNetwork) -> LavaCore:
        """Dense -> LIF(Reset) per layer from parameters (``export.lava_graph``)."""

        def connect(source):
            lifs = network.build(source)
            return lifs[-1].s_out, network.processes

        delay = 0 if network.stateful else len(network.params)
        n_in = network.params[0]["weights"].shape[1]
        return cls(
            connect,
            n_in,
            network.timesteps,
            network.period,
            delay,
            network.fixed,
            network.stateful,
        )

    @classmethod
    def from_netx(cls, path: Path, schedule: dict, n_in: int) -> LavaCore:
        """The netx file loaded by lava-dl's ``netx.hdf5.Network`` with the bundle's schedule
        (``reset_interval``, ``reset_offset``, ``input_message_bits``, steps per action)."""

        def connect(source):
            net = load_netx(path, schedule["reset_interval"], schedule["input_message_bits"])
            source.connect(net.inp)
            return net.out, [(block.synapse, block.neuron) for block in net.layers]

        return cls(
            connect,
            n_in,
            int(schedule["timesteps_per_action"]),
            int(schedule["lava_steps_per_action"]),
            int(schedule["output_delay_steps"]),
            fixed=True,
            stateful=schedule["reset_interval"] is None,
        )

    def step(self, frames_in: np.ndarray) -> np.ndarray:
        """One action: input frames [T, n_in] (spikes or graded values) -> the output
        layer's spike trains [T, n_out] (int8). The frames are checked before the P steps
        start: a started run must be fed all P frames, or stopping it waits forever."""
        frames_in = np.asarray(frames_in)
        if frames_in.shape != self._frames[: self.T].shape:
            raise BundleError(
                f"the Lava core takes {self._frames[: self.T].shape} input frames "
                f"(timesteps, inputs) per action, not {frames_in.shape}"
            )
        self._frames[: self.T] = frames_in
        self.injector.run(
            condition=self._run_steps(num_steps=self.P, blocking=False), run_cfg=self._cfg
        )  # compiles and starts on the first call only (the constructor's)
        self._running = True
        sent, out = 0, []
        try:
            for frame in self._frames:  # the injector's buffer holds all P frames
                self.injector.send(frame)
                sent += 1
            while len(out) < self.P:
                out.append(self.extractor.receive())
            self.injector.wait()
        except BaseException:  # e.g. Ctrl-C: finish the started steps, or stop() would wait
            self._finish(sent, len(out))
            raise
        return (np.asarray(out[self.D : self.D + self.T]) != 0).astype(np.int8)

    def _finish(self, sent: int, received: int) -> None:
        """Feed the frames and read the outputs the started P steps still wait for."""
        for frame in self._frames[sent:]:
            self.injector.send(frame)
        for _ in range(self.P - received):
            self.extractor.receive()
        self.injector.wait()

    def reset(self) -> None:
        """Start the next episode from zero state (stateful networks; a no-op otherwise)."""
        if not (self.stateful and self._running):
            return
        for dense, lif in self.processes:
            dense.a_buff.set(np.zeros(dense.a_buff.shape))
            lif.u.set(np.zeros(lif.u.shape))
            lif.v.set(np.zeros(lif.v.shape))

    @property
    def n_processes(self) -> int:
        """Lava processes that run: the injector, a Dense and a LIF per layer, the extractor."""
        return 2 + 2 * len(self.processes)

    def close(self) -> None:
        if self._running:
            self._running = False
            self.injector.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
