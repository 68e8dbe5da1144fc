"""Exported files opened with the tools users have: snnTorch, norse, lava-dl netx, onnxruntime.

Every test reads the real file with the real library (no mocks) and compares spikes with
neurodeploy's own torch actor or bit-accurate emulator.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from neurodeploy.errors import ExportError
from neurodeploy.export.bundle import export_bundle, load_policy
from neurodeploy.export.nir_graph import nir_to_layers, read_nir
from neurodeploy.snn import ActorConfig, NeuronConfig, build_actor, policy_payload

NEURODEPLOY = str(Path(sys.executable).parent / "neurodeploy")


def save_policy(tmp_path, obs=3, act=1, seed=0, **kw):
    torch.manual_seed(seed)
    actor = build_actor(ActorConfig(obs, act, [-2.0] * act, [2.0] * act, **kw))
    with torch.no_grad():  # livelier than the default init, so every layer spikes
        for layer in actor.layers:
            layer.linear.weight.mul_(2.0)
    path = tmp_path / "policy.pt"
    torch.save({**policy_payload(actor), "env": "Pendulum-v1"}, path)
    return path


def fidelity(bundle):
    return json.loads((bundle / "fidelity.json").read_text())


def torch_spikes(policy, n=64, seed=1):
    """The torch actor's input frames [T, B, n_in] and every layer's spikes."""
    actor, _ = load_policy(policy)
    obs = torch.as_tensor(np.random.default_rng(seed).normal(size=(n, actor.config.obs_dim)))
    with torch.no_grad():
        actor(obs.float())
    trains = actor.spike_trains
    return trains["encoder"], [trains[name] for name in actor.layer_names]


def run_recorded(model, frames, neuron_names, call):
    """Run ``model`` step by step on frames [T, B, n]; spikes of each named submodule."""
    seen = {name: [] for name in neuron_names}
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda mod, args, out, name=name: seen[name].append(
                (out[0] if isinstance(out, tuple) else out).detach().clone()
            )
        )
        for name in neuron_names
    ]
    try:
        with torch.no_grad():
            call(model, frames)
    finally:
        for hook in hooks:
            hook.remove()
    return [torch.stack(seen[name]) for name in neuron_names]


# --- NIR flavours: snnTorch and norse read policy.nir as it is --------------------------------


@pytest.mark.parametrize("model", ["lif", "clif"])
def test_snntorch_import_from_nir_gives_the_torch_actors_spikes(tmp_path, model):
    import snntorch.utils
    from snntorch.import_nir import import_from_nir

    policy = save_policy(tmp_path, hidden=[48, 24], neuron=NeuronConfig(model))
    bundle = export_bundle(policy, "nir", tmp_path / "b", observations=8, nir_flavour="snntorch")
    graph = nir.read(str(bundle / "policy.nir"))
    assert graph.metadata["dt"] == 1e-4 and graph.metadata["flavour"] == "snntorch"
    net = import_from_nir(graph)  # snnTorch's own importer, which assumes dt = 1e-4 s

    def call(model, frames):
        snntorch.utils.reset(model)
        for x in frames:
            model(x)

    enc, want = torch_spikes(policy)
    got = run_recorded(net, enc, ["neuron0", "neuron1", "neuron2"], call)
    for layer, (g, w) in enumerate(zip(got, want, strict=True)):
        assert w.sum() > 20, f"layer {layer} too quiet to test"
        assert torch.equal(g, w), f"layer {layer}: {(g != w).sum()} of {w.numel()} differ"


@pytest.mark.parametrize("model", ["lif", "clif"])
def test_norse_from_nir_gives_the_torch_actors_spikes(tmp_path, model):
    import norse.torch as norse

    policy = save_policy(tmp_path, hidden=[48, 24], neuron=NeuronConfig(model))
    bundle = export_bundle(policy, "nir", tmp_path / "b", observations=8, nir_flavour="norse")
    graph = nir.read(str(bundle / "policy.nir"))
    assert graph.metadata["dt"] == 1e-3
    net = norse.from_nir(graph)  # norse's own importer at its default dt = 1e-3 s

    def call(model, frames):
        state = None
        for x in frames:
            _, state = model(x, state)

    enc, want = torch_spikes(policy)
    got = run_recorded(net, enc, ["neuron0", "neuron1", "neuron2"], call)
    for layer, (g, w) in enumerate(zip(got, want, strict=True)):
        assert w.sum() > 20, f"layer {layer} too quiet to test"
        assert torch.equal(g, w), f"layer {layer}: {(g != w).sum()} of {w.numel()} differ"


@pytest.mark.parametrize("flavour", ["generic", "snntorch", "norse"])
def test_every_flavour_loads_back_into_neurodeploy_identically(tmp_path, flavour):
    policy = save_policy(tmp_path, hidden=[32, 16])
    bundle = export_bundle(policy, "lava", tmp_path / "b", observations=16, nir_flavour=flavour)
    check = fidelity(bundle)["reference_vs_lava_float"]  # torch actor vs Lava compiled from it
    assert check["identical"] and sum(check["spikes"]) > 0
    generic = export_bundle(policy, "nir", tmp_path / "g", observations=8)
    ours = nir_to_layers(read_nir(bundle / "policy.nir"))
    base = nir_to_layers(read_nir(generic / "policy.nir"))
    for a, b in zip(ours, base, strict=True):
        assert np.allclose(a.weight, b.weight, rtol=1e-6) and np.allclose(a.decay, b.decay)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["dt"] == {"generic": 1.0, "snntorch": 1e-4, "norse": 1e-3}[flavour]


def test_unknown_flavour_is_one_line_and_writes_nothing(tmp_path):
    policy = save_policy(tmp_path, hidden=[8])
    out = subprocess.run(
        [NEURODEPLOY, "export", str(policy), "--target", "nir", "--nir-flavour", "keras",
         "--out", str(tmp_path / "b")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 1 and "unknown --nir-flavour 'keras'" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "b").exists()


# --- the bundle describes itself: README's netx snippet, run without neurodeploy ---------------


def readme_python(bundle) -> str:
    return "\n".join(re.findall(r"```python\n(.*?)```", (bundle / "README.md").read_text(), re.S))


def test_readme_netx_snippet_reproduces_the_emulator_without_neurodeploy(tmp_path):
    from neurodeploy.export import emulator, loihi2

    policy = save_policy(tmp_path, hidden=[32, 16])
    bundle = export_bundle(policy, "loihi2", tmp_path / "b", observations=16)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["schedule"]["reset_interval"] == 5 + 3
    assert (
        manifest["schedule"]["reset_offset"] == 1
        and manifest["schedule"]["output_delay_steps"] == 3
    )
    assert "subtract" in manifest["codec"]["encoder_params"]["reset"]
    assert "README.md" in manifest["files"]

    obs = np.random.default_rng(3).normal(size=(24, 3)).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    glue = f"""
import sys
m = json.loads((Path({str(bundle)!r}) / "manifest.json").read_text())
obs = np.load({str(tmp_path / "obs.npy")!r})
enc = encode(m, obs)
out = run_netx({str(bundle)!r}, m, enc)
np.savez({str(tmp_path / "netx.npz")!r}, enc=enc, out=out, action=decode(m, out))
assert "neurodeploy" not in sys.modules, "the snippet imported neurodeploy"
print("ok")
"""
    script = tmp_path / "snippet.py"
    script.write_text(readme_python(bundle) + glue)
    run = subprocess.run(
        [sys.executable, "-I", str(script)], capture_output=True, text=True, timeout=600,
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0 and "ok" in run.stdout, run.stderr[-2000:]
    got = np.load(tmp_path / "netx.npz")

    actor, _ = load_policy(policy)
    with torch.no_grad():
        want_action = actor(torch.from_numpy(obs)).numpy()
    frames = actor.spike_trains["encoder"].numpy()
    assert np.array_equal(got["enc"], frames)  # the manifest's encoder is the actor's
    fixed, _ = loihi2.quantize(nir_to_layers(read_nir(bundle / "policy.nir")))
    emu = emulator.run(fixed, loihi2.chip_input(frames, False))[-1]
    assert emu.sum() > 0 and np.array_equal(got["out"].astype(np.int8), emu.astype(np.int8))
    with torch.no_grad():
        emu_action = actor.decode(torch.as_tensor(emu))[0].numpy()
    assert np.allclose(got["action"], emu_action, atol=1e-5)
    assert np.abs(got["action"] - want_action).max() < 0.5  # and close to the float actor


# --- --from-nir: a graph from snnTorch's own exporter, with its time unit ---------------------


def snntorch_graph(tmp_path):
    """A Linear 8-16-2 LIF net from snnTorch's export_to_nir (no dt in its metadata)."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(8, 16),
        snn.Leaky(
            beta=torch.full((16,), 0.75),
            threshold=torch.ones(16),
            init_hidden=True,
            reset_mechanism="zero",
            reset_delay=False,
        ),
        torch.nn.Linear(16, 2),
        snn.Leaky(
            beta=torch.full((2,), 0.75),
            threshold=torch.ones(2),
            init_hidden=True,
            reset_mechanism="zero",
            reset_delay=False,
            output=True,
        ),
    )  # fmt: skip  (per-neuron beta and threshold: NIR needs per-neuron arrays)
    with torch.no_grad():
        net[0].weight.mul_(6.0)
        net[2].weight.mul_(6.0)
        net[2].bias.add_(0.3)
    graph = export_to_nir(net, torch.zeros(8))
    path = tmp_path / "snntorch.nir"
    nir.write(str(path), graph)
    return net, path


def test_from_nir_without_dt_is_refused_naming_the_conventions(tmp_path):
    _, path = snntorch_graph(tmp_path)
    assert "dt" not in (nir.read(str(path)).metadata or {})
    for target in ("lava", "loihi2"):
        out = subprocess.run(
            [NEURODEPLOY, "export", "--from-nir", str(path), "--target", target,
             "--out", str(tmp_path / target)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert "--dt" in out.stderr and "1e-4" in out.stderr and "1e-3" in out.stderr
        assert not (tmp_path / target).exists()  # nothing left behind: a rerun works


def test_from_nir_dt_shorter_than_tau_names_dt(tmp_path):
    _, path = snntorch_graph(tmp_path)
    with pytest.raises(ExportError, match=r"shorter than dt = 1.*pass --dt"):
        export_bundle(None, "loihi2", tmp_path / "x", from_nir=path, dt=1.0, observations=8)
    assert not (tmp_path / "x").exists()


def test_snntorch_exported_graph_deploys_to_loihi2_with_dt(tmp_path):
    import snntorch.utils

    from neurodeploy.export.netx import run_netx

    net, path = snntorch_graph(tmp_path)
    bundle = export_bundle(None, "loihi2", tmp_path / "b", from_nir=path, dt=1e-4, observations=16)
    f = fidelity(bundle)
    assert f["nir"]["dt"] == 1e-4 and f["nir"]["dt_from"] == "--dt"
    assert f["emulator_vs_lava_fixed"]["identical"] and f["netx_vs_lava_fixed"]["identical"]
    assert read_nir(bundle / "policy.nir").metadata["dt"] == 1e-4  # the bundle states it
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["dt"] == 1e-4

    # snnTorch's own simulation of the same input, against the netx file on Lava fixed_pt
    T, B = 40, 16
    spikes = (np.random.default_rng(0).random((T, B, 8)) < 0.5).astype(np.float32)
    outs = []
    with torch.no_grad():
        for b in range(B):
            snntorch.utils.reset(net)
            outs.append(torch.stack([net(torch.from_numpy(x[b : b + 1]))[0][0] for x in spikes]))
    want = torch.stack(outs, dim=1).numpy().astype(np.int8)  # [T, B, 2]
    got = run_netx(bundle / "policy.net", spikes.astype(np.int32), 2)
    assert want.sum() > 50
    assert np.mean(got == want) >= 0.99, (got.sum(), want.sum(), np.mean(got == want))


# --- every neuron the trainer offers deploys somewhere, or is refused in one line -------------


def test_bias_free_clif_deploys_bit_exact_and_a_biased_one_names_the_option(tmp_path):
    from neurodeploy.train.config import resolve
    from neurodeploy.train.loop import actor_config

    cfg, _ = resolve("pendulum", {"neuron": "clif", "bias": False})
    import gymnasium as gym

    actor = build_actor(actor_config(cfg, gym.make("Pendulum-v1")))
    assert all(not layer.linear.bias.requires_grad for layer in actor.layers)

    policy = save_policy(tmp_path, hidden=[32, 16], neuron=NeuronConfig("clif", bias=False))
    l2 = export_bundle(policy, "loihi2", tmp_path / "l2", observations=16)
    f = fidelity(l2)
    assert f["emulator_vs_lava_fixed"]["identical"] and f["netx_vs_lava_fixed"]["identical"]
    assert sum(f["emulator_vs_lava_fixed"]["spikes"]) > 0
    lava = fidelity(export_bundle(policy, "lava", tmp_path / "lv", observations=16))
    assert lava["reference_vs_lava_float"]["identical"]

    (tmp_path / "biased").mkdir()
    biased = save_policy(tmp_path / "biased", hidden=[8], neuron=NeuronConfig("clif"))
    with pytest.raises(ExportError, match="--set bias=false"):
        export_bundle(biased, "loihi2", tmp_path / "x", observations=8)


@pytest.mark.parametrize("model", ["loihi", "dn"])
def test_loihi_and_dn_actors_export_to_onnx(tmp_path, model):
    import onnxruntime as ort

    policy = save_policy(tmp_path, hidden=[16, 8], neuron=NeuronConfig(model))
    bundle = export_bundle(policy, "onnx", tmp_path / "b", observations=16)
    assert fidelity(bundle)["torch_vs_onnx"]["max_abs_error"] < 1e-5
    obs = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    got = ort.InferenceSession(str(bundle / "policy.onnx")).run(["action"], {"obs": obs})[0]
    actor, _ = load_policy(policy)
    with torch.no_grad():
        assert np.abs(got - actor(torch.from_numpy(obs)).numpy()).max() < 1e-5


def test_stateful_actor_onnx_is_refused_in_one_line(tmp_path):
    policy = save_policy(tmp_path, hidden=[8], mode="stateful", synaptic_delay=True, timesteps=1)
    out = subprocess.run(
        [NEURODEPLOY, "export", str(policy), "--target", "onnx", "--out", str(tmp_path / "b")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "stateful" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()
