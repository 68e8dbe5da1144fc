"""A Lava policy core that is compiled and started once, then driven one action at a time.

The host injects each action's spike trains through an ``Injector`` and reads every
layer's spikes through ``Extractor`` processes, in lockstep. Per action the graph
advances P = T + L steps (see ``neurodeploy.export.lava_graph`` for the timing and
the per-layer ``LIFReset``) as one non-blocking ``RunSteps(P)`` on the runtime that
the first action compiled and started; ending every action at a step boundary is
what lets ``stop()`` return (a runtime blocked on the injector never sees it).

A stateful network advances T steps per action and keeps its state; ``reset()``
(between episodes) zeroes every LIF's ``u`` and ``v`` and every Dense's pending
output ``a_buff`` while the runtime is paused.

A fixed-point network is fed through :class:`IntInjectorModel`: Lava's own Injector
model sends floats, which the bit-accurate Dense cannot shift (graded input).
"""

from __future__ import annotations

import numpy as np

from neurodeploy.export.lava_graph import LavaNetwork
from neurodeploy.lava_compat import import_lava

_injector = import_lava("lava.proc.io.injector")
_LavaPyType = import_lava("lava.magma.core.model.py.type").LavaPyType
_PyOutPort = import_lava("lava.magma.core.model.py.ports").PyOutPort


class IntInjectorModel(_injector.PyLoihiInjectorModel):
    """Lava's Injector model with an int32 output: the messages a fixed-point core takes."""

    out_port = _LavaPyType(_PyOutPort.VEC_DENSE, np.int32, precision=24)


class LavaCore:
    def __init__(self, network: LavaNetwork):
        Extractor = import_lava("lava.proc.io.extractor")
        self._run_steps = import_lava("lava.magma.core.run_conditions").RunSteps
        Loihi2SimCfg = import_lava("lava.magma.core.run_configs").Loihi2SimCfg

        self.network = network
        self.T, self.P = network.timesteps, network.period
        n_in = network.params[0]["weights"].shape[1]
        buffer = self.P * 2
        self.injector = _injector.Injector(shape=(n_in,), buffer_size=buffer)
        self.extractors = []
        for lif in network.build(self.injector.out_port):
            ext = Extractor.Extractor(shape=lif.s_out.shape, buffer_size=buffer)
            lif.s_out.connect(ext.in_port)
            self.extractors.append(ext)
        self._cfg = Loihi2SimCfg(
            select_tag=network.tag,
            exception_proc_model_map={
                _injector.Injector: IntInjectorModel
                if network.fixed
                else _injector.PyLoihiInjectorModel,
                Extractor.Extractor: Extractor.PyLoihiExtractorModel,
            },
        )
        self._zeros = np.zeros(n_in)
        self._running = False

    def step(self, spikes_in: np.ndarray) -> list[np.ndarray]:
        """One action: input frames [T, n_in] (spikes or graded values) -> every layer's
        spike trains [T, n]."""
        self.injector.run(
            condition=self._run_steps(num_steps=self.P, blocking=False), run_cfg=self._cfg
        )  # compiles and starts on the first call only
        self._running = True
        for t in range(self.P):
            self.injector.send(spikes_in[t].astype(float) if t < self.T else self._zeros)
            frames = [ext.receive() for ext in self.extractors]
            if t == 0:
                trains = [np.zeros((self.P, f.shape[0]), np.int8) for f in frames]
            for train, frame in zip(trains, frames, strict=True):
                train[t] = frame != 0
        self.injector.wait()
        if self.network.stateful:  # spikes at step t are the actor's spikes at step t
            return trains
        # layer l (1-based) integrates this action at steps l+1 .. l+T (1-based)
        return [train[i + 1 : i + 1 + self.T] for i, train in enumerate(trains)]

    def reset(self) -> None:
        """Start the next episode from zero state (stateful networks; a no-op otherwise)."""
        if not (self.network.stateful and self._running):
            return
        for dense, lif in self.network.processes:
            dense.a_buff.set(np.zeros(dense.a_buff.shape))
            lif.u.set(np.zeros(lif.u.shape))
            lif.v.set(np.zeros(lif.v.shape))

    def close(self) -> None:
        if self._running:
            self._running = False
            self.injector.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
