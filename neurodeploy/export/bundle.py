"""The deploy bundle: export an actor through the NIR hub to a target, with a fidelity report.

    neurodeploy export RUN_OR_POLICY --target nir|lava|loihi2|onnx [--out DIR] [--from-nir FILE]

Every target writes ``policy.nir`` (read back with type checking, then compiled from
that file, never from torch modules), ``manifest.json`` and ``fidelity.json``; a bundle
exported from a policy also holds a copy of ``policy.pt`` (host codec, torch reference),
so it runs wherever it is copied.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from neurodeploy.envs import check_env_id, make_env
from neurodeploy.errors import (
    BundleError,
    CheckpointError,
    ExportError,
    MismatchWarning,
    NeurodeployError,
)
from neurodeploy.export import emulator, loihi2
from neurodeploy.export.nir_graph import (
    DISCRETISATION,
    DT,
    FLAVOURS,
    actor_layers,
    graph_dt,
    layers_to_nir,
    nir_to_layers,
    read_nir,
    simulate_nir,
    write_nir,
)
from neurodeploy.export.readme import write_readme
from neurodeploy.snn import SpikingActor, actor_from_payload
from neurodeploy.train.checkpoint import atomic_write_bytes, replay_observations
from neurodeploy.train.loop import check_writable_dir

SCHEMA = "neurodeploy-bundle/1"
TARGETS = ("nir", "lava", "loihi2", "onnx")
FIDELITY_OBSERVATIONS = 256


def load_policy(path: Path) -> tuple[SpikingActor, str]:
    """A run directory or a policy.pt -> (actor, env id)."""
    actor, env_id, _ = read_policy(path)
    return actor, env_id


def read_policy(path: Path) -> tuple[SpikingActor, str, bytes]:
    """A run directory or a policy.pt -> (actor, env id, the file's bytes).

    The file is read once: whoever copies it (export) copies the bytes the actor was
    built from, even while training rewrites policy.pt.
    """
    path = Path(path)
    file = path / "policy.pt" if path.is_dir() else path
    if not file.is_file():
        raise CheckpointError(f"policy {file} does not exist")
    data = file.read_bytes()
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, wrong format, forbidden global, ...
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"policy {file} is corrupt or not a neurodeploy file ({reason})"
        ) from None
    if not isinstance(payload, dict) or not {"config", "state_dict"} <= set(payload):
        raise CheckpointError(f"policy {file} holds no policy (it needs 'config' and 'state_dict')")
    try:
        actor = actor_from_payload(payload, str(file))
    except NeurodeployError:
        raise
    except Exception as exc:  # a config or weights this version cannot build
        raise CheckpointError(
            f"policy {file} cannot be built ({type(exc).__name__}: {exc})"
        ) from None
    actor.eval()
    env_id = payload.get("env", "")
    if env_id:
        check_env_id(env_id, str(file))
    return actor, str(env_id), data


def open_policy(path: Path, needs: str | None = None):
    """The one way every command opens what it is given; everything is verified before use.

    ``path`` is a policy file (``policy.pt``, ``best.pt``), a bundle (``manifest.json``:
    :func:`verify_bundle`) or a run directory. For a run directory and ``needs`` (a file
    a backend needs, e.g. ``policy.nir``), the run's bundle that holds it is verified,
    and it must have been exported from the run's current ``policy.pt``. Returns
    (actor, env id, bundle directory or None).
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".pt":
        actor, env_id, _ = read_policy(path)
        return actor, env_id, None
    if (path / "manifest.json").exists():
        manifest = verify_bundle(path)
        if "policy.pt" not in manifest["files"]:
            raise BundleError(
                f"{path}: the bundle holds no policy.pt (exported from a foreign NIR graph?); "
                "export it from a run directory or policy.pt to run it in closed loop"
            )
        actor, _, _ = read_policy(path / "policy.pt")
        return actor, manifest["env"], _warn_mismatches(path)
    if (path / "policy.pt").is_file():
        actor, env_id, data = read_policy(path)
        bundle = _run_bundle(path, data, needs) if needs else None
        return actor, env_id, bundle and _warn_mismatches(bundle)
    raise BundleError(
        f"{path} is neither a run directory (policy.pt), a policy file (.pt) nor a bundle "
        "(manifest.json)"
    )


def _warn_mismatches(bundle: Path) -> Path:
    failed = written_with_mismatches(bundle)
    if failed:
        warnings.warn(
            f"{bundle} was exported with --allow-mismatch: {'; '.join(failed)} (fidelity.json); "
            "what runs on it may not be what the chip runs",
            MismatchWarning,
            stacklevel=3,
        )
    return bundle


RUN_BUNDLES = ("bundle-loihi2", "bundle-lava", "bundle-nir", "bundle-onnx")


def _run_bundle(run_dir: Path, policy_bytes: bytes, needs: str) -> Path | None:
    """The run's first bundle that provides ``needs``, verified and current (None: none)."""
    for name in RUN_BUNDLES:
        bundle = run_dir / name
        if not bundle.exists():
            continue
        if not (bundle / "manifest.json").is_file():
            raise BundleError(
                f"{bundle} has no manifest.json (an export that did not finish?); "
                f"remove it and export again"
            )
        manifest = verify_bundle(bundle)
        if needs not in manifest["files"]:
            continue
        if manifest["files"].get("policy.pt") != hashlib.sha256(policy_bytes).hexdigest():
            raise BundleError(
                f"{bundle} was exported from another policy.pt than {run_dir / 'policy.pt'} "
                "(trained further since?); remove it and export again"
            )
        return bundle
    return None


def fidelity_observations(actor, env_id: str, source: Path, n: int):
    """Observations from the run's replay buffer, else from a short rollout of the policy.

    A stateful actor gets n consecutive observations (a trajectory it runs through
    with its state carried); a per-action-reset actor gets n spread over the run.
    """
    buffer = replay_observations(source if source.is_dir() else source.parent)
    if buffer is not None:
        if len(buffer) >= n:
            idx = np.linspace(0, len(buffer) - 1, n).astype(int)
            if _stateful(actor):
                idx = np.arange(len(buffer) - n, len(buffer))
            return buffer[idx].float(), "replay buffer"
    env = make_env(check_env_id(env_id, "policy.pt"))
    obs, _ = env.reset(seed=0)
    actor.reset()
    rows, rng = [], np.random.default_rng(0)
    with torch.no_grad():
        while len(rows) < n:
            rows.append(obs)
            action = actor(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
            action = np.clip(
                action + rng.normal(0, 0.1, action.shape),
                env.action_space.low,
                env.action_space.high,
            )
            obs, _, term, trunc, _ = env.step(action.astype(np.float32))
            if term or trunc:
                obs, _ = env.reset(seed=len(rows))
                actor.reset()
    env.close()
    actor.reset()
    return torch.as_tensor(np.array(rows), dtype=torch.float32), "rollout"


def _stateful(actor) -> bool:
    return isinstance(actor, SpikingActor) and actor.config.mode == "stateful"


def decode(actor: SpikingActor, out_spikes: np.ndarray) -> torch.Tensor:
    """Output spike trains -> actions: [T, B, n] -> [B, act] (stateful: [N*T, 1, n] -> [N, act])."""
    with torch.no_grad():
        if _stateful(actor):
            return actor.decode(out_spikes)[:, 0]
        return actor.decode(out_spikes)[0]


def _codec(actor: SpikingActor) -> dict:
    """The actor's host codec, plus how graded input travels to Loihi 2."""
    codec = actor.codec_spec()
    if actor.graded_input:
        codec["encoder_params"].update(
            message_bits=loihi2.GRADED_BITS,
            payload=f"round(x * 2**{loihi2.INPUT_FRACTION_BITS}), saturated, where x = obs "
            "times obs_scale (when given)",
        )
    return codec


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


MAX_OBSERVATIONS = 65_536
_STAGING: list[Path] = []  # bundles being written by this process (removed on failure)


def fit_foreign_core(graph, hub: list, actor: SpikingActor, where: str) -> None:
    """A ``--from-nir`` core beside a trained actor runs between that actor's codec: refuse a
    core whose input or output width, timesteps per action, state reset or input kind differ
    from the codec's, and state the codec's where the graph states none (so the fidelity
    checks and the run use the same schedule). Its layer sizes must be the actor's too: the
    runner counts spikes per population, operations and Lava steps per action by the actor's
    layers, so another layout would be measured as a network it is not."""
    n_in, n_out = actor.layers[0].in_features, actor.layers[-1].out_features
    got_in, got_out = hub[0].weight.shape[1], hub[-1].size
    if (got_in, got_out) != (n_in, n_out):
        raise ExportError(
            f"{where}: the core takes {got_in} inputs and gives {got_out} outputs, but the "
            f"actor's codec gives {n_in} and reads {n_out}; export the NIR of this actor's core"
        )
    sizes = [layer.out_features for layer in actor.layers]
    got = [layer.size for layer in hub]
    if got != sizes:
        raise ExportError(
            f"{where}: the core's layers have {'-'.join(map(str, got))} neurons, the actor's "
            f"{'-'.join(map(str, sizes))}; a core beside a trained actor must keep its layer "
            "sizes (export a different network without the actor: --from-nir FILE alone)"
        )
    codec = {
        "timesteps_per_action": actor.config.timesteps,
        "state_reset": "never" if _stateful(actor) else "every action",
        "input": "graded" if actor.graded_input else "spikes",
    }
    for key, value in codec.items():
        if key in graph.metadata:
            stated = graph.metadata[key]
            stated = int(stated) if key == "timesteps_per_action" else str(stated)
            if stated != value:
                raise ExportError(
                    f"{where}: its metadata says {key} = {stated!r}, but the actor's codec "
                    f"runs {value!r}; export the NIR of this actor's core"
                )
    graph.metadata = {**graph.metadata, **codec}


def export_bundle(*args, **kwargs) -> Path:
    """Write a deploy bundle (see :func:`_export_into`); atomically: the bundle is written
    into a temporary folder next to ``out`` and renamed at the end, so a failed or killed
    export leaves no partial bundle behind."""
    try:
        return _export_into(*args, **kwargs)
    finally:
        while _STAGING:
            shutil.rmtree(_STAGING.pop(), ignore_errors=True)


def _stage(out: Path) -> Path:
    """An empty temporary folder beside ``out`` (stale ones of killed exports removed)."""
    check_writable_dir(out, "--out")
    out.parent.mkdir(parents=True, exist_ok=True)
    for old in out.parent.glob(f".{out.name}.*.export.tmp"):
        pid = old.name.split(".")[-3]
        if not (pid.isdigit() and Path(f"/proc/{pid}").exists()):
            shutil.rmtree(old, ignore_errors=True)
    tmp = out.parent / f".{out.name}.{os.getpid()}.export.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    _STAGING.append(tmp)
    return tmp


def _publish(tmp: Path, out: Path) -> Path:
    if out.exists():
        out.rmdir()  # empty: checked before the export started
    os.replace(tmp, out)
    _STAGING.remove(tmp)
    return out


def _export_into(
    source: Path | None,
    target: str,
    out: Path | None = None,
    from_nir: Path | None = None,
    observations: int = FIDELITY_OBSERVATIONS,
    nir_flavour: str | None = None,
    dt: float | None = None,
    allow_mismatch: bool = False,
) -> Path:
    """Write a deploy bundle for ``target``; returns its directory.

    ``source`` is a run directory or policy.pt (the host codec and the torch reference).
    With ``from_nir`` the spiking core comes from that NIR file instead; without a
    ``source`` the fidelity checks then drive it with random input spike trains.
    ``nir_flavour`` picks the time unit of the policy.nir written from ``source``
    (``nir_graph.FLAVOURS``, default generic); ``dt`` is the time step of a ``from_nir``
    graph whose metadata states none. Each is refused where it would have no effect.
    A fidelity check that should be spike for spike identical and is not refuses the
    export (nothing is written) unless ``allow_mismatch``.
    """
    if target not in TARGETS:
        raise ExportError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if not 1 <= observations <= MAX_OBSERVATIONS:
        raise ExportError(f"--observations must be 1 to {MAX_OBSERVATIONS}, not {observations}")
    if source is None and from_nir is None:
        raise ExportError("give a run directory or policy.pt, or --from-nir FILE")
    actor, env_id, policy_bytes = read_policy(Path(source)) if source else (None, "", b"")
    if actor is not None and not isinstance(actor, SpikingActor) and target != "onnx":
        raise ExportError(f"{source} holds an ANN actor; only --target onnx applies to it")
    if _stateful(actor) and not actor.config.synaptic_delay:
        raise ExportError(
            "this stateful actor was trained without synaptic_delay: on Lava every layer "
            "adds one step of delay, so it would not run as trained. Retrain with "
            "synaptic_delay = true (docs/stateful.md)"
        )
    if target == "onnx" and actor is None:
        raise ExportError(
            "--target onnx exports a trained actor: give its run directory or policy.pt"
        )
    if from_nir is not None and nir_flavour is not None:
        raise ExportError(
            "--nir-flavour sets the time unit of the policy.nir written from a trained actor; "
            "a --from-nir graph is compiled as it is (its dt: --dt)"
        )
    if from_nir is None and dt is not None:
        raise ExportError(
            "--dt is the time step of a --from-nir graph that states none; a trained actor's "
            "policy.nir states its own (choose its unit with --nir-flavour)"
        )
    nir_flavour = nir_flavour or "generic"
    if nir_flavour not in FLAVOURS:
        raise ExportError(
            f"unknown --nir-flavour {nir_flavour!r}; choose one of {', '.join(FLAVOURS)}"
        )
    if nir_flavour != "generic" and _stateful(actor):
        raise ExportError(
            f"--nir-flavour {nir_flavour}: this stateful actor delays every layer's input by "
            f"one step (as Lava's Dense), which {nir_flavour}'s NIR importer does not: it "
            "would run another network; export with --nir-flavour generic"
        )
    if target == "onnx" and _stateful(actor):
        raise ExportError(
            "--target onnx exports per-action-reset actors; this stateful actor carries its "
            "state across actions, which the ONNX graph has no inputs for: use --target loihi2 "
            "or lava"
        )
    foreign = None
    if from_nir is not None:  # check the graph (and its dt) before anything is written
        read_bytes(Path(from_nir))  # a missing file: the one-line error
        foreign = read_nir(Path(from_nir))
        foreign.metadata = {**(foreign.metadata or {}), "dt": graph_dt(foreign, str(from_nir), dt)}
        hub = nir_to_layers(foreign, str(from_nir))
        if actor is not None:
            fit_foreign_core(foreign, hub, actor, str(from_nir))
        if target == "loihi2":
            loihi2.quantize(hub, foreign.metadata.get("input") == "graded")
    if out is None:
        base = Path(source) if source is not None else Path(from_nir).parent
        out = (base if base.is_dir() else base.parent) / f"bundle-{target}"
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BundleError(f"{out} exists and is not empty; choose another --out")
    final, out = out, _stage(out)  # everything is written into a temporary folder first
    fidelity: dict = {}
    quant: list[dict] = []
    torch_actions = None

    if actor is not None:
        obs, obs_source = fidelity_observations(actor, env_id, Path(source), observations)
        fidelity.update({"observations": len(obs), "observations_from": obs_source})
    if target == "onnx" and isinstance(actor, SpikingActor):
        try:  # ONNX comes from the torch modules; policy.nir only where NIR can hold the core
            actor_layers(actor)
        except ExportError as exc:
            fidelity["nir"] = {"skipped": str(exc)}
    if (isinstance(actor, SpikingActor) or actor is None) and "nir" not in fidelity:
        if from_nir is None:
            meta = {
                "producer": "neurodeploy",
                "timesteps_per_action": actor.config.timesteps,
                "state_reset": "never" if _stateful(actor) else "every action",
            }
            if _stateful(actor):
                meta["synaptic_delay_steps"] = 1  # per layer, as Lava's Dense
            if actor.graded_input:
                meta["input"] = "graded"  # real values into the first Affine, not spikes
            write_nir(layers_to_nir(actor_layers(actor), meta, nir_flavour), out / "policy.nir")
        else:  # the foreign graph, with the dt it was compiled at stated in its metadata
            write_nir(foreign, out / "policy.nir")
        graph = read_nir(out / "policy.nir")
        hub = nir_to_layers(graph, "policy.nir")  # the compiler's only input
        stateful = graph.metadata.get("state_reset") == "never"
        graded = graph.metadata.get("input") == "graded"
        fidelity["nir"] = {
            "layers": len(hub),
            "type_checked": True,
            "dt": graph.metadata["dt"],
            "dt_from": "--dt" if from_nir is not None and dt is not None else "metadata",
            "flavour": graph.metadata.get("flavour", "foreign" if from_nir else "generic"),
            "state_reset": "never" if stateful else "every action",
            "input": "graded" if graded else "spikes",
        }
        if isinstance(actor, SpikingActor) and from_nir is None:
            with torch.no_grad():
                if stateful:  # the observations as one trajectory, state carried
                    torch_actions = actor.forward_sequence(obs[:, None])[0][:, 0]
                else:
                    torch_actions = actor(obs)
            enc = actor.spike_trains["encoder"].numpy()  # the first layer's input frames
            reference = [actor.spike_trains[n].numpy().astype(np.int8) for n in actor.layer_names]
            fidelity["reference"] = "torch actor"
            if not stateful:  # norse's from_nir graph has no per-layer delay
                fidelity["norse_vs_torch"] = _norse_check(graph, enc, reference[-1])
        else:
            T = int(graph.metadata.get("timesteps_per_action", 5))
            shape = (T * observations, 1) if stateful else (T, observations)
            rng = np.random.default_rng(0)
            size = (*shape, hub[0].weight.shape[1])
            enc = rng.normal(size=size) if graded else (rng.random(size) < 0.3).astype(np.int8)
            reference = simulate_nir(graph, enc, stateful=stateful)
            fidelity["reference"] = (
                f"float64 forward-Euler simulation of policy.nir's own equations at "
                f"dt = {graph.metadata['dt']:g}, on random input"
            )
        if target == "lava":
            from neurodeploy.export.lava_graph import LavaNetwork

            lava = LavaNetwork.from_float(hub, enc.shape[0], stateful, graded).run(enc)
            fidelity["reference_vs_lava_float"] = _compare(reference, lava)
        if target == "loihi2":
            fidelity.update(
                _loihi2(actor, hub, enc, reference, torch_actions, out, quant, stateful, graded)
            )
    if target == "onnx":
        from neurodeploy.export.onnx_export import export_onnx

        fidelity["torch_vs_onnx"] = export_onnx(actor, obs, out / "policy.onnx")

    failed = mismatches(fidelity)
    if failed and not allow_mismatch:
        raise BundleError(
            f"fidelity check failed: {'; '.join(failed)}; no bundle written (pass "
            "--allow-mismatch to write it anyway, with the differences in fidelity.json)"
        )
    if source is not None:  # the host codec and torch reference travel with the bundle
        atomic_write_bytes(out / "policy.pt", policy_bytes)  # the bytes the actor came from
    atomic_write_bytes(out / "fidelity.json", json.dumps(fidelity, indent=2).encode())
    if quant:
        atomic_write_bytes(out / "quantization.json", json.dumps(quant, indent=2).encode())
    spiking = target != "onnx"
    core = (graph.metadata, len(hub), hub[0].weight.shape[1]) if spiking else None
    if spiking:
        write_readme(out, target, actor is not None)
    _write_manifest(out, target, actor, env_id, core)
    return _publish(out, final)


def mismatches(fidelity: dict) -> list[str]:
    """The checks of a fidelity report that should be identical (or within their tolerance)
    and are not, in words."""
    failed = []
    for name, c in fidelity.items():
        if not isinstance(c, dict):
            continue
        if c.get("identical") is False:
            spikes, differ = sum(c["spikes"]), sum(c["mismatched_spikes"])
            failed.append(f"{name} ({differ} of {spikes} spikes differ)")
        if c.get("within_tolerance") is False:
            error, tolerance = c["max_error_over_half_range"], c["tolerance"]
            failed.append(f"{name} (action error {error:.3g} > {tolerance:g} of the half-range)")
    return failed


def written_with_mismatches(bundle: Path) -> list[str]:
    """A verified bundle's failed fidelity checks (written with --allow-mismatch): its
    fidelity.json, which the manifest's hash covers."""
    return mismatches(json.loads((Path(bundle) / "fidelity.json").read_text()))


def _norse_check(graph, enc: np.ndarray, want: np.ndarray) -> dict:
    """norse's from_nir model of policy.nir, run on the same input spikes as the torch actor."""
    from neurodeploy.export.nir_graph import to_norse

    try:
        model = to_norse(graph)
    except ExportError as exc:
        return {"skipped": str(exc)}
    state, outs = None, []
    with torch.no_grad():
        for x in torch.as_tensor(enc, dtype=torch.float32):
            z, state = model(x, state)
            outs.append(z)
    got = torch.stack(outs).numpy().astype(np.int8)
    return {**_compare([want], [got]), "adjustment": "r folded into Affine (norse ignores r)"}


def read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise BundleError(f"--from-nir: {path} does not exist")
    return path.read_bytes()


def _compare(a: list[np.ndarray], b: list[np.ndarray]) -> dict:
    same = [bool(np.array_equal(x, y)) for x, y in zip(a, b, strict=True)]
    mismatched = [int((x != y).sum()) for x, y in zip(a, b, strict=True)]
    return {
        "identical": all(same),
        "identical_per_layer": same,
        "mismatched_spikes": mismatched,
        "spikes": [int(x.sum()) for x in a],
    }


def _loihi2(
    actor, hub, enc, reference, torch_actions, out: Path, quant: list, stateful, graded
) -> dict:
    from neurodeploy.export.lava_graph import LavaNetwork
    from neurodeploy.export.netx import run_netx, write_netx

    fixed, facts = loihi2.quantize(hub, graded)
    quant.extend(facts)
    write_netx(fixed, out / "policy.net")
    chip = loihi2.chip_input(enc, graded)
    emu = emulator.run(fixed, chip, stateful)
    lava = LavaNetwork.from_fixed(fixed, chip.shape[0], stateful).run(chip)
    netx_out = run_netx(out / "policy.net", chip, len(fixed), stateful, fixed[0].input_bits)
    float_vs_fixed = {  # the cell fraction counts silent (step, neuron) cells as identical
        "identical_output_spike_fraction": float((emu[-1] == reference[-1]).mean()),
        "output_spikes": int((reference[-1] != 0).sum()),
        "output_spikes_differing": int((emu[-1] != reference[-1]).sum()),
    }
    if torch_actions is not None:
        err = (decode(actor, emu[-1]) - torch_actions).abs()
        float_vs_fixed.update(
            action_rmse=float(err.pow(2).mean().sqrt()), action_max_error=float(err.max())
        )
    checks = {
        "emulator_vs_lava_fixed": _compare(emu, lava),
        "netx_vs_lava_fixed": _compare([netx_out], [lava[-1]]),
        "float_vs_fixed": float_vs_fixed,
    }
    if torch_actions is not None and actor.config.neuron.model == "loihi" and not graded:
        # trained on the chip's grid with spike input: the fixed-point network must be the
        # torch actor, every layer spike for spike (otherwise float_vs_fixed measures the
        # quantisation; graded input reaches the chip rounded to 1/256, which torch's loihi
        # neuron does not model)
        checks["torch_vs_fixed"] = _compare(reference, emu)
    return checks


# written into a bundle later (bench-energy): results about the bundle, not part of it
NOT_HASHED = ("energy.json", "energy.md", "energy.png", "rates.png")


def schedule(meta: dict, n_layers: int, timesteps: int | None = None) -> dict:
    """How a Lava or netx user clocks the core, from policy.nir's metadata (docs/export.md,
    "Lava graph and timing"); the keys name lava-dl netx ``Network`` arguments."""
    T = int(timesteps or meta.get("timesteps_per_action", 5))
    graded = meta.get("input") == "graded"
    bits = loihi2.GRADED_BITS if graded else 0
    if meta.get("state_reset") == "never":
        return {
            "timesteps_per_action": T,
            "empty_steps_after_input": 0,
            "lava_steps_per_action": T,
            "reset_interval": None,
            "reset_offset": None,
            "output_delay_steps": 0,
            "input_message_bits": bits,
            "how": "one continuous run, T steps per action, nothing reset; every layer adds "
            "one step of delay, which the trained network already contains (synaptic_delay), "
            "so output step t belongs to input step t",
        }
    return {
        "timesteps_per_action": T,
        "empty_steps_after_input": n_layers,
        "lava_steps_per_action": T + n_layers,
        "reset_interval": T + n_layers,
        "reset_offset": 1,
        "output_delay_steps": n_layers,
        "input_message_bits": bits,
        "how": f"per action: T = {T} steps of input, then {n_layers} steps of none (every "
        "Dense adds one step); load policy.net with Network(net_config='policy.net', "
        f"reset_interval={T + n_layers}, reset_offset=1, input_message_bits={bits}); the "
        f"output spike of input step j arrives {n_layers} steps later",
    }


def _write_manifest(out: Path, target: str, actor, env_id: str, core) -> None:
    """``core``: (policy.nir metadata, number of layers, input size); None for onnx."""
    files = {
        p.name: sha256(p)
        for p in sorted(out.iterdir())
        if p.name != "manifest.json" and p.name not in NOT_HASHED
    }
    meta = core[0] if core else {}
    manifest = {
        "schema": SCHEMA,
        "target": target,
        "env": env_id,
        "dt": float(meta.get("dt", DT)),
        "nir_flavour": meta.get("flavour", "foreign") if core else None,
        "discretisation": DISCRETISATION,
        "files": files,
        "not_hashed": {"files": list(NOT_HASHED), "why": "bench-energy writes them later"},
    }
    if core:
        manifest["schedule"] = schedule(meta, core[1], actor.config.timesteps if actor else None)
    if actor is None:
        manifest["codec"] = None  # a foreign NIR core: the host sends spike trains of size n_in
        manifest["input_size"] = core[2]
    else:
        cfg = actor.config
        manifest.update(
            {
                "observation_space": {"shape": [cfg.obs_dim]},
                "action_space": {
                    "shape": [cfg.act_dim],
                    "low": cfg.action_low,
                    "high": cfg.action_high,
                },
                "action_scale": {
                    "center": actor.scale.center.tolist(),
                    "half_range": actor.scale.half_range.tolist(),
                },
                "actor_config": cfg.to_dict(),
            }
        )
    if isinstance(actor, SpikingActor):
        manifest["codec"] = _codec(actor)
        steps = actor.config.timesteps + (0 if _stateful(actor) else len(actor.layers))
        manifest["lava_steps_per_action"] = steps
    atomic_write_bytes(out / "manifest.json", json.dumps(seal(manifest), indent=2).encode())


# the files a bundle of each target must list (a policy.pt too when it has an actor_config)
REQUIRED_FILES = {
    "nir": ("policy.nir", "fidelity.json"),
    "lava": ("policy.nir", "fidelity.json"),
    # policy.net is what a Loihi 2 user deploys and what loihi2-sim runs; a copy that ships
    # only that may leave out policy.nir, the hub it was compiled from
    "loihi2": ("policy.net", "fidelity.json"),
    "onnx": ("policy.onnx", "fidelity.json"),
}


def seal(manifest: dict) -> dict:
    """The manifest with ``integrity``: the SHA-256 of everything else in it (file list
    included), so an edited, emptied or shortened file list is detected."""
    body = {k: v for k, v in manifest.items() if k != "integrity"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return {**body, "integrity": digest}


def verify_bundle(path: Path) -> dict:
    """Check a bundle before use: the manifest's schema and integrity hash, the files its
    target needs, every listed file's hash, and its env id. One-line errors otherwise."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise BundleError(f"{path} is not a deploy bundle (no manifest.json)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{manifest_path} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{manifest_path} is not a manifest (a JSON object is expected)")
    if manifest.get("schema") != SCHEMA:
        raise BundleError(f"{manifest_path}: unknown schema {manifest.get('schema')!r}")
    if "integrity" not in manifest:
        raise BundleError(
            f"{manifest_path} has no integrity hash (exported by an older neurodeploy?); "
            "export the bundle again"
        )
    if seal(manifest)["integrity"] != manifest["integrity"]:
        raise BundleError(
            f"{manifest_path} was modified (its integrity hash does not match); "
            "export the bundle again"
        )
    files, target = manifest.get("files"), manifest.get("target")
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and Path(k).name == k for k, v in files.items()
    ):
        raise BundleError(f"{manifest_path}: 'files' must map file names to SHA-256 hashes")
    if target not in REQUIRED_FILES:
        raise BundleError(f"{manifest_path}: unknown target {target!r}")
    required = REQUIRED_FILES[target] + (("policy.pt",) if "actor_config" in manifest else ())
    missing = [name for name in required if name not in files]
    if missing:
        raise BundleError(
            f"{manifest_path} does not list {', '.join(missing)} (a {target} bundle needs it); "
            "export the bundle again"
        )
    if manifest.get("env"):
        check_env_id(manifest["env"], str(manifest_path))
    for name, digest in files.items():
        file = path / name
        if not file.is_file():
            raise BundleError(f"{path}: {name} is missing (listed in manifest.json)")
        if sha256(file) != digest:
            raise BundleError(
                f"{path}: {name} does not match its hash in manifest.json "
                "(modified or corrupt); export the bundle again"
            )
    return manifest
