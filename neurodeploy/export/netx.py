"""The netx HDF5 file (lava-dl ``lava.lib.dl.netx.hdf5.Network``) of a fixed-point network.

Layout: ``layer/<i>`` for each layer with ``type='dense'``, ``shape=[n]``,
``weight`` [out, in] (integers at weight exponent 0), ``bias`` (the bias mantissa; netx
uses ``bias_exp = 6``) and ``neuron/`` with ``type='CUBA'``, ``iDecay = du + 1``,
``vDecay = dv``, ``vThMant = vth``, ``refDelay = 1``, ``gradedSpike = False``.
The per-action reset is not stored in the file: load it with
``Network(net_config=path, reset_interval=T + L, reset_offset=1)``; a stateful
policy loads with ``reset_interval=None`` and runs T steps per action. Graded input
(the direct encoder) is not stored in the file either: load it with
``input_message_bits = GRADED_BITS`` (the bundle's manifest says which).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from neurodeploy.errors import ExportError
from neurodeploy.export.loihi2 import FixedLayer
from neurodeploy.lava_compat import import_lava
from neurodeploy.snn.fixed_point import BIAS_EXP


def write_netx(layers: list[FixedLayer], path: Path) -> None:
    for i, layer in enumerate(layers):
        if layer.weight_exp != 0:
            raise ExportError(
                f"layer {i}: weight_exp {layer.weight_exp}; netx files hold exponent-0 integer "
                "weights. Retrain the loihi neuron with a larger vth, or deploy the Lava graph"
            )
        if layer.bias_exp != BIAS_EXP:
            raise ExportError(f"layer {i}: bias_exp must be {BIAS_EXP} for netx")
    tmp = Path(path).with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        group = f.create_group("layer")
        for i, layer in enumerate(layers):
            g = group.create_group(str(i))
            g["type"] = np.bytes_("dense")
            g["shape"] = np.array([layer.size], dtype=np.int64)
            g["weight"] = layer.weight.astype(np.int64)
            g["bias"] = layer.bias_mant.astype(np.int64)
            n = g.create_group("neuron")
            n["type"] = np.bytes_("CUBA")
            n["iDecay"] = layer.du + 1
            n["vDecay"] = layer.dv
            n["vThMant"] = layer.vth
            n["refDelay"] = 1
            n["gradedSpike"] = False
    tmp.replace(path)


def load_netx(path: Path, period: int | None, input_bits: int = 0):
    """The netx ``Network`` process with the per-action reset schedule (None: stateful);
    ``input_bits`` > 0: the input arrives as graded spikes of that many bits."""
    hdf5 = import_lava("lava.lib.dl.netx.hdf5")
    return hdf5.Network(
        net_config=str(path), reset_interval=period, reset_offset=1, input_message_bits=input_bits
    )


def run_netx(
    path: Path, spikes_in: np.ndarray, n_layers: int, stateful=False, input_bits: int = 0
) -> np.ndarray:
    """Output-layer spike trains [T, B, n_out] of the netx network for inputs [T, B, n_in]
    (spikes, or graded payloads with ``input_bits``).

    ``stateful``: B = 1, one continuous run without resets (step t is column t).
    """
    source = import_lava("lava.proc.io.source")
    sink = import_lava("lava.proc.io.sink")
    RunSteps = import_lava("lava.magma.core.run_conditions").RunSteps
    Loihi2SimCfg = import_lava("lava.magma.core.run_configs").Loihi2SimCfg

    T, B, n_in = spikes_in.shape
    P = T + n_layers
    if stateful:
        B, P, n_layers = 1, T, 0
    data = np.zeros((n_in, B * P), np.int32)
    for k in range(B):
        data[:, k * P : k * P + T] = spikes_in[:, k].T
    net = load_netx(path, None if stateful else P, input_bits)
    src = source.RingBuffer(data=data)
    out = sink.RingBuffer(shape=net.out.shape, buffer=B * P)
    src.s_out.connect(net.inp)
    net.out.connect(out.a_in)
    try:
        src.run(condition=RunSteps(num_steps=B * P), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        rec = np.asarray(out.data.get())
    finally:
        src.stop()
    trains = np.zeros((T, B, rec.shape[0]), np.int8)
    for k in range(B):
        trains[:, k] = rec[:, k * P + n_layers : k * P + n_layers + T].T != 0
    return trains


def read_netx(path: Path, input_bits: int = 0) -> list[FixedLayer]:
    """The fixed-point layers a netx file holds (the inverse of :func:`write_netx`), so the
    emulator runs the very weights that ship; ``input_bits``: the first layer's input
    message bits (the manifest's schedule says which)."""
    layers = []
    try:
        with h5py.File(path, "r") as f:
            group = f["layer"]
            for i in range(len(group)):
                g = group[str(i)]
                kind = g["type"][()].decode() if "type" in g else "?"
                neuron = g["neuron/type"][()].decode() if "neuron/type" in g else "?"
                if kind != "dense" or neuron != "CUBA":
                    raise ExportError(
                        f"{path}: layer {i} is a {kind} layer of {neuron} neurons; the emulator "
                        "runs dense layers of CUBA neurons (the files neurodeploy writes)"
                    )
                weight = np.asarray(g["weight"][()], np.int64)
                n = g["neuron"]
                bias = g["bias"][()] if "bias" in g else np.zeros(weight.shape[0])
                layers.append(
                    FixedLayer(
                        weight=weight,
                        weight_exp=0,
                        bias_mant=np.asarray(bias, np.int64),
                        bias_exp=BIAS_EXP,
                        du=int(n["iDecay"][()]) - 1,
                        dv=int(n["vDecay"][()]),
                        vth=int(n["vThMant"][()]),
                        input_bits=input_bits if i == 0 else 0,
                    )
                )
    except (OSError, KeyError) as exc:
        raise ExportError(f"{path} is not a readable netx file ({exc})") from None
    return layers
