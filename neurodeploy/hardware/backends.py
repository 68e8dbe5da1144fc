"""Closed-loop backends, chosen by name from a registry.

Each backend is one small class: ``needs`` names the bundle file it runs (None: the
policy itself), ``__init__`` opens it, ``act(obs_batch)`` maps observations [B, obs] to
actions [B, act] and ``reset()`` starts a new episode. The runner looks a backend up
by name and gives it the bundle that holds its file; adding a backend means adding one
class with ``@register("name")``.

| name | runs | spikes counted on |
|---|---|---|
| ``torch`` | the actor in policy.pt | the actor |
| ``onnx`` | policy.onnx on onnxruntime | (no spikes) |
| ``emulator`` | policy.net on the bit-exact numpy model of Lava ``fixed_pt`` | the emulator |
| ``lava`` | policy.nir compiled to a Lava ``floating_pt`` graph | the torch actor |
| ``loihi2-sim`` | policy.net loaded by lava-dl netx, Lava ``fixed_pt`` | the emulator |

The Lava graphs extract the output layer only (fewer processes per action); the
action is decoded from Lava's output spikes. The reference that counts the other
layers' spikes runs on the same input, and its output layer is compared with Lava's
on every action: loihi2-sim must match the emulator bit for bit (a mismatch is an
error), Lava float is counted in ``output_mismatches``.

``envs`` N (``run --envs N``): every act gets a batch of N observations. The emulator,
torch and onnx are batched as they are; the Lava graphs hold N copies of the network as
N-wide populations (``LavaNetwork.tiled``: block-diagonal ``Sparse`` synapses) and refuse
any other batch size.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from neurodeploy.errors import BundleError
from neurodeploy.export import emulator, loihi2
from neurodeploy.export.netx import read_netx
from neurodeploy.export.nir_graph import nir_to_layers, read_nir
from neurodeploy.snn import SpikingActor

REGISTRY: dict[str, type[Backend]] = {}


def register(name: str):
    """Class decorator: make a backend available to ``run --backend NAME``."""

    def add(cls):
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return add


def lookup(name: str) -> type[Backend]:
    if name not in REGISTRY:
        raise BundleError(f"unknown backend {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


class Backend:
    """An observation batch in, an action batch out, on one implementation of the policy."""

    name = ""
    needs: str | None = None  # the bundle file this backend runs
    export_hint = ""  # how to get that file
    spiking = False  # needs a spiking actor

    def __init__(self, actor, bundle: Path | None, envs: int = 1):
        self.actor = actor
        self.envs = envs  # environments stepped in lock-step: the batch every act gets
        self.names: list[str] = []  # populations whose spikes are counted
        self.trains: list[np.ndarray] = []  # the last act's spike trains, [T, B, n] per name
        self.counts = np.zeros(0)  # the last act's spikes per name, summed over the batch

    def slot_counts(self) -> np.ndarray:
        """The last act's spikes per batch row and name, [B, len(names)] (the direct
        encoder's graded input counts its non-zero values)."""
        return np.stack([np.count_nonzero(t, axis=(0, 2)) for t in self.trains], axis=1)

    @classmethod
    def check(cls, actor, bundle: Path | None, path: Path) -> None:
        """One-line errors before anything is opened."""
        if cls.needs is not None and (bundle is None or not (bundle / cls.needs).exists()):
            where = f" {bundle}" if bundle else f"; {path} has no bundle with it"
            raise BundleError(
                f"backend {cls.name!r} needs {cls.needs} in the bundle{where}"
                + (f" (export the run first: {cls.export_hint})" if cls.export_hint else "")
            )
        if cls.spiking and not isinstance(actor, SpikingActor):
            raise BundleError(f"backend {cls.name!r} needs a spiking actor; this one is an ANN")

    def act(self, obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def reset(self) -> None:
        """A new episode: every state starts at zero."""
        self.actor.reset()

    def close(self) -> None:
        """Release what the backend holds (a Lava runtime)."""


def shipped(bundle: Path, name: str) -> Path:
    """A bundle file, checked against its SHA-256 in manifest.json right before it is used."""
    manifest = read_manifest(bundle)
    file = bundle / name
    digest = manifest.get("files", {}).get(name)
    if digest is None or hashlib.sha256(file.read_bytes()).hexdigest() != digest:
        raise BundleError(f"{file} does not match its hash in manifest.json; export it again")
    return file


def read_manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def bundle_schedule(bundle: Path) -> dict:
    """How the core is clocked, as the bundle's manifest records it."""
    schedule = read_manifest(bundle).get("schedule")
    if not schedule:
        raise BundleError(
            f"{bundle / 'manifest.json'} records no schedule (an older export?); export again"
        )
    return schedule


@register("torch")
class TorchBackend(Backend):
    def __init__(self, actor, bundle, envs=1):
        super().__init__(actor, bundle, envs)
        if isinstance(actor, SpikingActor):
            self.names = ["encoder", *actor.layer_names]

    @torch.no_grad()
    def act(self, obs):
        action = self.actor(torch.as_tensor(obs, dtype=torch.float32)).numpy()
        if self.names:
            self.trains = [self.actor.spike_trains[n].numpy() for n in self.names]
            self.counts = np.array([float(self.actor.spike_counts[n].sum()) for n in self.names])
        return action


@register("onnx")
class OnnxBackend(Backend):
    needs = "policy.onnx"
    export_hint = "neurodeploy export RUN --target onnx"

    def __init__(self, actor, bundle, envs=1):
        super().__init__(actor, bundle, envs)
        import onnxruntime as ort

        file = shipped(bundle, self.needs)
        try:
            self.session = ort.InferenceSession(str(file))
        except Exception as exc:  # onnxruntime's own errors: one line, naming the file
            reason = str(exc).splitlines()[0][:200]
            raise BundleError(f"{file} cannot be loaded ({reason})") from None

    def act(self, obs):
        return self.session.run(["action"], {"obs": np.asarray(obs, np.float32)})[0]


class SpikingBackend(Backend):
    """The host codec (encoder, decoder) around a spiking core that ``core(frames)`` runs."""

    spiking = True
    fixed = True  # the core takes the chip's integer input (graded payloads)

    def __init__(self, actor, bundle, envs=1):
        super().__init__(actor, bundle, envs)
        self.names = ["encoder", *actor.layer_names]
        self.stateful = actor.config.mode == "stateful"
        self.encoder_state = None  # the host encoder's potential (carried when stateful)

    def core(self, frames: np.ndarray) -> list[np.ndarray]:
        """Input frames [T, B, n_in] -> every layer's spike trains [T, B, n]."""
        raise NotImplementedError

    @torch.no_grad()
    def act(self, obs):
        x = torch.as_tensor(obs, dtype=torch.float32)
        frames, state = self.actor.core_input(x[None], self.encoder_state)
        if self.stateful:
            self.encoder_state = state
        frames = frames.numpy()  # [T, B, n_in]: spikes, or the direct encoder's values
        enc = loihi2.chip_input(frames, self.actor.graded_input) if self.fixed else frames
        trains = self.core(enc)
        self.trains = [frames, *trains]
        self.counts = np.array([float(np.count_nonzero(enc))] + [float(t.sum()) for t in trains])
        self._enc = enc
        return self.decode(trains[-1])

    def slot_counts(self):
        counts = super().slot_counts()
        if self.fixed:  # the encoder's count is the chip's input, as in ``counts``
            counts[:, 0] = np.count_nonzero(self._enc, axis=(0, 2))
        return counts

    def decode(self, out: np.ndarray) -> np.ndarray:
        """Output spike trains [T, B, n] -> actions [B, act]. Row by row: torch's batched
        matmul rounds differently from a batch of one, and a run of N environments must
        give the returns of N single runs."""
        out = torch.as_tensor(out)
        rows = [self.actor.decode(out[:, i : i + 1])[0] for i in range(out.shape[1])]
        return torch.cat(rows).numpy()

    def reset(self):
        super().reset()
        self.encoder_state = None


@register("emulator")
class EmulatorBackend(SpikingBackend):
    """policy.net on the bit-exact numpy model of Lava ``fixed_pt``; any batch size."""

    needs = "policy.net"
    export_hint = "neurodeploy export RUN --target loihi2"

    def __init__(self, actor, bundle, envs=1):
        super().__init__(actor, bundle, envs)
        schedule = bundle_schedule(bundle)
        layers = read_netx(shipped(bundle, self.needs), int(schedule["input_message_bits"]))
        self.emulator = emulator.Emulator(layers, self.stateful)

    def core(self, frames):
        return self.emulator.step(frames)

    def reset(self):
        super().reset()
        self.emulator.reset()


class LavaBackend(SpikingBackend):
    """A Lava graph that extracts the output layer; a reference model counts every layer's
    spikes on the same input and its output is compared with Lava's."""

    def __init__(self, actor, bundle, envs=1):
        super().__init__(actor, bundle, envs)
        self.lava = None
        self.output_mismatches = 0  # actions whose Lava output differed from the reference
        self.actions = 0

    def compare(self, lava_out: np.ndarray, reference_out: np.ndarray) -> None:
        self.actions += 1
        if not np.array_equal(lava_out, reference_out):
            self.output_mismatches += 1

    def reset(self):
        super().reset()
        self.lava.reset()

    def close(self):
        if self.lava is not None:
            self.lava.close()

    def check_batch(self, frames):
        if frames.shape[1] != self.envs:
            raise BundleError(
                f"backend {self.name!r} holds {self.envs} copies of the network; "
                f"it was given a batch of {frames.shape[1]}"
            )

    def lava_step(self, frames: np.ndarray) -> np.ndarray:
        """Input frames [T, B, n_in] -> the Lava graph's output spikes [T, B, n_out]; the B
        copies of the network sit side by side in N-wide populations."""
        T, B = frames.shape[:2]
        return self.lava.step(frames.reshape(T, -1)).reshape(T, B, -1)


@register("loihi2-sim")
class Loihi2SimBackend(LavaBackend):
    """policy.net loaded by lava-dl netx into a Lava ``fixed_pt`` graph, clocked by the
    bundle's schedule; every layer's spikes counted on the emulator, which must agree."""

    needs = "policy.net"
    export_hint = "neurodeploy export RUN --target loihi2"

    def __init__(self, actor, bundle, envs=1):
        super().__init__(actor, bundle, envs)
        from neurodeploy.export.lava_graph import LavaNetwork
        from neurodeploy.hardware.lava_runtime import LavaCore

        schedule = bundle_schedule(bundle)
        file = shipped(bundle, self.needs)
        layers = read_netx(file, int(schedule["input_message_bits"]))
        self.emulator = emulator.Emulator(layers, self.stateful)
        if envs == 1:
            self.lava = LavaCore.from_netx(file, schedule, layers[0].weight.shape[1])
        else:  # the netx file's layers, N copies side by side (block-diagonal Dense)
            net = LavaNetwork.from_fixed(layers, actor.config.timesteps, self.stateful)
            net = net.tiled(envs)
            if net.period != int(schedule["lava_steps_per_action"]):
                raise BundleError(
                    f"{bundle / 'manifest.json'} records {schedule['lava_steps_per_action']} "
                    f"Lava steps per action; the network takes {net.period}"
                )
            self.lava = LavaCore.from_network(net)

    def core(self, frames):
        self.check_batch(frames)
        trains = self.emulator.step(frames)
        out = self.lava_step(frames)
        self.compare(out, trains[-1])
        if self.output_mismatches:
            raise BundleError(
                f"loihi2-sim and the bit-exact emulator disagree on action {self.actions} "
                "(output spikes differ); please report this with the bundle"
            )
        return [*trains[:-1], out]

    def reset(self):
        super().reset()
        self.emulator.reset()


@register("lava")
class LavaFloatBackend(LavaBackend):
    """policy.nir compiled to a Lava ``floating_pt`` graph; every layer's spikes counted
    on the torch actor (torch and Lava float agree spike for spike)."""

    needs = "policy.nir"
    export_hint = "neurodeploy export RUN --target lava"
    fixed = False

    def __init__(self, actor, bundle, envs=1):
        super().__init__(actor, bundle, envs)
        from neurodeploy.export.lava_graph import LavaNetwork
        from neurodeploy.hardware.lava_runtime import LavaCore

        file = shipped(bundle, self.needs)
        hub = nir_to_layers(read_nir(file), str(file))
        net = LavaNetwork.from_float(hub, actor.config.timesteps, self.stateful, actor.graded_input)
        net = net.tiled(envs) if envs > 1 else net
        self.lava = LavaCore.from_network(net)

    @torch.no_grad()
    def act(self, obs):
        x = torch.as_tensor(obs, dtype=torch.float32)
        self.actor(x)  # the reference: every population's spikes, the encoder's frames
        reference = [self.actor.spike_trains[n].numpy() for n in self.names]
        self.check_batch(reference[0])
        out = self.lava_step(reference[0])
        self.compare(out, reference[-1].astype(np.int8))
        self.trains = [*reference[:-1], out]
        self.counts = np.array([float(np.count_nonzero(t)) for t in self.trains])
        return self.decode(out)
