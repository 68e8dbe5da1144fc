"""The bundle's README.md: how to open each file with the tools users have, and a netx
snippet that follows manifest.json and needs nothing from neurodeploy.

tests/test_interop.py runs the README's Python blocks, as written, in a subprocess that
never imports neurodeploy, and compares the spikes with the emulator's.
"""

from __future__ import annotations

from pathlib import Path

from neurodeploy.train.checkpoint import atomic_write_bytes

LAVA_311_FIX = """```python
# Python 3.11 only: lava-nc 0.10 declares Python < 3.11, and one module
# (lava/magma/compiler/var_model.py) gives dataclass fields a mutable default.
# This hook compiles that module with default_factory instead; nothing is edited on disk.
import importlib.machinery
import sys

if sys.version_info >= (3, 11):
    class _VarModelLoader(importlib.machinery.SourceFileLoader):
        def get_code(self, fullname):
            source = self.get_data(self.path).decode().replace(
                ": ByteEncoder = ByteEncoder()",
                ": ByteEncoder = __import__('dataclasses').field(default_factory=ByteEncoder)",
            )
            return compile(source, self.path, "exec", dont_inherit=True)

    class _VarModelFinder:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name != "lava.magma.compiler.var_model":
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            spec.loader = _VarModelLoader(name, spec.origin)
            return spec

    sys.meta_path.insert(0, _VarModelFinder())
```"""

NETX_SNIPPET = '''```python
import json
from pathlib import Path

import numpy as np
from lava.lib.dl.netx.hdf5 import Network
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source


def encode(m, obs):
    """Observations [B, obs_dim] -> input spikes [T, B, n_in] (manifest: codec.encoder_params)."""
    codec, e = m["codec"], m["codec"]["encoder_params"]
    obs = np.asarray(obs, np.float32) * np.float32(codec["obs_scale"] or 1.0)
    mean, std = np.float32(e["mean"]), np.float32(e["std"])
    act = np.exp(-0.5 * (np.tanh(obs)[:, :, None] - mean) ** 2 / std**2).reshape(len(obs), -1)
    T, threshold = codec["timesteps"], np.float32(e["threshold"])
    if codec["encoder"] == "place":  # no state: spike at every step while act > threshold
        return np.repeat((act > threshold)[None], T, axis=0).astype(np.int32)
    v, spikes = np.zeros_like(act), []
    for _ in range(T):  # integrate and fire, reset by subtracting the threshold
        v = v + act
        s = v > threshold
        v = v - threshold * s
        spikes.append(s)
    return np.array(spikes, np.int32)


def run_netx(bundle, m, spikes):
    """Input spikes [T, B, n_in] -> output spikes [T, B, n_out]: one action per column b."""
    s = m["schedule"]
    T, B, n_in = spikes.shape
    P = s["lava_steps_per_action"]  # T steps of input, then s["empty_steps_after_input"]
    data = np.zeros((n_in, B * P), np.int32)
    for b in range(B):
        data[:, b * P : b * P + T] = spikes[:, b].T
    net = Network(
        net_config=str(Path(bundle) / "policy.net"),
        reset_interval=s["reset_interval"],
        reset_offset=s["reset_offset"],
        input_message_bits=s["input_message_bits"],
    )
    source, sink = Source(data=data), Sink(shape=net.out.shape, buffer=B * P)
    source.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    source.run(condition=RunSteps(num_steps=B * P), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    rec = sink.data.get()
    source.stop()
    d = s["output_delay_steps"]  # the output of input step j arrives d steps later
    return np.stack([rec[:, b * P + d : b * P + d + T].T for b in range(B)], axis=1) != 0


def decode(m, out_spikes):
    """Output spikes [T, B, n_out] -> actions [B, act_dim] (manifest: codec.decoder_params)."""
    p = m["codec"]["decoder_params"]
    rate = out_spikes.mean(axis=0)
    weight, bias = np.asarray(p["weight"]), np.asarray(p["bias"])
    if m["codec"]["decoder"] == "population":  # weight [act, pop]
        z = (rate.reshape(len(rate), *weight.shape) * weight).sum(-1) + bias
    else:  # linear: weight [act, n_out]
        z = rate @ weight.T + bias
    return np.asarray(p["center"]) + np.asarray(p["half_range"]) * np.tanh(z)


def act(bundle, obs):
    """Observations [B, obs_dim] -> actions [B, act_dim] through netx, one action each."""
    m = json.loads((Path(bundle) / "manifest.json").read_text())
    return decode(m, run_netx(bundle, m, encode(m, obs)))
```'''

TOOLS = """## Opening the files elsewhere

- **netx / Lava** (`policy.net`): the snippet below. `manifest.json` holds everything it
  needs: `schedule` (steps of input, empty steps, `reset_interval`, `reset_offset`, output
  delay, input message bits), `codec.encoder_params` (formula, means, stds, threshold,
  reset rule) and `codec.decoder_params` (formula, weights, action scale).
- **snnTorch** (export with `--nir-flavour snntorch`):
  `snntorch.import_nir.import_from_nir(nir.read("policy.nir"))`; snnTorch assumes
  dt = 1e-4 s, which that flavour states.
- **norse** (export with `--nir-flavour norse`): `norse.torch.from_nir(nir.read("policy.nir"))`
  at norse's default dt = 1e-3 s. Only this flavour: norse ignores `r` on LIF nodes, and
  the norse flavour folds it into the Affine weights (other flavours give norse a silent
  network).
- The generic flavour (dt = 1 step) is what neurodeploy and its Lava compiler read. Two
  conventions there are neurodeploy's own, which other NIR readers do not apply: a state
  that never decays is written `tau = inf` with `r = 1` (read: v += I each step, not a
  frozen state), and a stateful policy (`state_reset = "never"` in the graph's metadata)
  delays every layer's input by one step (`synaptic_delay_steps`), as Lava's Dense does.
  The snntorch and norse flavours refuse both.
- **onnxruntime** (`policy.onnx`, target onnx):
  `InferenceSession("policy.onnx").run(["action"], {"obs": obs})`.
- Feed the NIR graph's Input with the encoder's spikes (`encode` below); its Output
  spikes go to `decode`.
"""


def readme_text(target: str, has_codec: bool) -> str:
    parts = [
        "# Deploy bundle\n",
        "Written by `neurodeploy export`. `manifest.json` lists every file with its SHA-256 "
        "and says how to run the core; `fidelity.json` holds the checks made at export.\n",
        TOOLS,
    ]
    if target == "loihi2" and has_codec:
        parts += [
            "## Running policy.net with lava-dl netx, without neurodeploy\n",
            "On Python 3.11 run this first (on 3.10 it is not needed):\n",
            LAVA_311_FIX + "\n",
            "Then, for a per-action-reset policy with a population or place encoder (a stateful "
            "policy runs one continuous column with `reset_interval=None`; the direct encoder "
            "sends graded payloads, see `codec.encoder_params`):\n",
            NETX_SNIPPET + "\n",
            "`act(bundle_dir, obs)` gives the actions; `run_netx` gives the output spikes, "
            "the same, spike for spike, as neurodeploy's bit-accurate emulator.\n",
        ]
    return "\n".join(parts)


def write_readme(out: Path, target: str, has_codec: bool) -> None:
    atomic_write_bytes(Path(out) / "README.md", readme_text(target, has_codec).encode())
